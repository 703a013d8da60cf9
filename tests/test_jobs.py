"""``ray job submit`` the Ray way: a head started with ``ray start --head`` (token authentication
on, as Ray 2.60 does it), the code shipped with ``--working-dir .``, logs read with ``ray job
logs``. The driver inside the job joins the cluster and never passes local-only settings."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _stop_head(temp_dir: str) -> None:
    """Stop the processes of this head only: every one has its session folder, under
    ``temp_dir``, on its command line. (``ray stop`` would stop every Ray on the machine,
    a user's own runs included.)"""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                if temp_dir.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        if pids and sig == signal.SIGTERM:
            time.sleep(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    ray_cli = str(Path(sys.executable).parent / "ray")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("RAY_ADDRESS", None)
    # every port its own: another Ray on this machine (a user's run) holds the defaults
    port, dash, agent = _free_port(), _free_port(), _free_port()
    temp_dir = tempfile.mkdtemp(prefix="frj", dir="/tmp")  # short: Ray's socket paths are capped
    start = subprocess.run(
        [ray_cli, "start", "--head", f"--port={port}", f"--dashboard-port={dash}",
         "--dashboard-host=127.0.0.1", "--num-cpus=2", "--include-dashboard=true",
         f"--dashboard-agent-listen-port={agent}", f"--temp-dir={temp_dir}"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        yield ray_cli, env, f"http://127.0.0.1:{dash}", start.stdout + start.stderr
    finally:
        _stop_head(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_job_submit_runs_the_smoke_pipeline(head, tmp_path):
    ray_cli, env, dashboard, started = head
    job_env = {**env, "RAY_AUTH_MODE": "token"}  # what the README tells users to set
    out = tmp_path / "out"
    t0 = time.time()
    submit = subprocess.run(
        [ray_cli, "job", "submit", "--address", dashboard, "--working-dir", ".", "--",
         "python", "-m", "fer_ray.tune", "--config", "tune_configs/smoke.yaml",
         "--set", f"output.runs_dir={out / 'runs'}", "--set", f"output.reports_dir={out / 'rep'}",
         "--set", "resources.features_cpus=1"],
        cwd=ROOT, env=job_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    seconds = time.time() - t0
    text = submit.stdout + submit.stderr
    print(f"ray job submit: {seconds:.0f}s\n{text[-3000:]}")
    assert submit.returncode == 0, text[-4000:]
    assert "When connecting to an existing cluster" not in text
    job_id = re.search(r"raysubmit_\w+", text).group(0)
    logs = subprocess.run(
        [ray_cli, "job", "logs", job_id, "--address", dashboard],
        env=job_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert logs.returncode == 0, logs.stderr[-2000:]
    for line in ("[prepare]", "[grid]", "[ensemble]", "[analyse]", "report "):
        assert line in logs.stdout, line
    assert "ray: joined" in logs.stdout  # smoke.yaml's num_cpus was not passed to ray.init
    assert (out / "rep" / "smoke" / "report.md").is_file()


def test_without_the_token_the_cli_says_authentication(head):
    ray_cli, env, dashboard, started = head
    if (
        "Token authentication is enabled" not in started
        and not (Path.home() / ".ray" / "auth_token").is_file()
    ):
        pytest.skip("this Ray does not turn token authentication on for `ray start --head`")
    bare = {k: v for k, v in env.items() if k != "RAY_AUTH_MODE"}
    res = subprocess.run(
        [ray_cli, "job", "list", "--address", dashboard],
        env=bare, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode != 0 and "uthentication" in res.stdout + res.stderr


def test_ray_cli_is_the_venvs():
    assert shutil.which("ray", path=str(Path(sys.executable).parent))
