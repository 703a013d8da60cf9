"""search: any Ray Tune searcher proposes (lr, hidden) configs, any Tune scheduler may stop them.

``search.algorithm`` names a searcher ``ray.tune.search.create_searcher`` knows (random, optuna,
hyperopt, ...), ``search.scheduler`` one ``ray.tune.schedulers.create_scheduler`` knows
(async_hyperband, median_stopping_rule, ...); ``search.options`` / ``search.scheduler_options``
pass through. With optuna the study lives in ``<run>/grid/search_study.db`` (SQLite), so
optuna-dashboard can open it and a resumed run reuses it.

A proposal is scored exactly as the grid scores a cell: the mean over the grouped folds of the
last epoch's validation accuracy, with the same per-fold seeds (a proposal that equals a grid
cell reproduces that cell's numbers). The folds run INSIDE one trial, one after the other,
because a searcher needs one objective per proposal; after each fold the trial reports the running
fold mean (so a scheduler, on ``folds_done``, can stop a poor proposal after its first folds) with a
checkpoint of the finished folds, so a restarted trial loses at most the fold it was in.

With more than one trial at a time a model-based searcher's proposals depend on which results are
in when it proposes, so a search is reproducible only with ``resources.max_concurrent_trials=1``
(the report says which it was).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray
import torch
from ray import tune

from fer_ray import files, search_space
from fer_ray.analysis import pred_text
from fer_ray.analysis.search import importances, runner_up, search_history, search_table
from fer_ray.config import Config, with_searched
from fer_ray.layout import Grid, RunPaths
from fer_ray.seeds import trial_seed
from fer_ray.stages import common
from fer_ray.stages.cluster import node_info
from fer_ray.stages.tune_stage import TuneStage, run_tune_stage
from fer_ray.train.loop import Phase, fit, predict_proba

METRIC = "fold_mean_val_acc"
# search.metrics' names -> the result column each trial reports
OBJECTIVES = {"val_acc": METRIC, "trainable_params": "trainable_params",
              "ms_per_image": "ms_per_image"}  # fmt: skip


def _folds_state() -> list[dict[str, Any]]:
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return []
    with ckpt.as_directory() as d:
        p = Path(d) / "folds.pt"
        return torch.load(p, weights_only=True)["folds"] if p.is_file() else []


def search_trainable(config: dict[str, Any], cfg: Config, data_ref: Any) -> None:
    """One proposal: every fold in turn, reporting the running fold mean after each."""
    common.set_threads(cfg, cfg.resources.cpus_per_trial)
    data = ray.get(data_ref[0][search_space.trunk_id(config)])  # its trunk setting's bundle
    lr, hidden = float(config["lr"]), int(config["hidden"])
    cfg = with_searched(cfg, config)  # the searched config keys (search.space)
    device = common.trial_device(cfg.resources.gpus_per_trial)
    done = _folds_state()
    resumed = len(done)
    for fold in range(len(done), cfg.grid.folds):
        seed = trial_seed(cfg.seed, lr, hidden, fold)  # the grid cell's seed for this fold
        model, module = common.trial_model(cfg.model, data, hidden, seed, device)
        train = data.split((data.folds >= 0) & (data.folds != fold), train=True)
        val = data.split(data.folds == fold)
        last: dict[str, Any] = {}

        def at_last_epoch(
            row: dict[str, Any], snapshot: Any, last: dict = last, module: Any = module,
            val: Any = val,
        ) -> None:  # fmt: skip
            if row["epoch"] == cfg.train.epochs:  # the cell's score is the last epoch's
                last["acc"] = float(row["val_acc"])
                t0 = time.perf_counter()
                last["preds"] = predict_proba(module, val.x).argmax(1)
                last["ms"] = 1000 * (time.perf_counter() - t0) / max(1, len(val.y))

        fit(module, train, val, [Phase(lr, cfg.train.epochs)], cfg.train, seed,
            on_epoch=at_last_epoch, transform=data.train_transform())  # fmt: skip
        done.append({"fold": fold, "val_acc": last["acc"], "ms": last["ms"],
                     "preds": pred_text.encode(last["preds"])})  # fmt: skip
        common.release_accelerator(model)
        accs = [f["val_acc"] for f in done]
        row = {METRIC: float(np.mean(accs)), "folds_done": len(done), "val_acc": accs[-1],
               "resumed_from": resumed, **node_info(),
               **common.trunk_facts(config, data, module),
               **_objective_values(cfg, module, done)}  # fmt: skip
        if len(done) == cfg.grid.folds:
            row["fold_preds"] = "|".join(f["preds"] for f in done)
            row["fold_accs"] = ",".join(f"{a:.10f}" for a in accs)
        with tempfile.TemporaryDirectory() as d:
            torch.save({"folds": done}, Path(d) / "folds.pt")
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(d))
        common.inject_fault(len(done))  # a test's crash after a fold (FER_RAY_FAULT_AT_STEP)


def _objective_values(cfg: Config, module: Any, done: list[dict[str, Any]]) -> dict[str, Any]:
    """The other objectives of ``search.metrics`` (nothing when it names only val_acc):
    trainable parameters, and inference milliseconds per validation image (the trained part
    on this trial's device, mean over the folds done; a timing, so noisy)."""
    wanted = set(objectives(cfg)) - {METRIC}
    out: dict[str, Any] = {}
    if "trainable_params" in wanted:
        out["trainable_params"] = sum(p.numel() for p in module.parameters() if p.requires_grad)
    if "ms_per_image" in wanted:
        out["ms_per_image"] = float(np.mean([f.get("ms", np.nan) for f in done]))
    return out


def objectives(cfg: Config) -> dict[str, str]:
    """``search.metrics`` as {result column: mode}, the first the primary; default: the fold
    mean of the validation accuracy, maximised."""
    metrics = cfg.search.metrics or {"val_acc": "max"}
    return {OBJECTIVES[k]: mode for k, mode in metrics.items()}


def tune_domain(d: search_space.Domain) -> Any:
    """A ``search.space`` domain as Ray Tune's (a searcher draws ``grid`` values as a choice;
    ``randint``'s high end is inclusive, as fer_ray writes it)."""
    a = d.args
    if d.values is not None:
        return tune.choice(d.values)
    if d.kind == "randint":
        return tune.randint(a[0], a[1] + 1)
    if d.kind == "qrandint":
        return tune.qrandint(a[0], a[1], a[2])
    return getattr(tune, d.kind)(a[0], a[1])  # uniform, loguniform


def space(cfg: Config) -> dict[str, Any]:
    """lr, hidden and every searched config key, as Tune domains."""
    return {k: tune_domain(d) for k, d in search_space.resolve(cfg).items()}


def budget(cfg: Config) -> int:
    """Trials: ``search.trials``, or as many as the grid has cells (the same training budget)."""
    return cfg.search.trials or len(cfg.grid.lr) * len(cfg.grid.hidden)


def proposal_number(trial_dir: str) -> int:
    """Tune's trial counter in a trial folder's name, ``search_trainable_<id>_<n>_<config>_...``
    (the last number before the first ``key=value``)."""
    head = trial_dir.split("=", 1)[0].split("_")
    return int([t for t in head if t.isdigit()][-1])


def _record(r: tune.Result, _: Path | None) -> dict[str, Any]:
    """A proposal's row (its fold predictions, for the intervals)."""
    m = r.metrics
    return {
        "trial": r.path.rsplit("/", 1)[-1], "lr": float(r.config["lr"]),
        "hidden": int(r.config["hidden"]), **search_space.config_values(r.config),
        **{k: m[k] for k in common.TRUNK_FACTS if k in m},
        "folds_done": int(m.get("folds_done", 0)),
        METRIC: float(m.get(METRIC, np.nan)), "fold_accs": m.get("fold_accs", ""),
        "fold_preds": m.get("fold_preds", ""),
        **{k: m.get(k, np.nan) for k in ("trainable_params", "ms_per_image") if k in m},
    }  # fmt: skip


# searcher-specific seed keywords (the searcher is seeded with cfg.seed unless options say)
SEED_KEYS = ("seed", "random_state_seed", "random_state")
# scheduler defaults in folds (time_attr folds_done): stop after the first fold at the earliest
SCHEDULER_DEFAULTS: dict[str, dict[str, Any]] = {
    "async_hyperband": {"max_t": "folds", "grace_period": 1, "reduction_factor": 2},
    "median_stopping_rule": {"grace_period": 1, "min_samples_required": 2},
    "hyperband": {"max_t": "folds"},
    "hb_bohb": {"max_t": "folds"},
}
SCHEDULER_ALIASES = {"asha": "async_hyperband", "asynchyperband": "async_hyperband",
                     "medianstopping": "median_stopping_rule"}  # fmt: skip


def study_storage(path: Path) -> Any:
    """The SQLite storage optuna-dashboard opens (``sqlite:///<path>``)."""
    import optuna

    return optuna.storages.RDBStorage(f"sqlite:///{path.resolve()}")


def _keywords(cls: type) -> set[str]:
    import inspect

    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def searcher(cfg: Config, out: Path) -> Any:
    """The configured searcher, seeded, its options checked against its constructor; with
    several objectives (``search.metrics``) it gets them all (Optuna's multi-objective TPE)."""
    from ray.tune.search import SEARCH_ALG_IMPORT

    from fer_ray.config_checks import search_dependency
    from fer_ray.errors import ConfigError

    name = cfg.search.algorithm
    search_dependency(name)
    cls = SEARCH_ALG_IMPORT[name]()
    opts = dict(cfg.search.options or {})
    if name == "optuna":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler_keys = _keywords(optuna.samplers.TPESampler) & set(opts)
        sampler = {k: opts.pop(k) for k in sampler_keys}
        opts.setdefault("sampler", optuna.samplers.TPESampler(seed=cfg.seed, **sampler))
        opts.setdefault("storage", study_storage(out / Grid.SEARCH_STUDY))
        opts.setdefault("study_name", cfg.name)
    allowed = _keywords(cls) - {"space", "metric", "mode"}
    unknown = sorted(set(opts) - allowed)
    if unknown:
        raise ConfigError(
            f"search.options: {name} does not take {unknown[0]!r} (it takes: "
            f"{', '.join(sorted(allowed))})"
        )
    for key in SEED_KEYS:
        if key in allowed and key not in opts and name != "optuna":
            opts[key] = cfg.seed
            break
    goals = objectives(cfg)
    if len(goals) > 1 and "metric" in _keywords(cls):
        opts.update(metric=list(goals), mode=list(goals.values()))
    return cls(**opts)


def scheduler(cfg: Config) -> Any:
    """The configured trial scheduler on ``folds_done`` (None for none/fifo)."""
    from ray.tune.schedulers import SCHEDULER_IMPORT

    name = SCHEDULER_ALIASES.get(cfg.search.scheduler, cfg.search.scheduler)
    if name in ("none", "fifo"):
        return None
    opts = {k: (cfg.grid.folds if v == "folds" else v)
            for k, v in SCHEDULER_DEFAULTS.get(name, {}).items()}  # fmt: skip
    opts = {"time_attr": "folds_done", **opts, **(cfg.search.scheduler_options or {})}
    goals = objectives(cfg)
    if len(goals) > 1:  # a scheduler stops on one metric: the primary objective
        opts = {"metric": next(iter(goals)), "mode": next(iter(goals.values())), **opts}
    cls = SCHEDULER_IMPORT[name]
    return (cls() if not isinstance(cls, type) else cls)(**opts)


def run(
    cfg: Config, paths: RunPaths, data_ref: Any, resume: bool, splits: pd.DataFrame
) -> dict[str, Any]:
    """Run the search; store its trials, history and importances; return its choice."""
    out = paths.stage(Grid.DIR)
    n = budget(cfg)
    goals = objectives(cfg)
    multi = len(goals) > 1  # the searcher and the scheduler hold the objectives themselves
    search = {
        "metric": None if multi else METRIC,
        "mode": None if multi else "max",
        "search_alg": searcher(cfg, out),
        "scheduler": scheduler(cfg),
        "num_samples": n,
    }
    spec = TuneStage(
        "search", search_trainable, {"cfg": cfg, "data_ref": [data_ref]}, space(cfg), n,
        _record, metric=METRIC, finished=None, open_checkpoint=False, need_final=False,
        search=search,
    )  # fmt: skip
    records = run_tune_stage(cfg, spec, resume).records
    # in the order the searcher proposed them (Tune's trial counter), which a resumed search
    # keeps: the order results arrive in changes when a trial restarts
    records.sort(key=lambda row: proposal_number(row["trial"]))
    rows = [{**row, "order": i} for i, row in enumerate(records)]
    table, best = search_table(
        pd.DataFrame(rows), splits, cfg.grid.folds, cfg.seed, goals, method=cfg.statistics.interval
    )
    table.drop(columns=["fold_preds"]).to_csv(out / Grid.SEARCH_TRIALS, index=False)
    search_history(table).to_csv(out / Grid.SEARCH_HISTORY, index=False)
    fanova = cfg.search.algorithm == "optuna"
    importances(table, search_space.resolve(cfg), cfg.seed, fanova=fanova).to_csv(
        out / Grid.SEARCH_IMPORTANCE, index=False
    )
    summary = {
        "algorithm": cfg.search.algorithm,
        "options": dict(cfg.search.options or {}),
        "trials": n,
        "scheduler": cfg.search.scheduler,
        "scheduler_options": dict(cfg.search.scheduler_options or {}),
        "importance": "fanova" if fanova else "variance",
        "study": Grid.SEARCH_STUDY if fanova else None,
        "concurrent": cfg.resources.max_concurrent_trials,
        "reproducible": cfg.resources.max_concurrent_trials == 1,
        "best": best,
        "runner_up": runner_up(table, best, splits, cfg.seed, cfg.statistics.interval),
        "space": {k: d.describe() for k, d in search_space.resolve(cfg).items()},
        **({"objectives": goals} if multi else {}),
    }  # fmt: skip
    files.write_json(out / Grid.SEARCH_SUMMARY, summary)
    more = search_space.values_text(best)
    print(
        f"[search] {len(table)} {cfg.search.algorithm} trials · best lr={best['lr']:.3g} "
        f"hidden={best['hidden']}{more} · fold-mean val acc {best['mean_val_acc']:.3f}",
        flush=True,
    )
    return best
