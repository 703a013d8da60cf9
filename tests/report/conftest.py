from pathlib import Path

import pytest

from tests.report.fake_run import write_run


@pytest.fixture
def full_run(tmp_path: Path) -> Path:
    """A synthetic run directory where every stage, the descriptor baseline too, finished."""
    return write_run(tmp_path / "runs" / "fake")
