from pathlib import Path

import pytest

from fer_ray import config

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "tune_configs" / "smoke.yaml"


def smoke_config(tmp: Path, *overrides: str) -> config.Config:
    """smoke.yaml with every output (runs, reports, caches) under ``tmp``."""
    return config.load(
        SMOKE,
        [
            f"output.runs_dir={tmp / 'runs'}",
            f"output.reports_dir={tmp / 'reports'}",
            *overrides,
        ],
    )


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One crop/weights cache for the whole session: pretraining is paid once."""
    return tmp_path_factory.mktemp("cache")
