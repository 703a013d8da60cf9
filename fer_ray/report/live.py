"""Where a run stands, from its stored files: each stage done, running or pending, and for a
running Tune stage how many trials finished of how many.

Why from files: the report is rewritten while the run goes on (after every stage, and during a
Tune stage as trials finish) and by ``python -m fer_ray.report`` on an interrupted run, so it
must tell a finished run from a partial one without the driver. The pipeline writes
``plan.json`` (this invocation's stages, in order, with their Tune experiments) before any
stage runs; a stage is running from its ``started.json`` until its ``done.json``; a Tune
experiment's ``progress.json`` (written by the driver's Tune callback) counts its trials, and
Tune's per-trial ``result.json`` files give the epochs reported so far. A run directory made
before ``plan.json`` existed falls back to the stage folders it has.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_ray import protocol, trial_logs
from fer_ray.layout import DONE, PLAN, PROGRESS, STARTED
from fer_ray.report.run import Run


@dataclass
class Trials:
    """One Tune experiment's progress: trials finished of ``total`` (None: not known)."""

    experiment: str
    total: int | None = None
    finished: int = 0
    running: int = 0
    errored: int = 0
    started: int = 0  # trial folders with at least one reported result
    reports: int = 0  # results reported so far, all trials together
    metric: str | None = None
    best: float | None = None  # the highest value of ``metric`` reported so far (any epoch)
    updated: float | None = None  # when progress.json was last written (epoch seconds)

    def text(self) -> str:
        if self.total is not None:
            out = f"{self.finished} of {self.total} trials finished"
            if self.running:
                out += f", {self.running} running"
            if self.errored:
                out += f", {self.errored} failed"
        else:
            out = f"{self.started} trials started"
        out += f", {self.reports} results reported"
        if self.best is not None:
            out += f", best {self.metric} so far {self.best:.3f}"
        return out


@dataclass
class StageState:
    """``state``: done | running | pending (planned, not started) | not run (no plan says)."""

    stage: str
    state: str
    seconds: float | None = None
    trials: list[Trials] = field(default_factory=list)

    def text(self) -> str:
        """``grid done (52s)``, ``grid running (4 of 6 trials finished, ...)``."""
        out = f"{self.stage} {self.state}"
        if self.seconds is not None:
            out += f" ({self.seconds:.0f}s)"
        return out + self.trials_text()

    def trials_text(self) -> str:
        """`` (4 of 6 trials finished, ...)`` for a running Tune stage, one per experiment."""
        if self.state != "running":
            return ""
        exps = [t for t in self.trials if t.total is not None or t.started]
        return "".join(
            f" ({t.experiment}: {t.text()})" if len(exps) > 1 else f" ({t.text()})" for t in exps
        )


def _plan(run: Run) -> list[dict[str, Any]] | None:
    plan = run.json(PLAN)
    if not isinstance(plan, dict) or not isinstance(plan.get("stages"), list):
        return None
    return [s for s in plan["stages"] if s.get("action") != "off"]


def _fallback_stages(run: Run) -> list[dict[str, Any]]:
    """Without plan.json: the stages the stored config runs, then any other stage folder."""
    from fer_ray import config as config_mod

    try:
        cfg = config_mod.from_dict(run.config)
    except Exception:  # noqa: BLE001 - an old or foreign config: show what has started
        cfg = None
    specs = {n: protocol.STAGES.get(n) for n in protocol.stages()}
    on = protocol.active(cfg, specs) if cfg is not None else {}
    wanted = [s for s in specs if on.get(s)]
    others = sorted(
        p.name
        for p in run.root.iterdir()
        if p.is_dir() and p.name not in wanted and (p / STARTED).is_file()
    )
    return [{"stage": s, "experiments": [s]} for s in (*wanted, *others)]


def _mtime(p: Path) -> float:
    return p.stat().st_mtime if p.is_file() else 0.0


def experiment_trials(run: Run, experiment: str, since: float) -> Trials:
    """Progress of one Tune experiment: ``progress.json`` when written after ``since`` (the
    stage's start: an older one is a previous run's), and Tune's result files."""
    out = Trials(experiment)
    progress = run.path(experiment, PROGRESS)
    if progress.is_file() and _mtime(progress) >= since:
        try:
            p = json.loads(progress.read_text())
        except json.JSONDecodeError:  # being replaced right now: counts come next time
            p = {}
        out.total, out.metric, out.updated = p.get("total"), p.get("metric"), p.get("updated")
        out.finished = int(p.get("finished", 0))
        out.running = int(p.get("running", 0))
        out.errored = int(p.get("errored", 0))
    path = trial_logs.experiment_path(run.root, run.config, experiment)
    metric = out.metric or "val_acc"
    for t in trial_logs.read_trials(path):  # a rerun stage's old experiment was deleted
        out.started += 1
        out.reports += len(t.rows)
        values = [r[metric] for r in t.rows if isinstance(r.get(metric), int | float)]
        if values:
            out.metric = metric
            out.best = max([out.best, *values] if out.best is not None else values)
    return out


def stage_states(run: Run) -> tuple[list[StageState], bool]:
    """Every stage this run means to run, in order, with its state; and whether the stages
    come from ``plan.json`` (then a stage not yet started is ``pending``, else ``not run``)."""
    plan = _plan(run)
    stages = plan if plan is not None else _fallback_stages(run)
    out = []
    for s in stages:
        name = s["stage"]
        done_file, started_file = run.path(name, DONE), run.path(name, STARTED)
        if done_file.is_file():
            seconds = (run.json(name, DONE) or {}).get("seconds")
            out.append(StageState(name, "done", seconds))
        elif started_file.is_file():
            since = _mtime(started_file)
            exps = s.get("experiments") or [name]
            trials = [experiment_trials(run, e, since) for e in exps]
            out.append(StageState(name, "running", trials=trials))
        else:
            out.append(StageState(name, "pending" if plan is not None else "not run"))
    return out, plan is not None


def is_partial(states: list[StageState], planned: bool) -> bool:
    """A run with a stage running, or (by its plan) still to run, is partial."""
    unfinished = ("running", "pending") if planned else ("running",)
    return any(s.state in unfinished for s in states)


def banner(states: list[StageState]) -> str:
    """The partial report's one sentence: what is done, what runs, what is still to come."""
    by = {k: [s for s in states if s.state == k] for k in ("done", "running", "pending")}
    parts = [
        f"{label}: " + "; ".join(s.stage + s.trials_text() for s in by[k])
        for k, label in (("done", "done"), ("running", "running"), ("pending", "pending"))
        if by[k]
    ]
    updated = [t.updated for s in by["running"] for t in s.trials if t.updated]
    when = ""
    if updated:
        when = f" Trial counts as of {time.strftime('%H:%M:%S', time.localtime(max(updated)))}."
    return (
        "this report was written while the run was in progress (or after it stopped "
        "unfinished; `python -m fer_ray.tune --resume` finishes it), so it shows only the "
        "stages done so far. Stages " + " · ".join(parts) + "." + when + " The final report "
        "replaces this one."
    )
