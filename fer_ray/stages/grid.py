"""grid: one Ray Tune run over lr × hidden × fold (seed 000's Table 2).

Each trial trains one cell on one fold; the table and the choice are
``fer_ray.analysis.selection``'s.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import ray
from ray import tune

from fer_ray import files, search_space
from fer_ray.analysis import pred_text
from fer_ray.analysis.selection import choose, oof_table, ranked, table2, with_intervals
from fer_ray.config import Config, with_searched
from fer_ray.layout import Grid, RunPaths
from fer_ray.seeds import trial_seed
from fer_ray.stages import common
from fer_ray.stages.tune_stage import TuneStage, run_tune_stage
from fer_ray.train.loop import Phase, fit, predict_proba

if TYPE_CHECKING:
    from fer_ray.stages.context import StageContext


def grid_trainable(config: dict[str, Any], cfg: Config, data_ref: Any) -> None:
    """One (lr, hidden, fold) trial; resumes from its checkpoint when Tune restarts it."""
    common.set_threads(cfg, cfg.resources.cpus_per_trial)
    data = ray.get(data_ref[0][search_space.trunk_id(config)])  # its trunk setting's bundle
    lr, hidden, fold = float(config["lr"]), int(config["hidden"]), int(config["fold"])
    cfg = with_searched(cfg, config)  # the searched config keys (search.space)
    seed = trial_seed(cfg.seed, lr, hidden, fold)  # the same for every value of the other keys
    device = common.trial_device(cfg.resources.gpus_per_trial)
    # grid.backbones: the grid searches architectures too
    model_cfg = common.model_config(cfg, backbone=config.get("backbone"))
    model, module = common.trial_model(model_cfg, data, hidden, seed, device)
    train = data.split((data.folds >= 0) & (data.folds != fold), train=True)
    val = data.split(data.folds == fold)
    epochs = cfg.train.epochs
    state = common.restore_state()
    resumed = len(state["history"]) if state else 0  # epochs done before a restart

    trunk = common.trunk_facts(config, data, module)

    def on_epoch(row: dict[str, Any], snapshot: Any) -> None:
        row = {**row, "resumed_from": resumed, **trunk}
        if row.get("diverged"):  # the trial's last report: no score, no predictions
            row["val_preds"] = ""
        elif row["epoch"] == epochs:  # the cell's score: keep its per-image predictions
            row["val_preds"] = pred_text.encode(predict_proba(module, val.x).argmax(1))
        common.report_epoch(row, snapshot, cfg.output.checkpoint_every, row["epoch"] == epochs)

    st = fit(
        module,
        train,
        val,
        [Phase(lr, epochs)],
        cfg.train,
        seed,
        state=state,
        on_epoch=on_epoch,
        transform=data.train_transform(),
        keep_best=False,  # a cell is scored at its last epoch: no copy of the best weights
        checkpoint=common.checkpoint_policy(cfg),
    )
    if resumed == len(st["history"]):  # restarted after its last epoch: nothing was reported
        module.load_state_dict(state["module"])  # the last epoch's weights, as scored
        preds = pred_text.encode(predict_proba(module, val.x).argmax(1))
        row = {**st["history"][-1], "resumed_from": resumed, "val_preds": preds, "replayed": True}
        tune.report(row)
    common.release_accelerator(model)


def stage(ctx: StageContext) -> None:
    data_ref, info = common.trunk_bundles(ctx)
    out = ctx.paths.stage(Grid.DIR)
    files.write_json(out / Grid.FEATURES, info)
    data = ray.get(next(iter(data_ref.values())))  # the splits: the same in every bundle
    splits = pd.DataFrame(
        {"item": np.arange(len(data.y)), "label": data.y, "group": data.groups,
         "fold": data.folds, "test": data.test}
    )  # fmt: skip
    splits.to_csv(out / Grid.SPLITS, index=False)
    cfg = ctx.cfg
    found: dict[str, Any] = {}
    if cfg.search.algorithm == "grid" or cfg.search.compare_grid:
        found["grid"] = run(cfg, ctx.paths, data_ref, ctx.resume, splits)
    if cfg.search.algorithm != "grid":
        from fer_ray.stages import search

        found[cfg.search.algorithm] = search.run(cfg, ctx.paths, data_ref, ctx.resume, splits)
    chosen = {**found[cfg.search.algorithm], "algorithm": cfg.search.algorithm}
    if len(found) > 1:
        chosen["other"] = {k: v for k, v in found.items() if k != cfg.search.algorithm}
    files.write_json(out / Grid.CHOSEN, chosen)


def _record(r: tune.Result, _: Path | None) -> tuple[dict, dict, pd.DataFrame]:
    """A finished (lr, hidden, fold) trial → its row, its work entry and its curve."""
    c, h = r.config, r.metrics_dataframe
    h = h.drop_duplicates("step", keep="last").sort_values("step")
    searched = search_space.config_values(c)
    row = {
        **({"backbone": c["backbone"]} if "backbone" in c else {}),
        "lr": c["lr"],
        "hidden": c["hidden"],
        **searched,
        "fold": c["fold"],
        **{k: h[k].iloc[-1] for k in common.TRUNK_FACTS if k in h},  # a searched trunk key
        "val_acc": float(h["val_acc"].iloc[-1]),
        "best_val_acc": float(h["val_acc"].max()),
        "train_acc": float(h["train_acc"].iloc[-1]),
        "epochs": int(h["epoch"].iloc[-1]),
        "val_preds": h["val_preds"].dropna().iloc[-1],
        **({"diverged": True} if _diverged(h) else {}),  # a column only when one diverged
    }
    more = search_space.values_text(c)
    work = {
        "unit": f"trial {c.get('backbone', '')} lr={c['lr']:g} hidden={c['hidden']}{more}"
        f" fold={c['fold']}".replace("trial  ", "trial "),
        **common.where(r.metrics),
        "resumed_from_epoch": int(h["resumed_from"].max()),
    }
    cols = ["step", "epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
    cell = {k: c[k] for k in ("backbone", "lr", "hidden", *searched, "fold") if k in c}
    return row, work, h[cols].assign(**cell)


def _diverged(h: pd.DataFrame) -> bool:
    return "diverged" in h and bool(h["diverged"].fillna(False).astype(bool).any())


def diverged_cells(t2: pd.DataFrame) -> str:
    """The cells with diverged folds, as the terminal and the report name them."""
    if "diverged" not in t2:
        return ""
    bad = t2[t2["diverged"] > 0]
    return ", ".join(
        f"{cell_text(r)} ({r['diverged']} of {r['count']} folds)" for r in bad.to_dict("records")
    )


def cell_text(cell: dict[str, Any]) -> str:
    """``lr=0.005 hidden=100`` and any searched config keys: one cell, as the terminal says it."""
    return f"lr={cell['lr']:g} hidden={cell['hidden']}{search_space.values_text(cell)}"


def run(
    cfg: Config, paths: RunPaths, data_ref: Any, resume: bool, splits: pd.DataFrame
) -> dict[str, Any]:
    out = paths.stage(Grid.DIR)
    out.mkdir(parents=True, exist_ok=True)
    domains = search_space.resolve(cfg, grid=True)  # grid.lr x grid.hidden, searched keys
    space = {
        "lr": tune.grid_search(domains["lr"].values),
        "hidden": tune.grid_search(domains["hidden"].values),
        "fold": tune.grid_search(list(range(cfg.grid.folds))),
    }
    if cfg.grid.backbones:
        space["backbone"] = tune.grid_search(list(cfg.grid.backbones))
    extra = [k for k in domains if k not in search_space.CELL]
    space.update({k: tune.grid_search(domains[k].values) for k in extra})
    total = search_space.grid_cells(cfg) * cfg.grid.folds

    def finished(r: tune.Result) -> bool:
        epochs = r.config.get("train.epochs", cfg.train.epochs)  # searched or not
        return r.metrics.get("epoch") == epochs or bool(r.metrics.get("diverged"))

    spec = TuneStage(
        "grid", grid_trainable, {"cfg": cfg, "data_ref": [data_ref]}, space, total, _record,
        finished=finished, open_checkpoint=False, need_final=False,
    )  # fmt: skip
    tuned = run_tune_stage(cfg, spec, resume)
    rows = [row for row, _, _ in tuned.records]
    work = [w for _, w, _ in tuned.records]
    curves = [c for _, _, c in tuned.records]
    order = (["backbone"] if cfg.grid.backbones else []) + ["lr", "hidden", *extra, "fold"]
    up = [k != "lr" for k in order]  # lr largest first, as Table 2
    trials = pd.DataFrame(rows).sort_values(order, ascending=up)
    curves_table = pd.concat(curves).sort_values([*order, "step"], ascending=[*up, True])
    common.write_work(out, sorted(work, key=lambda w: w["unit"]))
    t2 = table2(trials)
    ranked(t2)  # every cell diverged: one line, before anything is stored as done
    oof = oof_table(trials, splits)
    t2 = with_intervals(t2, oof, cfg.seed, cfg.statistics.interval)
    chosen = choose(
        t2, cfg.grid.choose, (cfg.grid.paper_lr, cfg.grid.paper_hidden), cfg.model.backbone
    )
    trials = trials.drop(columns="val_preds")
    trials.to_csv(out / Grid.TRIALS, index=False)
    curves_table.to_csv(out / Grid.CURVES, index=False)
    t2.to_csv(out / Grid.TABLE2, index=False)
    oof.to_csv(out / Grid.OOF, index=False)
    if not cfg.output.keep_grid_checkpoints and "://" not in tuned.path:
        for ck in Path(tuned.path).glob("*/checkpoint_*"):
            shutil.rmtree(ck, ignore_errors=True)
    print(
        f"[grid] {len(trials)} trials · chosen {cell_text(chosen)}"
        f" · val acc {chosen['mean_val_acc']:.3f} ± {chosen['std_val_acc']:.3f}",
        flush=True,
    )
    if bad := diverged_cells(t2):
        print(f"[grid] diverged (non-finite loss; no score, never chosen): {bad}", flush=True)
    return chosen
