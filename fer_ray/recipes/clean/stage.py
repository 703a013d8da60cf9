"""clean: seed 004's top-loss cleaning, checked against the truth.

Seed 004 plotted its images with the largest losses, relabelled or deleted what looked wrong,
by hand, and retrained (error 36.70 % → 30.03 % fine-tuned, Table 2); it could not say how many
flagged images really were mislabelled. Here:

1. **Out-of-fold losses** of the training pool (every item outside the shared test holdout):
   ``clean.folds`` grouped, stratified folds; one Ray task per fold trains the grid's chosen cell
   (``train.epochs`` at its lr, the last epoch kept: nothing is selected on the held-out fold)
   with ``fer_ray.train.loop.fit`` on the other folds and scores the held-out fold, so no item's
   loss comes from a model that trained on it (a memorised wrong label has a small loss). Each
   fold's result is stored as it arrives (``clean/tasks/``).
2. **Flags**: the ``clean.flag_fraction`` largest losses; the top-loss gallery (``clean.gallery``
   crops titled prediction/actual/loss/probability, seed 004 Fig. 3 and 5) as CSV and crops.
   With ``data.label_noise`` the flags are scored against the truly flipped items (precision,
   recall, and the base rate that random flagging would reach).
3. **Retraining** (``clean.members`` > 0): Ray Tune trials over (variant, member) by the
   ensemble's member trainer (``fer_ray.stages.members``: the chosen cell, ``train.*``'s phases,
   class weights and lr, the selection) with the same member seeds and splits: ``none`` (every
   pool item; the ensemble's member of that seed, to the digit), ``flagged``
   (without the flagged items, in training and validation, as seed 004 cleaned its folders) and,
   with label noise, ``oracle`` (without exactly the flipped items). Test accuracies of the soft
   votes with intervals over subjects and paired differences to ``none``
   (``fer_ray.analysis.intervals``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import ray
import torch
from ray import tune

from fer_ray import files, layout
from fer_ray.analysis.cleaning import (
    cross_entropy_losses,
    flag_quality,
    flag_top_losses,
    top_loss_table,
)
from fer_ray.analysis.intervals import accuracy_interval, mean_interval, paired_difference
from fer_ray.config import Config
from fer_ray.data.splits import grouped_folds
from fer_ray.layout import Clean, Grid, RunPaths
from fer_ray.seeds import fold_model_seed, member_seed
from fer_ray.stages import common, training_choices
from fer_ray.stages.cluster import node_info
from fer_ray.stages.members import train_member
from fer_ray.stages.tune_stage import TuneStage, run_tune_stage
from fer_ray.train.bundle import TrialData
from fer_ray.train.loop import Phase, fit, predict_proba

if TYPE_CHECKING:
    from fer_ray.stages.context import StageContext

CLEAN_SALT = 4004  # the fold models' seed stream (seed 004), apart from grid and descriptors
# Seed 004, Table 2: error rates of ResNet-34 on FER2013 without disgust, before/after cleaning.
PAPER = {
    "error_original": 0.4062,
    "error_original_fine_tuned": 0.3670,
    "error_cleaned": 0.3847,
    "error_cleaned_fine_tuned": 0.3003,
}


@ray.remote
def _oof_task(
    cfg: Config, data: TrialData, folds: np.ndarray, fold: int, chosen: dict
) -> dict[str, Any]:
    """Train on every pool fold but ``fold``; the last epoch's probabilities on ``fold``."""
    common.set_threads(cfg, cfg.resources.cpus_per_trial)
    t0 = time.time()
    seed = fold_model_seed(cfg.seed, CLEAN_SALT, fold)
    device = common.trial_device(cfg.resources.gpus_per_trial)
    model_cfg = common.model_config(cfg, chosen)
    model, module = common.trial_model(model_cfg, data, chosen["hidden"], seed, device)
    train = data.split((folds >= 0) & (folds != fold), train=True)
    held = data.split(folds == fold)
    epochs, got = cfg.train.epochs, {}

    def on_epoch(row: dict[str, Any], snapshot: Any) -> None:
        if row["step"] == epochs:  # the last epoch's weights, before fit reloads its "best"
            got["probs"] = predict_proba(module, held.x)

    fit(
        module,
        train,
        held,
        [Phase(float(chosen["lr"]), epochs)],
        cfg.train,
        seed,
        on_epoch=on_epoch,
        transform=data.train_transform(),
    )
    common.release_accelerator(model)
    return {
        "fold": fold,
        "idx": np.flatnonzero(folds == fold),
        "probs": got["probs"],
        **node_info(),
        "seconds": round(time.time() - t0, 3),
    }


def retrain_trainable(
    config: dict[str, Any],
    cfg: Config,
    chosen: dict,
    data_ref: Any,
    drops: dict,
    plan: training_choices.Plan | None = None,
) -> None:
    """One member of one variant: the ensemble's member trainer on the pool minus
    ``drops[variant]``."""
    common.set_threads(cfg, cfg.resources.cpus_per_trial)
    data = ray.get(data_ref[0])
    variant, member = str(config["variant"]), int(config["member"])
    m = train_member(cfg, chosen, plan, data, member_seed(cfg.seed, member), drop=drops[variant])
    test_probs = predict_proba(m.module, m.test.x)
    val_acc = float((predict_proba(m.module, m.val.x).argmax(1) == m.val.y.numpy()).mean())
    final = {
        "step": m.last_step + 1,
        "final": True,
        "variant": variant,
        "member": member,
        "seed": m.seed,
        "n_train": int(m.train_m.sum()),
        "n_val": int(m.val_m.sum()),
        "dropped_train": m.dropped_train,
        "dropped_val": m.dropped_val,
        "val_acc": val_acc,
        "test_acc": float((test_probs.argmax(1) == m.test.y.numpy()).mean()),
        "selected_phase": m.state["best"]["phase"],
        "selected_epoch": m.state["best"]["epoch"],
        **node_info(),
    }
    with tempfile.TemporaryDirectory() as d:
        np.savez(Path(d) / "result.npz", test_probs=test_probs)
        torch.save({**m.state, "module": m.module.state_dict()}, Path(d) / "state.pt")
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(d))
    common.release_accelerator(m.model)


def stage(ctx: StageContext) -> None:
    data_ref, _ = ctx.trial_data()
    prepared = ctx.prepared()
    chosen = files.read_json(ctx.paths.stage(Grid.DIR) / Grid.CHOSEN)
    run(ctx.cfg, ctx.paths, data_ref, chosen, prepared, ctx.resume)


def pool_folds(cfg: Config, data: TrialData) -> np.ndarray:
    """Fold per item of the training pool (grouped, stratified), -1 on the test holdout."""
    pool = ~data.test
    folds = np.full(len(data.y), -1, dtype=np.int64)
    folds[pool] = grouped_folds(data.y[pool], data.groups[pool], cfg.clean.folds, cfg.seed)
    return folds


def out_of_fold(
    cfg: Config, out: Path, data_ref: Any, data: TrialData, folds: np.ndarray, chosen: dict
) -> tuple[np.ndarray, list[dict]]:
    """(N, C) out-of-fold probabilities (NaN on test items), one stored task per fold."""
    tasks = out / layout.TASKS
    tasks.mkdir(parents=True, exist_ok=True)
    res = cfg.resources
    task = _oof_task.options(num_cpus=res.cpus_per_trial, num_gpus=res.gpus_per_trial)
    pending = {
        task.remote(cfg, data_ref, folds, f, chosen): f
        for f in range(cfg.clean.folds)
        if not (tasks / f"oof_fold_{f}.npz").is_file()
    }

    def store(f: int, r: dict) -> str:
        files.savez(tasks / f"oof_fold_{f}.npz", idx=r["idx"], probs=r["probs"])
        files.write_json(
            tasks / f"oof_fold_{f}.json",
            {k: r[k] for k in ("fold", "node_id", "node_ip", "seconds")},
        )
        return ""

    common.drain(pending, store, "clean", "folds", cfg.clean.folds)
    probs = np.full((len(data.y), data.n_classes), np.nan)
    work = []
    for f in range(cfg.clean.folds):
        with np.load(tasks / f"oof_fold_{f}.npz") as z:
            probs[z["idx"]] = z["probs"]
        w = files.read_json(tasks / f"oof_fold_{f}.json")
        work.append(
            {
                "unit": f"fold {f} out-of-fold model",
                **{k: w[k] for k in ("node_id", "node_ip", "seconds")},
            }
        )
    return probs, work


def run(
    cfg: Config, paths: RunPaths, data_ref: Any, chosen: dict, prepared: Any, resume: bool
) -> dict[str, Any]:
    """``prepared``: the manifest (with the noise record), crops and class names."""
    out = paths.stage(Clean.DIR)
    out.mkdir(parents=True, exist_ok=True)
    data: TrialData = ray.get(data_ref)
    manifest, names = prepared.manifest, list(prepared.class_names)
    folds = pool_folds(cfg, data)
    probs, work = out_of_fold(cfg, out, data_ref, data, folds, chosen)
    pool = np.flatnonzero(folds >= 0)
    y = data.y[pool]
    losses = cross_entropy_losses(probs[pool], y)
    flagged = flag_top_losses(losses, fraction=cfg.clean.flag_fraction)
    noisy = cfg.data.label_noise > 0 and "flipped" in manifest.columns
    flipped = manifest["flipped"].to_numpy(bool)[pool] if noisy else None
    table = pd.DataFrame(
        {
            "item": pool,
            "fold": folds[pool],
            "label": y,
            "label_name": np.asarray(names)[y],
            "pred": probs[pool].argmax(1),
            "loss": losses,
            "p_label": probs[pool][np.arange(len(pool)), y],
            "flagged": flagged,
        }
    )
    if noisy:
        table["flipped"] = flipped
        table["clean_label_name"] = manifest["clean_label_name"].to_numpy()[pool]
    table.to_csv(out / Clean.LOSSES, index=False)
    gallery = top_loss_table(
        probs[pool], y, cfg.clean.gallery, names, losses=losses, index=pool, flipped=flipped
    )
    if noisy:
        gallery["clean_label_name"] = manifest["clean_label_name"].to_numpy()[gallery["index"]]
    gallery.to_csv(out / Clean.GALLERY, index=False)
    files.savez(out / Clean.GALLERY_CROPS, crops=prepared.crops.take(gallery["index"].to_numpy()))
    summary: dict[str, Any] = {
        "n_pool": int(len(pool)),
        "folds": cfg.clean.folds,
        "chosen": {"lr": chosen["lr"], "hidden": chosen["hidden"]},
        "epochs": cfg.train.epochs,
        "flag_fraction": cfg.clean.flag_fraction,
        "n_flagged": int(flagged.sum()),
        "oof_acc": float((table["pred"] == table["label"]).mean()),
        "class_names": names,
        "label_noise": cfg.data.label_noise,
        "paper": PAPER,
    }
    if noisy:
        summary["flags"] = flag_scores(losses, flagged, flipped)
    drops = {"none": np.zeros(len(data.y), bool), "flagged": np.zeros(len(data.y), bool)}
    drops["flagged"][pool[flagged]] = True
    if noisy:
        drops["oracle"] = manifest["flipped"].to_numpy(bool) & (folds >= 0)
    if cfg.clean.members > 0:
        summary["retrain"], more = retrain(cfg, paths, data_ref, data, chosen, drops, resume)
        work += more
    common.write_work(out, work)
    files.write_json(out / layout.SUMMARY, summary)
    print_line(summary)
    return summary


def flag_scores(losses: np.ndarray, flagged: np.ndarray, flipped: np.ndarray) -> dict[str, Any]:
    """The flags against the truth, and how well the loss ranks flipped items at all (AUROC:
    the chance that a flipped item's loss exceeds a clean one's, ties half)."""
    from scipy.stats import rankdata

    q = flag_quality(flagged, flipped)
    n_pos, n_neg = int(flipped.sum()), int((~flipped).sum())
    auroc = None
    if n_pos and n_neg:
        ranks = rankdata(losses)
        auroc = float((ranks[flipped].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return {
        **q,
        "auroc": auroc,
        "mean_loss_flipped": float(losses[flipped].mean()) if n_pos else None,
        "mean_loss_clean": float(losses[~flipped].mean()) if n_neg else None,
    }


def _retrain_members(
    cfg: Config,
    paths: RunPaths,
    data_ref: Any,
    data: TrialData,
    chosen: dict,
    drops: dict[str, np.ndarray],
    resume: bool,
) -> tuple[list[dict], list[dict], dict[tuple[str, int], np.ndarray]]:
    """The Tune run over (variant, member): rows, work entries, test probabilities. The
    members plan ``train.*`` as the ensemble does (the LR range test, when asked for, is
    rerun here on the same data and seed, so it gives the ensemble's lr)."""
    out = paths.stage(Clean.DIR)
    variants = list(drops)
    space = {
        "variant": tune.grid_search(variants),
        "member": tune.grid_search(list(range(cfg.clean.members))),
    }
    names = training_choices.class_names(paths)
    plan = training_choices.plan(cfg, out, data_ref, data, names, chosen, resume)
    params = {"cfg": cfg, "chosen": chosen, "data_ref": [data_ref], "drops": drops, "plan": plan}
    keys = (
        "variant", "member", "seed", "n_train", "n_val", "dropped_train", "dropped_val",
        "val_acc", "test_acc", "selected_phase", "selected_epoch",
    )  # fmt: skip

    def record(r: tune.Result, d: Path | None) -> tuple[dict, dict, np.ndarray]:
        m = r.metrics
        with np.load(Path(d) / "result.npz") as z:
            test_probs = z["test_probs"]
        work = {"unit": f"{m['variant']} member {m['member']}", **common.where(m)}
        return {k: m[k] for k in keys}, work, test_probs

    total = len(variants) * cfg.clean.members
    spec = TuneStage("clean", retrain_trainable, params, space, total, record)
    records = run_tune_stage(cfg, spec, resume).records
    rows, work = [row for row, _, _ in records], [w for _, w, _ in records]
    probs = {(row["variant"], int(row["member"])): p for row, _, p in records}
    return rows, work, probs


def retrain(
    cfg: Config,
    paths: RunPaths,
    data_ref: Any,
    data: TrialData,
    chosen: dict,
    drops: dict[str, np.ndarray],
    resume: bool,
) -> tuple[dict, list[dict]]:
    """Tune over (variant, member); per variant the soft vote's test accuracy with its
    interval over subjects and the paired difference to ``none``."""
    out = paths.stage(Clean.DIR)
    variants = list(drops)
    rows, work, probs = _retrain_members(cfg, paths, data_ref, data, chosen, drops, resume)
    per_member = pd.DataFrame(rows).sort_values(["variant", "member"])
    per_member.to_csv(out / Clean.RETRAIN, index=False)
    labels, groups = data.y[data.test], data.groups[data.test]
    votes = {v: np.mean([probs[v, k] for k in range(cfg.clean.members)], axis=0) for v in variants}
    files.savez(out / Clean.VOTES, labels=labels, **{f"probs_{v}": p for v, p in votes.items()})
    frac = {
        v: np.mean([probs[v, k].argmax(1) == labels for k in range(cfg.clean.members)], 0)
        for v in variants
    }
    correct = {v: votes[v].argmax(1) == labels for v in variants}
    table, facts = [], {}
    method = cfg.statistics.interval
    for v in variants:
        vote = accuracy_interval(correct[v], groups, seed=cfg.seed, method=method)
        diff = paired_difference(correct[v], correct["none"], groups, seed=cfg.seed, method=method)
        member = mean_interval(frac[v], groups, seed=cfg.seed, method=method, bounds=(0, 1))
        mdiff = mean_interval(
            frac[v] - frac["none"], groups, seed=cfg.seed, method=method, bounds=(-1, 1)
        )
        facts[v] = {
            "vote": vote.as_dict(),
            "vote_minus_none": diff.as_dict(),
            "member_mean": member.as_dict(),
            "member_minus_none": mdiff.as_dict(),
            "dropped": int(drops[v].sum()),
        }
        table.append(
            {
                "variant": v,
                "dropped": int(drops[v].sum()),
                "vote_acc": vote.estimate,
                "vote_low": vote.low,
                "vote_high": vote.high,
                "vote_minus_none": diff.estimate,
                "diff_low": diff.low,
                "diff_high": diff.high,
                "member_mean": member.estimate,
                "member_minus_none": mdiff.estimate,
            }
        )
    if "oracle" in variants:
        gap = paired_difference(
            correct["flagged"], correct["oracle"], groups, seed=cfg.seed, method=method
        )
        facts["flagged_minus_oracle"] = gap.as_dict()
    pd.DataFrame(table).to_csv(out / Clean.VARIANTS, index=False)
    return {
        "members": cfg.clean.members,
        "variants": facts,
        "n_test": int(len(labels)),
        "n_test_groups": int(len(np.unique(groups))),
    }, work


def print_line(s: dict[str, Any]) -> None:
    text = f"[clean] {s['n_pool']} pool items · {s['n_flagged']} flagged"
    if "flags" in s:
        f = s["flags"]
        text += (
            f" · precision {100 * f['precision']:.1f} % recall {100 * f['recall']:.1f} %"
            f" (base rate {100 * f['base_rate']:.1f} %)"
        )
    for v, facts in s.get("retrain", {}).get("variants", {}).items():
        if "vote" in facts:
            text += f" · {v} {100 * facts['vote']['estimate']:.2f} %"
    print(text, flush=True)
