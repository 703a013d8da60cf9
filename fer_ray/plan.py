"""``python -m fer_ray.tune --dry-run``: what a run would do and about how long it would take,
before any of it runs.

Why: a real config (45 grid trials, 15 members, ImageNet-size crops) runs for hours, and a
typo in ``--set`` or a stale run directory shows only once it has started. The dry run prints

* each stage's action (run, skip, resume, off) and why: the fingerprints decide, exactly as
  the pipeline's ``plan`` does, and for a stage that reruns it names the keys that changed;
* the work: images, trials, epochs, training images per trial, tasks;
* what each trial and task asks Ray for, and what the cluster has (the configured cluster's
  nodes when it answers at ``resources.address``, else this machine);
* an estimate of the wall time, from a probe timed here, in this process, without Ray: a few
  training steps of the part of the network the trials train, on a few images of the
  configured size, with the trial's thread count; scaled by trials x epochs x images over the
  trials that run at once, plus the overheads measured on this machine (``OVERHEADS``).

Nothing runs and nothing is written under ``output.runs_dir``.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_ray import files, layout, pipeline, protocol
from fer_ray.config import Config
from fer_ray.errors import StageError
from fer_ray.layout import RunPaths
from fer_ray.recipes.core.estimates import OVERHEADS


@dataclass
class StagePlan:
    stage: str
    action: str  # run | skip | resume | off
    why: str


@dataclass
class Probe:
    """Seconds per image measured here (``kind``: the trials' input, cached trunk features or
    pixels) and per model build / checkpoint, on ``device`` with ``threads`` threads."""

    kind: str
    device: str
    threads: int
    size: int
    batch: int
    train_s: float  # one image through forward, backward and the optimiser step
    eval_s: float  # one image forward (validation, test)
    trunk_s: float  # one image through the frozen trunk (the feature cache's pass)
    full_train_s: float  # one image through the whole backbone, trained (pretraining)
    build_s: float  # a trial's create_model
    checkpoint_s: float  # a trial's checkpoint (state + optimiser) to bytes


@dataclass
class DryRun:
    stages: list[StagePlan]
    facts: dict[str, Any] = field(default_factory=dict)
    estimate: dict[str, float] = field(default_factory=dict)  # per part, seconds
    lines: list[str] = field(default_factory=list)

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


def probe(cfg: Config, n_classes: int, steps: int = 5) -> Probe:
    """Time the trials' training step here, in this process: the network the config builds
    (random weights: timing does not depend on them), the trial's threads, the crop size."""
    import io as _io

    import numpy as np
    import torch

    from fer_ray.models.factory import create_backbone, create_model
    from fer_ray.train.features import cache_applicable, normalize
    from fer_ray.train.loop import make_optimizer, predict_proba

    threads = max(1, int(cfg.resources.cpus_per_trial))
    gpu = cfg.resources.gpus_per_trial > 0 and torch.cuda.is_available()
    device = "cuda" if gpu else "cpu"
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        batch = max(2, min(cfg.train.batch_size, 32))
        size = cfg.faces.size
        g = torch.Generator().manual_seed(0)
        pixels = normalize(torch.randint(0, 256, (batch, size, size, 3), generator=g).byte())
        state = create_backbone(cfg.model, random_only=True).state_dict()
        t0 = time.perf_counter()
        model = create_model(
            cfg.model, n_classes, max(cfg.grid.hidden), head_seed=0, backbone_state=state
        ).to(device)
        build_s = time.perf_counter() - t0
        use_cache, _ = cache_applicable(cfg.model, cfg.train)
        with torch.no_grad():
            model.trunk.eval()
            t0 = time.perf_counter()
            feats = model.trunk(pixels.to(device))
            trunk_s = (time.perf_counter() - t0) / batch
        module, x = (model.tail, feats) if use_cache else (model, pixels.to(device))
        y = torch.randint(0, n_classes, (batch,), generator=g).to(device)

        def step_time(mod: torch.nn.Module, inp: torch.Tensor) -> float:
            params = [p for p in mod.parameters() if p.requires_grad]
            opt = make_optimizer(params, cfg.train, 1e-3)
            mod.train()
            times = []
            for _ in range(steps + 1):  # the first step warms up (allocations, kernels)
                t = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(mod(inp), y).backward()
                opt.step()
                if gpu:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
            return float(np.median(times[1:])) / batch  # the median: as busy as the machine is

        train_s = step_time(module, x)
        t0 = time.perf_counter()
        predict_proba(module, x)
        eval_s = (time.perf_counter() - t0) / batch
        # pretraining trains the whole backbone (FerNet keeps its trunk frozen), on the
        # feature task's threads
        backbone = create_backbone(cfg.model, random_only=True)
        whole = torch.nn.Sequential(backbone, torch.nn.Linear(backbone.num_features, n_classes))
        torch.set_num_threads(max(1, int(cfg.resources.features_cpus)))
        full_train_s = step_time(whole.to(device), pixels.to(device))
        torch.set_num_threads(threads)
        buf = _io.BytesIO()
        t0 = time.perf_counter()
        torch.save({"module": module.state_dict()}, buf)
        checkpoint_s = time.perf_counter() - t0
    finally:
        torch.set_num_threads(before)
    return Probe("features" if use_cache else "pixels", device, threads, size, batch,
                 train_s, eval_s, trunk_s, full_train_s, build_s, checkpoint_s)  # fmt: skip


def _slots(nodes: list[Any], cpu: float, gpu: float) -> int:
    """How many requests of ``cpu`` CPUs and ``gpu`` GPUs the nodes hold at once."""
    n = 0
    for node in nodes:
        k = math.floor(node.cpu / cpu + 1e-9) if cpu > 0 else 10**6
        if gpu > 0:
            k = min(k, math.floor(node.gpu / gpu + 1e-9))
        n += k
    return n


def dry_run(cfg: Config, resume: bool = False, fresh: bool = False,
            out: Callable[[str], None] = print) -> DryRun:  # fmt: skip
    """Plan the run, probe, estimate; print it through ``out``; return the figures."""
    from fer_ray.data.splits import holdout_and_folds
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
    m = inputs["manifest"]
    n_images, n_classes = len(m), int(m["label"].nunique())
    test, folds = holdout_and_folds(
        m["label"].to_numpy(),
        m["group"].astype(str).to_numpy(),
        folds=cfg.grid.folds,
        seed=cfg.seed,
        test_fraction=cfg.ensemble.test_fraction,
        test_split=cfg.data.test_split,
        own_split=m["split"].fillna("").to_numpy(),
    )
    pool, n_test = int((~test).sum()), int(test.sum())
    r = cfg.resources
    trial_slots = _slots(cap.nodes, r.cpus_per_trial, r.gpus_per_trial)
    if r.max_concurrent_trials:
        trial_slots = min(trial_slots, r.max_concurrent_trials)
    task_slots = max(1, _slots(cap.nodes, r.cpus_per_task, 0.0))
    pr = probe(cfg, n_classes)
    est: dict[str, float] = {}
    lines = [f"dry run: nothing runs, nothing is written; run directory {RunPaths.of(cfg).root}"]
    lines.append("stages:")
    lines += [f"  {p.stage:<12} {p.action:<6} {p.why}" for p in plans]
    running = [p.stage for p in plans if p.action in ("run", "resume")]
    if running:
        est["ray start"] = OVERHEADS["ray_join" if "cluster at" in cap.where else "ray_start_local"]
    lines.append(f"data: {n_images} images, {n_classes} classes; test holdout {n_test}, "
                 f"grid folds {[int((folds == f).sum()) for f in range(cfg.grid.folds)]}")  # fmt: skip
    work: list[str] = []
    facts = {"images": n_images, "classes": n_classes, "pool": pool, "n_test": n_test,
             "probe": pr, "trial_slots": trial_slots, "task_slots": task_slots}  # fmt: skip
    for stage in running:
        estimate = protocol.hook(pipeline.STAGES.get(stage), "estimate")
        if estimate is None:
            work.append(f"{stage}: runs; not estimated (the stage declares no estimate)")
            continue
        seconds, notes = estimate(cfg, facts)
        est.update(seconds)
        work += notes
    if running:
        est["report"] = OVERHEADS["report"]
    lines.append("work:")
    lines += [f"  {w}" for w in work] or ["  none: every stage is done"]
    lines += _resource_lines(cfg, cap.where, trial_slots, task_slots)
    lines.append(
        f"probe ({pr.device}, {pr.threads} thread(s), {pr.batch} images of {pr.size} px, "
        f"trials train on {pr.kind}): {1e3 * pr.train_s:.2f} ms/image to train, "
        f"{1e3 * pr.eval_s:.2f} ms/image to evaluate, model build {pr.build_s:.2f} s"
    )
    if r.gpus_per_trial and pr.device == "cpu":
        lines.append("  (no GPU here: timed on CPU, so the estimate is an upper bound)")
    total = sum(est.values())
    parts = " · ".join(f"{k} {v:.0f}s" for k, v in est.items())
    lines.append(f"estimate: {_duration(total)} wall ({parts})" if est else "estimate: 0 s")
    for line in lines:
        out(line)
    facts = {"images": n_images, "n_test": n_test, "trial_slots": trial_slots,
             "task_slots": task_slots, "probe": pr, "where": cap.where}  # fmt: skip
    return DryRun(plans, facts, est, lines)


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


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"
