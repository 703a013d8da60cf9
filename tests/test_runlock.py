"""One driver per run folder: a second driver on the same run stops with one line before it
writes anything, and a killed holder never leaves a stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fer_ray import runlock
from fer_ray.errors import StageError
from fer_ray.tune import main

SMOKE = str(Path(__file__).resolve().parent.parent / "tune_configs" / "smoke.yaml")


def test_a_held_run_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    with runlock.held(tmp_path, "a") as path:
        assert path == tmp_path / ".locks" / "a.lock"
        in_use = rf"run 'a' is in use: pid {os.getpid()} on "
        with pytest.raises(StageError, match=in_use), runlock.held(tmp_path, "a"):
            pass
        with runlock.held(tmp_path, "b"):  # another run name is another lock
            pass
    with runlock.held(tmp_path, "a"):  # released at the end of the block
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from fer_ray import runlock\n"
        f"with runlock.held(Path({str(tmp_path)!r}), 'r'):\n"
        "    print('held', flush=True); sys.stdin.read()\n"  # holds until killed
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "held"  # the child's hook: it holds the lock
        with pytest.raises(StageError, match=rf"pid {child.pid} "), runlock.held(tmp_path, "r"):
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with runlock.held(tmp_path, "r"):  # the kernel released it with the process
        pass


def test_the_cli_refuses_a_run_in_use_before_writing_anything(tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    args = ["-c", SMOKE, "--set", "name=busy", "--set", f"output.runs_dir={runs}",
            "--set", f"output.reports_dir={tmp_path / 'reports'}", "--fresh"]  # fmt: skip
    with runlock.held(runs, "busy"):
        assert main(args) == 1  # a stage error's exit code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run 'busy' is in use" in err[0], err
    assert sorted(p.name for p in runs.iterdir()) == [".locks"]  # no run folder was made
    assert not (tmp_path / "reports").exists()
