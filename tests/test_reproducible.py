"""Same config, same machine, cold caches: the same tables. Killed anywhere, by SIGKILL or
SIGTERM, and started again by one fixed command: the same tables, no finished work redone.

Two cold smoke runs (fresh processes, empty run and cache folders) must give byte-identical
CSVs: every table of the report except ``nodes.csv`` (where and how long work ran) and
``timing.csv`` (each stage's estimated and measured seconds) and ``tune_trials.csv`` (each
trial's id, folder, node and seconds beside its scores), and every stage table except
``work.csv`` (where and how long, per stage). The first is the session's shared smoke run
(``smoke_done``). The second is started by ``--resume auto`` (what a supervisor retries) and
stopped at ten named points across every stage (it announces each through
``fer_ray.testhooks``): nine times SIGKILL to its whole process group, once SIGTERM to the
driver mid-grid (what Kubernetes, Slurm and ``ray job stop`` send), which must be a clean stop:
exit 143, a hint to resume, no native dump; after it a plain rerun must refuse and name
``--resume``. Each time the same command starts it again; it must end with the first run's
tables, without redoing any finished trial, task or cache entry. (One run serves every check:
each separately would cost a whole smoke run and prove less.)
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, smoke_cmd, start_until, tune_terminated

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

# where and how long, differing by design; tune_trials.csv (the report's per-trial table) also
# names Tune's trial ids and folders, new in every run; its scores are those of trials.csv
TIMING = {"nodes.csv", "work.csv", "timing.csv", "tune_trials.csv"}


def _tables(tmp: Path) -> dict[str, Path]:
    out = {}
    for base in (tmp / "reports" / "smoke", tmp / "runs" / "smoke"):
        for p in base.rglob("*.csv"):
            if p.name not in TIMING and "tune" not in p.relative_to(base).parts:
                out[str(p.relative_to(tmp))] = p
    return out


def _differences(a: Path, b: Path) -> list[str]:
    ta, tb = _tables(a), _tables(b)
    assert ta.keys() == tb.keys()
    return [name for name in ta if not filecmp.cmp(ta[name], tb[name], shallow=False)]


def _finished_units(tmp: Path) -> dict[str, tuple]:
    """Everything done so far, with what must not change when it is not redone."""
    out: dict[str, tuple] = {}
    run = tmp / "runs" / "smoke"
    for stage, is_final in (
        ("grid", lambda row: row.get("epoch") == 3),
        ("ensemble", lambda row: bool(row.get("final"))),
    ):
        done = tune_terminated(run / "tune" / stage)
        for res in (run / "tune" / stage).glob("*/result.json"):
            rows = [json.loads(x) for x in res.read_text().splitlines() if x.strip()]
            trained = [r for r in rows if not r.get("replayed") and not r.get("final")]
            if any(is_final(r) for r in rows) and any(t in res.parent.name for t in done):
                out[f"{stage}:{res.parent.name}"] = (len(trained),)
    for pattern in ("analyse/tasks/*.json", "*/done.json"):
        for p in run.glob(pattern):
            out[str(p.relative_to(run))] = (p.stat().st_mtime_ns,)
    for p in (tmp / "runs" / ".cache").rglob("*"):
        # not a hidden temporary file: an entry being written (atomically, then renamed) by a
        # task when the run was killed; its worker may finish it just after the kill
        if p.is_file() and not p.name.startswith("."):
            out[str(p.relative_to(tmp))] = (p.stat().st_mtime_ns,)
    return out


# Where to kill, in pipeline order: named points the run announces (fer_ray.testhooks), two or
# more per stage; the run is killed the moment it reaches each, so every stage is hit.
KILL_POINTS = [
    ("prepare", "stage:prepare"),
    ("prepare chunks", "task_stored:prepare"),
    ("pretraining", "pretrain_epoch:1"),
    ("pretraining", "pretrain_epoch:2"),
    ("grid trials (SIGTERM)", "epoch:grid:2"),
    ("grid trials", "trial_complete:grid"),
    ("ensemble trials", "epoch:ensemble:3"),
    ("ensemble trials", "trial_complete:ensemble"),
    ("analyse tasks", "stage:analyse"),
    ("analyse tasks", "task_stored:analyse"),
]


def _stop(proc, point: str, log: Path) -> None:
    """SIGKILL the run's whole process group at once; at the SIGTERM point, send SIGTERM to the
    driver alone and check that it stops cleanly."""
    if "SIGTERM" not in point:
        with contextlib.suppress(ProcessLookupError):  # it may have ended without the point
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and every Ray process it started
        proc.wait()
        return
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=600) == 143, log.read_text()[-3000:]
    err = log.read_text()
    assert "terminated (SIGTERM)" in err and "--resume" in err, err[-3000:]
    assert "Aborted" not in err and "SIGABRT" not in err and "Traceback" not in err, err[-3000:]


def _plain_rerun_refuses(tmp: Path) -> None:
    """Without --resume, a run a stage of which was interrupted is not started over."""
    cmd = smoke_cmd(tmp)
    i = cmd.index("--resume")
    plain = subprocess.run(cmd[:i] + cmd[i + 2 :], cwd=ROOT, capture_output=True, text=True)
    assert plain.returncode == 1 and "was interrupted" in plain.stderr, plain.stderr[-2000:]
    assert "--resume" in plain.stderr and "Traceback" not in plain.stderr


def test_a_second_cold_run_killed_anywhere_resumes_to_the_same_tables_without_redoing_work(
    smoke_done, tmp_path
):
    a = smoke_done
    run = tmp_path / "runs" / "smoke"
    seen: dict[str, tuple] = {}
    hits = []
    t0 = time.time()
    for i, (point, hook) in enumerate(KILL_POINTS):
        log = tmp_path / f"run{i}.log"
        proc, reached = start_until(smoke_cmd(tmp_path), hook, tmp_path / f"hook{i}", log=log)
        _stop(proc, point, log)
        running = sorted(
            s.parent.name
            for s in run.glob("*/started.json")
            if not (s.parent / "done.json").exists()
        )
        hits.append(
            f"{point}: {'+'.join(running) or 'between stages'}"
            if reached
            else point + ": not reached"
        )
        if "SIGTERM" in point:
            assert running == ["grid"], running
            _plain_rerun_refuses(tmp_path)
        now = _finished_units(tmp_path)
        changed = [k for k, v in seen.items() if now.get(k) != v]
        assert changed == [], f"kill at {point}: finished work was redone: {changed}"
        seen.update(now)
    subprocess.run(smoke_cmd(tmp_path), cwd=ROOT, check=True, capture_output=True)
    final = _finished_units(tmp_path)
    assert [k for k, v in seen.items() if final.get(k) != v] == []
    print(f"{len(hits)} stops ({'; '.join(hits)}); total {time.time() - t0:.0f}s")
    assert len(hits) == 10 and not [h for h in hits if "not reached" in h], hits
    assert len(_tables(a)) >= 25
    assert _differences(a, tmp_path) == []
