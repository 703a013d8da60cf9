"""A crashed trial resumes from its checkpoint. (A killed or SIGTERMed driver, resumed by one
fixed command: tests/test_reproducible.py.)"""

import json

import pytest

from fer_ray.pipeline import run_pipeline
from tests.conftest import copy_of, smoke_config

pytestmark = pytest.mark.slow


def _steps(trial_dir):
    """Trained steps; a trial restarted after its last epoch replays that result (flagged)."""
    rows = [json.loads(x) for x in (trial_dir / "result.json").read_text().splitlines() if x]
    return [r["step"] for r in rows if not r.get("replayed")]


def test_crashed_trial_continues_from_its_checkpoint(smoke_done, tmp_path, monkeypatch):
    # a checkpoint every epoch (the default is by time: these trials are too short for one);
    # a copy of the shared smoke run's caches, so it reads the same crops and features, and its
    # tables are the uninterrupted reference
    cache = copy_of(smoke_done / "runs" / ".cache", tmp_path / "cache")
    overrides = ("analyse.enabled=false", "output.checkpoint_every=1",
                 f"faces.cache_dir={cache / 'crops'}")  # fmt: skip
    marker = tmp_path / "fault"
    monkeypatch.setenv("FER_RAY_FAULT_AT_STEP", "2")
    monkeypatch.setenv("FER_RAY_FAULT_MARKER", str(marker))
    cfg = smoke_config(tmp_path, *overrides)
    run_pipeline(cfg)
    assert marker.is_file(), "no fault was injected"
    trial_id = marker.read_text()
    exp = tmp_path / "runs/smoke/tune/grid"
    if not any(trial_id in p.name for p in exp.iterdir()):
        exp = tmp_path / "runs/smoke/tune/ensemble"
    (trial_dir,) = [p for p in exp.iterdir() if trial_id in p.name]
    steps = _steps(trial_dir)
    # restarted from scratch it would read 1, 2, 1, 2, 3; resumed, it goes on at 3
    assert steps == list(range(1, len(steps) + 1)), steps
    assert len(steps) >= 3
    # ... and ends with exactly the numbers of the uninterrupted run
    for stage, table in (("grid", "trials.csv"), ("ensemble", "members.csv")):
        got = (tmp_path / "runs/smoke" / stage / table).read_text()
        assert got == (smoke_done / "runs/smoke" / stage / table).read_text(), stage
