"""``python -m fer_ray.tune --dry-run``: what a run would do and about how long it would take,
before any of it runs.

Why: a real config (45 grid trials, 15 members, ImageNet-size crops) runs for hours, and a
typo in ``--set`` or a stale run directory shows only once it has started. The dry run prints

* each stage's action (run, skip, resume, off) and why: the fingerprints decide, exactly as
  the pipeline's ``plan`` does, and for a stage that reruns it names the keys that changed;
* the work: images, trials, epochs, training images per trial, tasks;
* what each trial and task asks Ray for, and what the cluster has (the configured cluster's
  nodes when it answers at ``resources.address``, else this machine);
* an estimate of the wall time per stage and in all (``fer_ray.estimate``): a probe timed
  here, in this process, without Ray, scaled by each stage's work, and calibrated by what
  earlier runs on this machine measured against their own estimate (``fer_ray.timing``). A
  real run prints and stores the same estimate and records each stage's measured seconds
  beside it (``runs/<name>/timing.json``).

Nothing runs and nothing is written under ``output.runs_dir``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_ray import files, layout, pipeline, protocol, timing
from fer_ray.config import Config
from fer_ray.errors import StageError
from fer_ray.estimate import estimate, estimate_lines
from fer_ray.layout import RunPaths


@dataclass
class StagePlan:
    stage: str
    action: str  # run | skip | resume | off
    why: str


@dataclass
class DryRun:
    stages: list[StagePlan]
    facts: dict[str, Any] = field(default_factory=dict)
    estimate: dict[str, float] = field(default_factory=dict)  # per part, seconds
    lines: list[str] = field(default_factory=list)
    rows: list[timing.Row] = field(default_factory=list)  # per stage (fer_ray.timing)

    @property
    def total_s(self) -> float:
        return sum(self.estimate.values())


def _changed(cfg: Config, root: Path, stage: str, inputs: dict[str, Any]) -> str | None:
    started = root / stage / layout.STARTED
    if not started.is_file():
        return None
    keys = files.read_json(started).get("keys")
    if not keys:
        return None
    what = pipeline.changed_keys(keys, pipeline.stage_inputs(cfg, inputs)[stage])
    return "; ".join(what) if what else None


def stage_plan(cfg: Config, resume: bool, fresh: bool, inputs: dict[str, Any]) -> list[StagePlan]:
    """Each stage's action as the pipeline would decide it, and the reason in words."""
    paths = RunPaths.of(cfg)
    if resume:
        pipeline.check_resumable(paths)
    # --fresh: plan as for an empty run directory (one that does not exist: nothing is read)
    root = paths.root / ".fer_ray_dry_run_fresh" if fresh else paths.root
    with redirect_stdout(io.StringIO()):  # plan() notes interrupted stages; we say it below
        actions = pipeline.plan(cfg, root, True, inputs)
    out = []
    specs = {n: pipeline.STAGES.get(n) for n in actions}
    ups = protocol.parents(specs)
    for stage, action in actions.items():
        rerun = [p for p in ups[stage] if actions[p] in ("run", "resume")]
        if action == "off":
            off = [p for p in ups[stage] if actions[p] == "off"]
            why = f"{', '.join(off)} is off" if off else "turned off by the config"
        elif action == "skip":
            why = "done with the same inputs (fingerprints match)"
        elif action == "resume":
            why = (
                "interrupted; --resume finishes it from its checkpoints"
                if resume
                else "interrupted: the run would stop here; add --resume (continue) or --fresh"
            )
        elif fresh:
            why = "--fresh deletes the run directory"
        elif rerun:
            why = f"{', '.join(rerun)} reruns, so everything after it does"
        elif not (paths.root / stage).is_dir():
            why = "no results yet"
        else:
            changed = _changed(cfg, paths.root, stage, inputs)
            why = f"inputs changed: {changed}" if changed else "inputs changed (data files or code)"
        out.append(StagePlan(stage, action, why))
    return out


def dry_run(cfg: Config, resume: bool = False, fresh: bool = False,
            out: Callable[[str], None] = print) -> DryRun:  # fmt: skip
    """Plan the run, probe, estimate; print it through ``out``; return the figures."""
    from fer_ray.stages.capacity import capacity

    inputs = pipeline.input_identity(cfg)
    plans = stage_plan(cfg, resume, fresh, inputs)
    cap = capacity(cfg)
    problems = every_problem(cfg, {p.stage: p.action for p in plans}, inputs, cap.nodes)
    if problems:
        for line in problems:
            out(f"problem: {line}")
        raise StageError(
            f"the dry run found {len(problems)} problem(s), listed above: the run would stop"
            " at the first"
        )
    e = estimate(cfg, {p.stage: p.action for p in plans}, inputs, cap)
    f, pr, r = e.facts, e.probe, cfg.resources
    lines = [f"dry run: nothing runs, nothing is written; run directory {RunPaths.of(cfg).root}"]
    lines.append("stages:")
    lines += [f"  {p.stage:<12} {p.action:<6} {p.why}" for p in plans]
    lines.append(f"data: {f['images']} images, {f['classes']} classes; test holdout "
                 f"{f['n_test']}, grid folds {f['folds']}")  # fmt: skip
    lines.append("work:")
    lines += [f"  {w}" for w in e.work] or ["  none: every stage is done"]
    lines += _resource_lines(cfg, cap.where, f["trial_slots"], f["task_slots"])
    if pr is not None:
        lines.append(
            f"probe ({pr.device}, {pr.threads} thread(s), {pr.batch} images of {pr.size} px, "
            f"trials train on {pr.kind}): {1e3 * pr.train_s:.2f} ms/image to train, "
            f"{1e3 * pr.eval_s:.2f} ms/image to evaluate, model build {pr.build_s:.2f} s"
        )
        if r.gpus_per_trial and pr.device == "cpu":
            lines.append("  (no GPU here: timed on CPU, so the estimate is an upper bound)")
    lines += estimate_lines(e)
    for line in lines:
        out(line)
    facts = {"images": f["images"], "n_test": f["n_test"], "trial_slots": f["trial_slots"],
             "task_slots": f["task_slots"], "probe": pr, "where": cap.where}  # fmt: skip
    return DryRun(plans, facts, e.parts, lines, e.rows)


def every_problem(
    cfg: Config, actions: dict[str, str], inputs: dict[str, Any], nodes: list[Any]
) -> list[str]:
    """Every check the run makes before its first stage (each stage's preflight, each
    resource request against the nodes), all of them, not only the first that fails."""
    from fer_ray.errors import FerRayError
    from fer_ray.stages import cluster

    problems: list[str] = []
    seen: set[str] = set()
    for stage, action in actions.items():
        spec = pipeline.STAGES.get(stage)
        if action not in ("run", "resume") or not spec.preflight or spec.preflight in seen:
            continue
        seen.add(spec.preflight)
        try:
            protocol.hook(spec, "preflight")(cfg, inputs)
        except FerRayError as e:
            problems.append(f"{e.kind}: {' '.join(str(e).split())}")
    fitted, _ = cluster.fit_defaults(cfg, nodes)
    types = cfg.resources.node_types or []
    for req in cluster.requests(fitted):
        try:
            cluster.plan_requests([req], nodes, types)
        except FerRayError as e:
            problems.append(f"{e.kind}: {' '.join(str(e).split())}")
    return problems


def _resource_lines(cfg: Config, where: str, trial_slots: int, task_slots: int) -> list[str]:
    """What each piece of work asks for, what the cluster holds at once, and a busy machine."""
    r = cfg.resources
    gpu_req = f" + {r.gpus_per_trial:g} GPU" if r.gpus_per_trial else ""
    lines = [
        f"resources: each trial {r.cpus_per_trial:g} CPU{gpu_req}"
        f"{f' (at most {r.max_concurrent_trials} at once)' if r.max_concurrent_trials else ''};"
        f" each task {r.cpus_per_task:g} CPU; the pretraining/feature task {r.features_cpus} CPU",
        f"cluster: {where} -> {trial_slots} trials and {task_slots} tasks at once",
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    cpus = os.cpu_count() or 1
    if "cluster at" not in where and load > cpus:
        lines.append(
            f"  busy: load average {load:.1f} on {cpus} cores; the probe was timed in it, but "
            "other work competing with the run makes it take longer than estimated"
        )
    return lines
