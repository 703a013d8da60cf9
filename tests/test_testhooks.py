"""``fer_ray.testhooks`` with the test's end (``tests.hookpipe``), in plain processes: a point
announces once, holds the process while the test looks, points come in turn, and a point
whose pipe does not exist is a no-op (a cluster's nodes carry the variables from their start).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.hookpipe import Meeting

pytestmark = pytest.mark.timeout(60)

#: A run in miniature: each point is reached twice (a second trial), with a line after each
#: that says whether the file named on its command line (made by the test while it holds the
#: run) exists.
RUN = (
    "import os, sys\n"
    "from fer_ray import testhooks\n"
    "for p in ['other', 'a', 'a', 'b', 'b']:\n"
    "    testhooks.reached(p)\n"
    "    print('past', p, os.path.exists(sys.argv[1]), flush=True)\n"
)


def _start(env: dict[str, str], flag: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUN, str(flag)], cwd=ROOT,
                            env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)  # fmt: skip


def test_points_come_in_turn_each_once_and_the_run_waits_at_each(tmp_path: Path):
    meeting, flag = Meeting(tmp_path / "hook", ["a", "b"]), tmp_path / "flag"
    proc = _start(meeting.env, flag)
    meeting.watch(proc)
    assert meeting.wait() == "a"
    flag.touch()  # while it is held at "a": it goes on only once released
    meeting.release()
    assert proc.stdout.readline() == "past other False\n"
    assert proc.stdout.readline() == "past a True\n"
    assert proc.stdout.readline() == "past a True\n"  # the second arrival does not announce
    assert meeting.wait() == "b"
    meeting.release()
    assert proc.stdout.read() == "past b True\npast b True\n"
    assert proc.wait() == 0
    assert meeting.wait() is None  # the run is over: nothing more to meet


def test_without_hold_the_run_goes_on_once_read(tmp_path: Path):
    meeting = Meeting(tmp_path / "hook", ["b"], hold=False)
    proc = _start(meeting.env, tmp_path / "flag")
    meeting.watch(proc)
    assert meeting.wait() == "b"
    assert proc.stdout.read().split("\n")[-3:] == ["past b False", "past b False", ""]
    assert proc.wait() == 0


def test_a_point_without_its_pipe_is_a_no_op(tmp_path: Path):
    env = {"FER_RAY_HOOK_AT": "a,b", "FER_RAY_HOOK_FIFO": str(tmp_path / "not_made")}
    out = subprocess.run([sys.executable, "-c", RUN, str(tmp_path / "flag")], cwd=ROOT, env={**os.environ, **env},
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.returncode == 0 and out.stdout.count("past") == 5
    assert list(tmp_path.iterdir()) == []  # no pipe, no marker: still armable later
