"""search: Optuna (TPE) proposes (lr, hidden) configs through Ray Tune's OptunaSearch.

A proposal is scored exactly as the grid scores a cell: the mean over the grouped folds of the
last epoch's validation accuracy, with the same per-fold seeds (a proposal that equals a grid
cell reproduces that cell's numbers). The folds run INSIDE one trial, one after the other,
because TPE needs one objective per proposal; after each fold the trial reports the running
fold mean (so ``search.scheduler: asha`` can stop a poor proposal after its first folds) with a
checkpoint of the finished folds, so a restarted trial loses at most the fold it was in.

With more than one trial at a time TPE's proposals depend on which results are in when it
proposes, so an Optuna search is reproducible only with ``resources.max_concurrent_trials=1``
(the report says which it was).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray
import torch
from ray import tune

from fer_ray import files
from fer_ray.analysis.search import importances, optuna_table, search_history
from fer_ray.config import Config
from fer_ray.layout import Grid, RunPaths
from fer_ray.seeds import trial_seed
from fer_ray.stages import common
from fer_ray.stages.cluster import node_info
from fer_ray.stages.tune_stage import TuneStage, run_tune_stage
from fer_ray.train.loop import Phase, fit, predict_proba

METRIC = "fold_mean_val_acc"


def _folds_state() -> list[dict[str, Any]]:
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return []
    with ckpt.as_directory() as d:
        p = Path(d) / "folds.pt"
        return torch.load(p, weights_only=True)["folds"] if p.is_file() else []


def optuna_trainable(config: dict[str, Any], cfg: Config, data_ref: Any) -> None:
    """One proposal: every fold in turn, reporting the running fold mean after each."""
    common.set_threads(cfg, cfg.resources.cpus_per_trial)
    data = ray.get(data_ref[0])
    lr, hidden = float(config["lr"]), int(config["hidden"])
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
                last["preds"] = predict_proba(module, val.x).argmax(1)

        fit(module, train, val, [Phase(lr, cfg.train.epochs)], cfg.train, seed,
            on_epoch=at_last_epoch, transform=data.train_transform())  # fmt: skip
        done.append(
            {"fold": fold, "val_acc": last["acc"],
             "preds": "".join(chr(48 + int(c)) for c in last["preds"])}
        )  # fmt: skip
        common.release_accelerator(model)
        accs = [f["val_acc"] for f in done]
        row = {METRIC: float(np.mean(accs)), "folds_done": len(done), "val_acc": accs[-1],
               "resumed_from": resumed, **node_info()}  # fmt: skip
        if len(done) == cfg.grid.folds:
            row["fold_preds"] = "|".join(f["preds"] for f in done)
            row["fold_accs"] = ",".join(f"{a:.10f}" for a in accs)
        with tempfile.TemporaryDirectory() as d:
            torch.save({"folds": done}, Path(d) / "folds.pt")
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(d))


def space(cfg: Config) -> dict[str, Any]:
    s = cfg.search
    hidden = (
        tune.choice(list(s.hidden_choices))
        if s.hidden_choices
        else tune.randint(s.hidden_range[0], s.hidden_range[1] + 1)
    )
    return {"lr": tune.loguniform(s.lr_range[0], s.lr_range[1]), "hidden": hidden}


def budget(cfg: Config) -> int:
    """Trials: ``search.trials``, or as many as the grid has cells (the same training budget)."""
    return cfg.search.trials or len(cfg.grid.lr) * len(cfg.grid.hidden)


def _record(r: tune.Result, _: Path | None) -> dict[str, Any]:
    """A proposal's row (its fold predictions, for the intervals)."""
    m = r.metrics
    return {
        "trial": r.path.rsplit("/", 1)[-1], "lr": float(r.config["lr"]),
        "hidden": int(r.config["hidden"]), "folds_done": int(m.get("folds_done", 0)),
        METRIC: float(m.get(METRIC, np.nan)), "fold_accs": m.get("fold_accs", ""),
        "fold_preds": m.get("fold_preds", ""),
    }  # fmt: skip


def run(
    cfg: Config, paths: RunPaths, data_ref: Any, resume: bool, splits: pd.DataFrame
) -> dict[str, Any]:
    """Run the Optuna search; store its trials, history and importances; return its choice."""
    import optuna
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = paths.stage(Grid.DIR)
    n = budget(cfg)
    scheduler = None
    if cfg.search.scheduler == "asha":
        scheduler = ASHAScheduler(max_t=cfg.grid.folds, grace_period=1, reduction_factor=2)
    search = {
        "metric": METRIC,
        "mode": "max",
        "search_alg": OptunaSearch(sampler=optuna.samplers.TPESampler(seed=cfg.seed)),
        "scheduler": scheduler,
        "num_samples": n,
    }
    spec = TuneStage(
        "search", optuna_trainable, {"cfg": cfg, "data_ref": [data_ref]}, space(cfg), n,
        _record, metric=METRIC, finished=None, open_checkpoint=False, need_final=False,
        search=search,
    )  # fmt: skip
    rows = [{**row, "order": i} for i, row in enumerate(run_tune_stage(cfg, spec, resume).records)]
    table, best = optuna_table(pd.DataFrame(rows), splits, cfg.grid.folds, cfg.seed)
    table.drop(columns=["fold_preds"]).to_csv(out / Grid.OPTUNA_TRIALS, index=False)
    search_history(table).to_csv(out / Grid.OPTUNA_HISTORY, index=False)
    importances(table, cfg.search, cfg.seed).to_csv(out / Grid.OPTUNA_IMPORTANCE, index=False)
    summary = {
        "algorithm": "optuna (TPE, Ray Tune OptunaSearch)",
        "trials": n,
        "scheduler": cfg.search.scheduler,
        "concurrent": cfg.resources.max_concurrent_trials,
        "reproducible": cfg.resources.max_concurrent_trials == 1,
        "best": best,
        "space": {"lr": list(cfg.search.lr_range), "hidden": list(
            cfg.search.hidden_choices or cfg.search.hidden_range)},
    }  # fmt: skip
    files.write_json(out / Grid.OPTUNA_SUMMARY, summary)
    print(
        f"[search] {len(table)} Optuna trials · best lr={best['lr']:.3g} hidden={best['hidden']}"
        f" · fold-mean val acc {best['mean_val_acc']:.3f}",
        flush=True,
    )
    return best
