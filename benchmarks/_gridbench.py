"""Shared machinery of the grid benchmarks (bench_overhead, bench_scaling, bench_paper_gpu).

* ``bench_config``: the default run's config (``fer_ray.config.Config()``) with overrides.
* ``bundle``: the trial data bundle built by the pipeline's own prepare + features code.
* ``tune_grid``: the pipeline's own grid stage (``fer_ray.stages.grid.run``), instrumented:
  every trial records, from inside its actor, when it started and ended, and the seconds spent
  fetching the data bundle, writing checkpoints (bytes too), reporting to Tune and training.
* ``pool_grid``: the same trials (same code: ``create_model`` + ``fer_ray.train.loop.fit`` on
  the same bundle, same seeds, same thread count) in a plain ``multiprocessing`` pool with
  the same concurrency; the bundle is sent to each worker once.
* ``cpu_seconds``: CPU time of this process and of every process below it (Ray's daemons,
  actors, pool workers), read from /proc, so contention shows even when wall times are noisy.

Not a package: the scripts next to it import it by path; Ray ships the instrumented trainable
by value (it is a closure built here).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fer_ray import config as config_mod
from fer_ray.config import Config

TICK = os.sysconf("SC_CLK_TCK")


def load() -> str:
    """The 1-minute load average and the core count, for every printed figure."""
    la = os.getloadavg()
    return f"load {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} on {os.cpu_count()} cores"


def bench_config(name: str, runs_dir: str, overrides: list[str]) -> Config:
    """The default run (``Config()``, what ``tune_configs/default.yaml`` resolves to) with
    ``overrides`` (``key=value``) applied, writing under ``runs_dir/<name>``."""
    reports = Path(runs_dir) / ".bench_reports"  # a live report must not land in reports/
    return config_mod.from_dict(
        {"name": name},
        [f"output.runs_dir={runs_dir}", f"output.reports_dir={reports}", *overrides],
    )


# ---------------------------------------------------------------- processes and CPU time


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(name, parent pid, CPU seconds user+system) of a live process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    f = raw[raw.rindex(")") + 2 :].split()
    return name, int(f[1]), (int(f[11]) + int(f[12])) / TICK


def process_tree(root: int | None = None) -> dict[int, tuple[str, float]]:
    """Every live process below ``root`` (default: this one), root included: pid → (name, CPU s)."""
    root = root or os.getpid()
    stats = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (s := _stat(int(d.name))) is not None:
            stats[int(d.name)] = s
    out, todo = {}, [root]
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        if pid in stats:
            out[pid] = (stats[pid][0], stats[pid][2])
            todo.extend(children.get(pid, []))
    return out


def cpu_delta(before: dict, after: dict) -> dict[int, tuple[str, float]]:
    """CPU seconds each process used between two ``process_tree`` readings (processes that
    ended in between are lost: read ``after`` while they still live)."""
    return {p: (n, c - before.get(p, (n, 0.0))[1]) for p, (n, c) in after.items()}


# ---------------------------------------------------------------- the bundle


def bundle(cfg: Config) -> tuple[Any, Any, pd.DataFrame, dict[str, Any]]:
    """(object ref, TrialData, splits table, facts) through the pipeline's own code; Ray must
    be connected."""
    import ray

    from fer_ray.stages import features, prepare

    t0 = time.perf_counter()
    prepared = prepare.load_prepared(cfg)
    t1 = time.perf_counter()
    ref, info = features.build(cfg, prepared)
    data = ray.get(ref)
    splits = pd.DataFrame(
        {"item": np.arange(len(data.y)), "label": data.y, "group": data.groups,
         "fold": data.folds, "test": data.test}
    )  # fmt: skip
    info = {**info, "prepare_s": t1 - t0, "features_s": time.perf_counter() - t1}
    return ref, data, splits, info


def trials_of(cfg: Config) -> list[tuple[float, int, int]]:
    """The grid's (lr, hidden, fold) cells in Tune's grid order."""
    return [
        (lr, h, f) for f in range(cfg.grid.folds) for h in cfg.grid.hidden for lr in cfg.grid.lr
    ]


def concurrency(cfg: Config) -> int:
    """How many trials Tune runs at once on the connected cluster."""
    import ray

    n = int(ray.cluster_resources().get("CPU", 1) // cfg.resources.cpus_per_trial)
    mc = cfg.resources.max_concurrent_trials
    return max(1, min(n, mc) if mc else n)


# ---------------------------------------------------------------- one trial, no Tune


def train_cell(cfg: Config, data: Any, lr: float, hidden: int, fold: int,
               fit_options: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The grid trainable's training without Tune: same model, splits, seeds and ``fit``
    options, the last epoch's validation predictions as the trial's result."""
    from fer_ray.models.factory import create_model
    from fer_ray.seeds import trial_seed
    from fer_ray.train.loop import Phase, fit, predict_proba

    seed = trial_seed(cfg.seed, lr, hidden, fold)
    device = "cuda" if cfg.resources.gpus_per_trial > 0 else "cpu"
    model = create_model(
        cfg.model, data.n_classes, hidden, head_seed=seed, backbone_state=data.backbone_state
    ).to(device)
    module = model.tail if data.kind == "features" else model
    train = data.split((data.folds >= 0) & (data.folds != fold), train=True)
    val = data.split(data.folds == fold)
    out: dict[str, Any] = {}
    fit_options = {"keep_best": False, **(fit_options or {})}  # as grid_trainable passes

    def on_epoch(row: dict[str, Any], snapshot: Any) -> None:
        if row["epoch"] == cfg.train.epochs:
            out["val_preds"] = "".join(
                chr(48 + int(c)) for c in predict_proba(module, val.x).argmax(1)
            )
            out["val_acc"] = row["val_acc"]

    fit(module, train, val, [Phase(lr, cfg.train.epochs)], cfg.train, seed, on_epoch=on_epoch,
        transform=data.train_transform(), **fit_options)  # fmt: skip
    return out


_POOL: dict[str, Any] = {}


def _pool_init(cfg: Config, data: Any, fit_options: dict[str, Any]) -> None:
    from fer_ray.stages.common import set_threads

    set_threads(cfg, cfg.resources.cpus_per_trial)
    _POOL.update(cfg=cfg, data=data, fit_options=fit_options)


def _pool_trial(cell: tuple[float, int, int]) -> dict[str, Any]:
    t0, c0 = time.time(), time.process_time()
    r = train_cell(_POOL["cfg"], _POOL["data"], *cell, _POOL["fit_options"])
    r["cpu"] = time.process_time() - c0
    return {"lr": cell[0], "hidden": cell[1], "fold": cell[2], "enter": t0, "exit": time.time(),
            "pid": os.getpid(), **r}  # fmt: skip


def pool_grid(cfg: Config, data: Any, workers: int,
              fit_options: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Every grid cell in a plain process pool (spawned, like Ray's workers); the bundle goes to
    each worker once."""
    before = process_tree()
    t0 = time.time()
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_pool_init, initargs=(cfg, data, fit_options or {})) as pool:
        rows = list(pool.imap_unordered(_pool_trial, trials_of(cfg), chunksize=1))
        after = process_tree()  # workers still alive
    t1 = time.time()
    trials = pd.DataFrame(rows)
    cpu = cpu_delta(before, after)
    worker_pids = set(trials["pid"])
    return {
        "wall": t1 - t0,
        "trials": trials,
        "start": float(trials["enter"].min() - t0),
        "cpu_trials": sum(c for p, (_, c) in cpu.items() if p in worker_pids),
        "cpu_driver": cpu.get(os.getpid(), ("", 0.0))[1],
        "cpu_other": sum(
            c for p, (_, c) in cpu.items() if p not in worker_pids and p != os.getpid()
        ),
    }


# ---------------------------------------------------------------- the Tune stage, instrumented


def timed_trainable(log_path: str) -> Callable[..., None]:
    """The grid's trainable wrapped so that, inside its actor, it records per trial: start and
    end (wall clock), seconds in ``ray.get`` (the bundle), ``torch.save`` (checkpoint files,
    with their bytes) and ``tune.report`` (with and without a checkpoint)."""

    def grid_trainable(config: dict[str, Any], cfg: Config, data_ref: Any) -> None:
        import ray
        import torch
        from ray import tune

        from fer_ray.stages import grid as grid_mod

        c0 = time.process_time()
        rec: dict[str, Any] = {"enter": time.time(), "pid": os.getpid(), "fetch": 0.0,
                               "save": 0.0, "ckpt_bytes": 0, "n_ckpt": 0, "report": 0.0,
                               "report_ckpt": 0.0, "n_report": 0}  # fmt: skip
        get, save, report = ray.get, torch.save, tune.report

        def t_get(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return get(*a, **k)
            finally:
                rec["fetch"] += time.perf_counter() - t

        def t_save(obj: Any, f: Any, *a: Any, **k: Any) -> None:
            t = time.perf_counter()
            save(obj, f, *a, **k)
            rec["save"] += time.perf_counter() - t
            rec["ckpt_bytes"] += os.path.getsize(f) if isinstance(f, (str, Path)) else 0

        def t_report(metrics: dict, *a: Any, checkpoint: Any = None, **k: Any) -> None:
            t = time.perf_counter()
            report(metrics, *a, checkpoint=checkpoint, **k)
            key = "report_ckpt" if checkpoint is not None else "report"
            rec[key] += time.perf_counter() - t
            rec["n_report"] += 1
            rec["n_ckpt"] += checkpoint is not None

        ray.get, torch.save, tune.report = t_get, t_save, t_report
        try:
            grid_mod.grid_trainable(config, cfg, data_ref)
        finally:
            ray.get, torch.save, tune.report = get, save, report
            rec.update(
                cpu=time.process_time() - c0,
                exit=time.time(),
                lr=config["lr"],
                hidden=config["hidden"],
                fold=config["fold"],
            )
            with open(log_path, "a") as fh:
                fh.write(json.dumps(rec) + "\n")

    return grid_trainable


def tune_grid(cfg: Config, ref: Any, splits: pd.DataFrame, log_path: Path) -> dict[str, Any]:
    """``fer_ray.stages.grid.run`` with the timed trainable; wall of the stage and of
    ``Tuner.fit``, per-trial records, CPU seconds per process kind, bytes left in storage."""
    from fer_ray.layout import RunPaths
    from fer_ray.stages import common
    from fer_ray.stages import grid as grid_mod

    paths = RunPaths.of(cfg)
    log_path.unlink(missing_ok=True)
    marks: dict[str, Any] = {}
    fit_tuner, trainable = common.fit_tuner, grid_mod.grid_trainable

    def timed_fit_tuner(*a: Any, **k: Any) -> Any:
        marks["before"] = process_tree()
        marks["fit0"] = time.time()
        try:
            return fit_tuner(*a, **k)
        finally:
            marks["fit1"] = time.time()
            marks["after"] = process_tree()  # actors are still alive until the tuner is gone
            exp = Path(paths.experiment("grid"))
            marks["stored_bytes"] = sum(f.stat().st_size for f in exp.rglob("*") if f.is_file())
            marks["ckpt_dirs"] = len(list(exp.glob("*/checkpoint_*")))

    common.fit_tuner, grid_mod.grid_trainable = timed_fit_tuner, timed_trainable(str(log_path))
    try:
        import shutil

        from fer_ray import layout

        shutil.rmtree(paths.root, ignore_errors=True)
        paths.root.mkdir(parents=True, exist_ok=True)
        config_mod.save(cfg, paths.root / layout.CONFIG)  # a live report reads it
        t0 = time.time()
        grid_mod.run(cfg, paths, ref, False, splits)
        t1 = time.time()
    finally:
        common.fit_tuner, grid_mod.grid_trainable = fit_tuner, trainable
    trials = pd.DataFrame([json.loads(x) for x in log_path.read_text().splitlines() if x])
    cpu = cpu_delta(marks["before"], marks["after"])
    actors = set(trials["pid"])
    me = os.getpid()
    daemons: dict[str, float] = {}
    for p, (n, c) in cpu.items():
        if p not in actors and p != me:
            daemons[n] = daemons.get(n, 0.0) + c
    result = pd.read_csv(paths.stage("grid") / "trials.csv")
    oof = pd.read_csv(paths.stage("grid") / "oof.csv")
    return {
        "wall": t1 - t0,
        "fit": marks["fit1"] - marks["fit0"],
        "start": float(trials["enter"].min() - marks["fit0"]),
        "tail": float(marks["fit1"] - trials["exit"].max()),
        "post": (t1 - t0) - (marks["fit1"] - marks["fit0"]),
        "trials": trials,
        "result": result,
        "oof": oof,
        "cpu_trials": sum(c for p, (_, c) in cpu.items() if p in actors),
        "cpu_driver": cpu.get(me, ("", 0.0))[1],
        "cpu_daemons": daemons,
        "stored_bytes": marks["stored_bytes"],
        "ckpt_dirs": marks["ckpt_dirs"],
        "storage": paths.experiment("grid"),
    }


def gaps(trials: pd.DataFrame) -> float:
    """Seconds each worker sat between the end of one trial and the start of its next, summed."""
    total = 0.0
    for _, t in trials.sort_values("enter").groupby("pid"):
        total += float((t["enter"].to_numpy()[1:] - t["exit"].to_numpy()[:-1]).sum())
    return total


def rss_mb(pid: int | None = None) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB, from /proc/<pid>/status."""
    text = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    kb = {ln.split(":")[0]: float(ln.split()[1]) for ln in text.splitlines() if ln.startswith("Vm")}
    return kb.get("VmRSS", 0.0) / 1024, kb.get("VmHWM", 0.0) / 1024


def run_grid(cfg: Config, ref: Any, splits: pd.DataFrame, callbacks: list | None = None) -> dict:
    """The pipeline's grid stage as it is (``fer_ray.stages.grid.run``), timed; ``callbacks``
    (Tune callbacks) are added to the stage's own."""
    from fer_ray import layout
    from fer_ray.layout import RunPaths
    from fer_ray.stages import common
    from fer_ray.stages import grid as grid_mod

    paths = RunPaths.of(cfg)
    import shutil

    shutil.rmtree(paths.root, ignore_errors=True)
    paths.root.mkdir(parents=True, exist_ok=True)
    config_mod.save(cfg, paths.root / layout.CONFIG)  # a live report reads it
    settings_of, fit_tuner, marks = common.tune_settings, common.fit_tuner, {}

    def tune_settings(*a: Any, **k: Any) -> dict:
        s = settings_of(*a, **k)
        s["run_config"].callbacks.extend(callbacks or [])
        return s

    def timed_fit_tuner(*a: Any, **k: Any) -> Any:
        t = time.time()
        try:
            return fit_tuner(*a, **k)
        finally:
            marks["fit"] = time.time() - t

    common.tune_settings, common.fit_tuner = tune_settings, timed_fit_tuner
    try:
        t0 = time.time()
        grid_mod.run(cfg, paths, ref, False, splits)
        wall = time.time() - t0
    finally:
        common.tune_settings, common.fit_tuner = settings_of, fit_tuner
    return {"wall": wall, "fit": marks["fit"]}
