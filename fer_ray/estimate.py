"""The run's estimate, per stage, before any of it runs: the dry run prints it
(``fer_ray.plan``) and a real run prints and stores it (``record_estimate``) for the measured
seconds to be recorded beside it (``fer_ray.timing``).

How: a probe timed here, in this process, without Ray (a few training steps of the part of
the network the trials train, on a few images of the configured size, with the trial's thread
count), scaled by each stage's work in its ``estimate`` hook (trials x epochs x images over the
trials that run at once, plus the overheads measured on this machine, ``OVERHEADS``); then
calibrated by the measured/estimated ratio of earlier runs on this machine, where there are any
(``fer_ray.timing.calibrate``, which says why).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_ray import layout, protocol, timing
from fer_ray.config import Config
from fer_ray.recipes.core.estimates import OVERHEADS


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
    # the same two steps' median: what they cost while the machine stays as busy as now
    busy_train_s: float = 0.0
    busy_full_train_s: float = 0.0

    def busy(self) -> Probe:
        """The probe as if every step cost its median (the machine as busy as now)."""
        return dataclasses.replace(
            self, train_s=self.busy_train_s, full_train_s=self.busy_full_train_s
        )


_PROBES: dict[str, Probe] = {}  # one probe per process and trial shape (see ``probe``)


def probe(cfg: Config, n_classes: int, steps: int = 5) -> Probe:
    """``measure_step``'s timing, once per process for a given trial shape (network, trial
    threads and device, crop size, batch, recipe): a later run from the same process (a
    notebook, a test session, a sweep driver) reuses it instead of timing again."""
    r = cfg.resources
    key = repr((cfg.model, cfg.faces.size, cfg.train.batch_size, cfg.train.recipe,
                cfg.train.optimizer, r.cpus_per_trial, r.gpus_per_trial, n_classes, steps))  # fmt: skip
    if key not in _PROBES:
        _PROBES[key] = measure_step(cfg, n_classes, steps)
    return _PROBES[key]


def measure_step(cfg: Config, n_classes: int, steps: int = 5) -> Probe:
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

        def step_time(mod: torch.nn.Module, inp: torch.Tensor) -> tuple[float, float]:
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
            # the fastest step: what this machine does when the run has it to itself. A step
            # timed while other work competes for the cores says more about that moment than
            # about the minutes of the run, worst with several threads (torch's threads wait
            # on each other): on 2 shared cores the median of a 2-thread step was 3-6x its
            # fastest, that of a 1-thread step 1.05-1.2x. What runs here usually add, the
            # calibration by earlier runs on this machine carries (fer_ray.timing).
            return float(np.min(times[1:])) / batch, float(np.median(times[1:])) / batch

        train_s, busy_train_s = step_time(module, x)
        t0 = time.perf_counter()
        predict_proba(module, x)
        eval_s = (time.perf_counter() - t0) / batch
        # pretraining trains the whole backbone (FerNet keeps its trunk frozen), on the
        # feature task's threads
        backbone = create_backbone(cfg.model, random_only=True)
        whole = torch.nn.Sequential(backbone, torch.nn.Linear(backbone.num_features, n_classes))
        torch.set_num_threads(max(1, int(cfg.resources.features_cpus)))
        full_train_s, busy_full_train_s = step_time(whole.to(device), pixels.to(device))
        torch.set_num_threads(threads)
        buf = _io.BytesIO()
        t0 = time.perf_counter()
        torch.save({"module": module.state_dict()}, buf)
        checkpoint_s = time.perf_counter() - t0
    finally:
        torch.set_num_threads(before)
    return Probe("features" if use_cache else "pixels", device, threads, size, batch,
                 train_s, eval_s, trunk_s, full_train_s, build_s, checkpoint_s,
                 busy_train_s, busy_full_train_s)  # fmt: skip


def slots(nodes: list[Any], cpu: float, gpu: float) -> int:
    """How many requests of ``cpu`` CPUs and ``gpu`` GPUs the nodes hold at once."""
    n = 0
    for node in nodes:
        k = math.floor(node.cpu / cpu + 1e-9) if cpu > 0 else 10**6
        if gpu > 0:
            k = min(k, math.floor(node.gpu / gpu + 1e-9))
        n += k
    return n


@dataclass
class Estimate:
    """The estimate per stage (``rows``, calibrated), the work in words, the probe and the
    figures they came from."""

    rows: list[timing.Row]
    work: list[str]
    facts: dict[str, Any]
    probe: Probe | None
    busy_total: float | None = None  # uncalibrated, from the probe's median steps

    @property
    def parts(self) -> dict[str, float]:
        """Seconds per part (a stage's hook may give several, e.g. features and grid)."""
        out: dict[str, float] = {}
        for r in self.rows:
            out.update(r.parts or ({r.stage: r.seconds} if r.seconds else {}))
        return out


def estimate(cfg: Config, actions: dict[str, str], inputs: dict[str, Any], cap: Any) -> Estimate:
    """Each stage's estimate: its hook's seconds from the probe timed here, calibrated by the
    measured/estimated ratio of earlier runs on this machine (``fer_ray.timing``)."""
    from fer_ray.data.splits import run_splits

    m = inputs["manifest"]
    n_images, n_classes = len(m), int(m["label"].nunique())
    test, folds = run_splits(m, cfg, layout.cache_root(cfg, "splits"), write=False)
    pool, n_test = int((~test).sum()), int(test.sum())
    r = cfg.resources
    trial_slots = slots(cap.nodes, r.cpus_per_trial, r.gpus_per_trial)
    if r.max_concurrent_trials:
        trial_slots = min(trial_slots, r.max_concurrent_trials)
    task_slots = max(1, slots(cap.nodes, r.cpus_per_task, 0.0))
    running = [s for s, a in actions.items() if a in ("run", "resume")]
    pr = probe(cfg, n_classes) if running else None
    facts = {"images": n_images, "classes": n_classes, "pool": pool, "n_test": n_test,
             "probe": pr, "trial_slots": trial_slots, "task_slots": task_slots,
             "where": cap.where, "folds": [int((folds == f).sum()) for f in range(cfg.grid.folds)]}  # fmt: skip
    rows: list[timing.Row] = []
    work: list[str] = []
    busy = 0.0  # the same work at the probe's median steps: the machine as busy as now
    busy_facts = {**facts, "probe": pr.busy()} if pr is not None else facts
    if running:
        ov = OVERHEADS["ray_join" if "cluster at" in cap.where else "ray_start_local"]
        rows.append(timing.Row(timing.RAY_START, "", ov, ov, "fixed overhead", {"ray start": ov}))
    for stage, action in actions.items():
        if action == "off":
            continue
        if action == "skip":
            rows.append(timing.Row(stage, action, 0.0, 0.0, ""))
            continue
        hook = protocol.hook(protocol.STAGES.get(stage), "estimate")
        if hook is None:
            work.append(f"{stage}: runs; not estimated (the stage declares no estimate)")
            rows.append(timing.Row(stage, action, None, None, ""))
            continue
        seconds, notes = hook(cfg, facts)
        rows.append(timing.Row(stage, action, sum(seconds.values()), None, "", dict(seconds)))
        busy += sum(hook(cfg, busy_facts)[0].values())
        work += notes
    if running:
        ov = OVERHEADS["report"]
        rows.append(timing.Row(timing.REPORT, "", ov, ov, "fixed overhead", {"report": ov}))
    here = timing.machine(cap.where)
    rows = timing.calibrate(rows, timing.earlier(Path(cfg.output.runs_dir), here))
    fixed = sum(r.probe_s or 0.0 for r in rows if r.action == "")
    return Estimate(rows, work, facts, pr, busy + fixed if running else None)


def estimate_lines(e: Estimate) -> list[str]:
    """The table per stage, then the total with its parts."""
    est = e.parts
    total = timing.total(e.rows)
    parts = " · ".join(f"{k} {v:.0f}s" for k, v in est.items())
    return [
        "estimate per stage (probe: this machine's cost per image now, scaled by the work;"
        " calibrated by earlier runs' measured/estimated on this machine where there are any):",
        *timing.table(e.rows),
        f"estimate: {duration(total)} wall ({parts})" if est else "estimate: 0 s",
        *(
            [f"  if the machine stays as busy as during the probe (its median steps, not its"
              f" fastest): about {duration(e.busy_total)}, uncalibrated"]
            if e.busy_total and e.busy_total > 1.25 * total
            else []
        ),
    ]  # fmt: skip


def record_estimate(cfg: Config, actions: dict[str, str], inputs: dict[str, Any],
                    root: Path) -> None:  # fmt: skip
    """A real run's estimate, as the dry run would print it, printed and stored in the run's
    ``timing.json`` (``fer_ray.timing``) before its first stage, for the measured seconds to
    be recorded beside it. An estimate that cannot be made is said in one line, never fatal."""
    from fer_ray.stages.capacity import capacity

    if not any(a in ("run", "resume") for a in actions.values()):
        return
    try:
        cap = capacity(cfg)
        e = estimate(cfg, actions, inputs, cap)
    except Exception as exc:  # noqa: BLE001 - the estimate is advice: the run goes on
        print(f"[estimate] not made ({type(exc).__name__}: {exc})", flush=True)
        timing.start(root, [], "unknown", note=f"no estimate: {type(exc).__name__}")
        return
    timing.start(root, e.rows, cap.where, busy_total_s=e.busy_total)
    for line in estimate_lines(e):
        print(f"[estimate] {line}", flush=True)


def duration(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"
