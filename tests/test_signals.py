"""SIGTERM (what Kubernetes, Slurm and ``ray job stop`` send) is a clean stop: exit 143, a hint
to resume, no native dump; ``--resume`` then ends with the tables of an uninterrupted run. The
test meets the run at a named point (``fer_ray.testhooks``), never by sleeping and polling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fer_ray.tune import main
from tests.conftest import ROOT, SMOKE

pytestmark = pytest.mark.slow

TABLES = ("grid/table2.csv", "grid/trials.csv", "ensemble/members.csv", "analyse/sweep.csv")


def _args(tmp: Path, name: str) -> list[str]:
    return ["-c", str(SMOKE), "--set", f"name={name}", "--set", f"output.runs_dir={tmp / 'runs'}",
            "--set", f"output.reports_dir={tmp / 'reports'}"]  # fmt: skip


def _tables(run: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for t in TABLES:
        df = pd.read_csv(run / t)
        out[t] = df.drop(columns=[c for c in df if "second" in c or c.startswith("node")])
    return out


@pytest.mark.timeout(1200)
def test_sigterm_mid_grid_stops_cleanly_and_resume_ends_with_the_same_tables(tmp_path, capsys):
    fifo = tmp_path / "hook"
    os.mkfifo(fifo)
    env = {**os.environ, "FER_RAY_HOOK_AT": "epoch:grid:2", "FER_RAY_HOOK_FIFO": str(fifo)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fer_ray.tune", *_args(tmp_path, "term")],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    with open(fifo) as hook:  # returns once a grid trial has finished its second epoch
        assert hook.read() == "epoch:grid:2"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 143, err[-3000:]
    assert "terminated (SIGTERM)" in err and "--resume" in err
    assert "Aborted" not in err and "SIGABRT" not in err and "Traceback" not in err
    run = tmp_path / "runs" / "term"
    assert not (run / "grid" / "done.json").exists()
    # --resume auto, the one command a supervisor retries: it resumes the run that exists...
    assert main([*_args(tmp_path, "term"), "--resume", "auto"]) == 0
    # ...and starts one that does not (the same config, never interrupted)
    assert main([*_args(tmp_path, "cold"), "--resume", "auto"]) == 0
    resumed, cold = _tables(run), _tables(tmp_path / "runs" / "cold")
    for t in TABLES:
        pd.testing.assert_frame_equal(resumed[t], cold[t], obj=t)
    capsys.readouterr()
    assert main([*_args(tmp_path, "cold"), "--resume", "auto"]) == 0  # all done: all skipped
    assert "ensemble: skip" in capsys.readouterr().out
