"""Interruptions: a crashed trial resumes from its checkpoint; a killed driver resumes."""

import json
import os
import signal
import subprocess
import sys

import pytest

from fer_ray.errors import StageError
from fer_ray.pipeline import run_pipeline
from tests.conftest import ROOT, smoke_config, tune_terminated

pytestmark = pytest.mark.slow


def _steps(trial_dir):
    """Trained steps; a trial restarted after its last epoch replays that result (flagged)."""
    rows = [json.loads(x) for x in (trial_dir / "result.json").read_text().splitlines() if x]
    return [r["step"] for r in rows if not r.get("replayed")]


def test_crashed_trial_continues_from_its_checkpoint(tmp_path, monkeypatch):
    # a checkpoint every epoch (the default is by time: these trials are too short for one);
    # one cache, so the uninterrupted reference run reads the same crops and features
    overrides = ("analyse.enabled=false", "ensemble.members=1", "output.checkpoint_every=1",
                 f"faces.cache_dir={tmp_path / 'cache' / 'crops'}")  # fmt: skip
    reference = smoke_config(tmp_path / "reference", *overrides)
    run_pipeline(reference)
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
        assert got == (tmp_path / "reference/runs/smoke" / stage / table).read_text(), stage


@pytest.mark.timeout(1200)  # a run that died before the hook would leave the FIFO unread
def test_killed_driver_resumes_without_redoing_finished_trials(tmp_path):
    overrides = [
        f"output.runs_dir={tmp_path / 'runs'}",
        f"output.reports_dir={tmp_path / 'reports'}",
        "analyse.enabled=false",
        "ensemble.members=2",
        "train.epochs=4",
    ]
    cmd = [sys.executable, "-m", "fer_ray.tune", "-c", "tune_configs/smoke.yaml"]
    for o in overrides:
        cmd += ["--set", o]
    run_dir = tmp_path / "runs" / "smoke"
    grid_exp = run_dir / "tune" / "grid"
    fifo = tmp_path / "hook"
    os.mkfifo(fifo)  # the driver stops as the fourth grid trial starts, until we read
    # Tune stores its experiment state (which trials finished) at most every 10 s by default;
    # at every step here, so the trials finished before the fourth started are stored as such
    env = {**os.environ, "FER_RAY_HOOK_AT": "trial_start:grid:4", "FER_RAY_HOOK_FIFO": str(fifo),
           "TUNE_GLOBAL_CHECKPOINT_S": "0"}  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        with open(fifo) as hook:  # returns once two of the six grid trials have finished
            assert hook.read() == "trial_start:grid:4"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started, at once
        proc.wait()
    stored = tune_terminated(grid_exp)  # what Tune promises not to run again
    finished = {
        d.name: len(_steps(d))
        for d in grid_exp.iterdir()
        if (d / "result.json").is_file()
        and _steps(d)[-1:] == [4]
        and any(t in d.name for t in stored)
    }
    assert finished, "no finished grid trial was stored when the fourth started"
    assert not (run_dir / "grid" / "done.json").exists()

    cfg = smoke_config(tmp_path, *overrides[2:])
    with pytest.raises(StageError, match="--resume"):
        run_pipeline(cfg)
    run_pipeline(cfg, resume=True)
    assert (run_dir / "ensemble" / "done.json").is_file()
    for name, n in finished.items():
        assert len(_steps(grid_exp / name)) == n, f"finished trial {name} was trained again"
