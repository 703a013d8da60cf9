import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fer_ray import config

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "tune_configs" / "smoke.yaml"


def pytest_itemcollected(item: pytest.Item) -> None:
    """Under pytest-xdist (``--dist loadgroup``, pyproject's addopts): the slow tests form one
    group, run in order on one worker (their module and session runs made once, one Ray at a
    time), while the other worker takes the fast modules whole (their module fixtures made
    once). Marked as each test is collected, before xdist reads the groups."""
    group = "slow" if item.get_closest_marker("slow") else item.nodeid.split("::")[0]
    item.add_marker(pytest.mark.xdist_group(group))


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


# the smoke config, smaller still: one (lr, hidden) cell over two folds, one member, a small
# CNN from scratch; for tests of the plumbing around a run, not of its numbers
TINY = [
    "data.n_subjects=8",
    "data.per_class=1",
    "data.image_size=48",
    "faces.size=32",
    "model.backbone=small_cnn",
    "model.weights=none",
    "model.train_last_convs=-1",
    "train.batch_size=16",
    "train.epochs=2",
    "grid.folds=2",
    "grid.lr=[0.01]",
    "grid.hidden=[16]",
    "ensemble.members=1",
    "ensemble.phase2_epochs=0",
    "ensemble.test_fraction=0.25",
    "analyse.enabled=false",
]


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One crop/weights cache for the whole session: pretraining is paid once."""
    return tmp_path_factory.mktemp("cache")


def smoke_cmd(tmp: Path, *overrides: str) -> list[str]:
    """``python -m fer_ray.tune`` on smoke.yaml with every output (runs, reports, caches)
    under ``tmp``; ``--resume auto`` (start or resume), the one command a supervisor retries."""
    cmd = [sys.executable, "-m", "fer_ray.tune", "-c", str(SMOKE), "--resume", "auto"]
    for o in (f"output.runs_dir={tmp / 'runs'}", f"output.reports_dir={tmp / 'reports'}",
              *overrides):  # fmt: skip
        cmd += ["--set", o]
    return cmd


@pytest.fixture(scope="session")
def smoke_done(tmp_path_factory) -> Path:
    """One cold run of smoke.yaml, finished: a fresh process with its own Ray and empty caches
    (``runs/.cache``), started by ``--resume auto`` where no run exists. The slow tests that
    read a finished run or compare their tables with an uninterrupted one share it (a smoke run
    costs most of a minute); a test that changes files works on a copy (``copy_of``). Its
    terminal output is in ``stdout.txt``."""
    tmp = tmp_path_factory.mktemp("smoke_done")
    done = subprocess.run(smoke_cmd(tmp), cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    (tmp / "stdout.txt").write_text(done.stdout)
    return tmp


def copy_of(src: Path, dst: Path) -> Path:
    """A copy of a shared run's folder (or cache) for a test that changes it."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory) -> Iterator[None]:
    """One local Ray for a test module's in-process runs, started as a run of smoke.yaml
    starts it (``cluster.connect``: 2 CPUs, no dashboard, no worker logs, the runtime env), so
    the settings cannot drift; ``run_pipeline`` then joins it and leaves it running, and it
    stops at the module's end. Each Ray start costs seconds, more on a busy machine.

    Not for a test that needs a Ray of its own: one that sets an environment variable the
    workers read (``FER_RAY_FAULT_*``: workers inherit Ray's start-up environment), sets
    ``resources.address`` or other cluster settings (``connect`` returns at once when a Ray is
    up), or tests Ray's start, nodes or shutdown."""
    import ray

    from fer_ray.stages import cluster, common  # noqa: F401 - common: its env defaults first

    started = cluster.connect(smoke_config(tmp_path_factory.mktemp("ray_session")))
    yield
    if started:  # stop what we started, nothing else
        ray.shutdown()


def start_until(
    cmd: list[str], point: str, fifo: Path, env: dict | None = None, log: Path | None = None
):
    """Start ``cmd`` (in its own process group) and return once it reaches the named point
    (``fer_ray.testhooks``) or exits first: ``(process, reached)``. The run announces the point
    through the FIFO, so nothing here sleeps or watches files. Its output goes to ``log``
    (stdout and stderr together) when one is given."""
    import os
    import threading

    os.mkfifo(fifo)
    env = {**(env or os.environ), "FER_RAY_HOOK_AT": point, "FER_RAY_HOOK_FIFO": str(fifo)}
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - the child writes it
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                            stdout=out, stderr=subprocess.STDOUT if log else out)  # fmt: skip
    if log:
        out.close()  # the child holds its own descriptor
    got: list[str] = []

    def listen() -> None:
        with open(fifo) as hook:  # blocks until the run reaches the point (or we let go)
            got.append(hook.read())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()

    def let_go() -> None:  # the run ended without the point: release a waiting listener
        proc.wait()
        with contextlib.suppress(OSError):  # no listener any more: nothing to release
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    threading.Thread(target=let_go, daemon=True).start()
    listener.join()
    return proc, got == [point]


def tune_terminated(experiment: Path) -> set[str]:
    """The trial ids Tune's experiment state holds as finished (saved every few seconds): what
    a restore never runs again. A trial that reported its last epoch just before a kill, before
    that save, may run again from its last checkpoint, as Tune documents."""
    import json

    states = sorted(experiment.glob("experiment_state*.json"))
    if not states:
        return set()
    try:
        data = json.loads(states[-1].read_text())
    except json.JSONDecodeError:  # Tune was writing it when the run was killed
        return set()
    trials = [json.loads(t[0]) if isinstance(t[0], str) else t[0] for t in data["trial_data"]]
    return {t["trial_id"] for t in trials if t.get("status") == "TERMINATED"}
