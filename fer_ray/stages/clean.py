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
3. **Retraining** (``clean.members`` > 0): Ray Tune trials over (variant, member) with the
   ensemble's recipe (the chosen cell, phase 2, selection) and the same member seeds and splits:
   ``none`` (every pool item; identical to the ensemble's member of that seed), ``flagged``
   (without the flagged items, in training and validation, as seed 004 cleaned its folders) and,
   with label noise, ``oracle`` (without exactly the flipped items). Test accuracies of the soft
   votes with subject-bootstrap intervals and paired differences to ``none``
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

from fer_ray import config as config_mod
from fer_ray import files, layout
from fer_ray.analysis.cleaning import (
    cross_entropy_losses,
    flag_quality,
    flag_top_losses,
    top_loss_table,
)
from fer_ray.analysis.intervals import accuracy_interval, mean_interval, paired_difference
from fer_ray.config import Config
from fer_ray.data.splits import grouped_folds, member_split
from fer_ray.layout import Clean, Grid, RunPaths
from fer_ray.seeds import fold_model_seed, member_seed
from fer_ray.stages import common
from fer_ray.stages.cluster import node_info
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
    model, module = common.trial_model(cfg.model, data, chosen["hidden"], seed, device)
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
    config: dict[str, Any], cfg: Config, chosen: dict, data_ref: Any, drops: dict
) -> None:
    """One member of one variant: the ensemble's recipe on the pool minus ``drops[variant]``."""
    common.set_threads(cfg, cfg.resources.cpus_per_trial)
    data = ray.get(data_ref[0])
    variant, member = str(config["variant"]), int(config["member"])
    seed = member_seed(cfg.seed, member)
    device = common.trial_device(cfg.resources.gpus_per_trial)
    model, module = common.trial_model(cfg.model, data, chosen["hidden"], seed, device)
    train_m, val_m = member_split(data.y, data.groups, data.test, cfg.ensemble.val_fraction, seed)
    drop = drops[variant]
    kept_train, kept_val = train_m & ~drop, val_m & ~drop
    train, val, test = (
        data.split(kept_train, train=True),
        data.split(kept_val),
        data.split(data.test),
    )
    phases = [Phase(float(chosen["lr"]), cfg.train.epochs)]
    if cfg.ensemble.phase2_epochs > 0:
        lr2 = config_mod.phase2_lr(cfg.ensemble.phase2_lr, float(chosen["lr"]))
        phases.append(Phase(lr2, cfg.ensemble.phase2_epochs))
    last = sum(p.epochs for p in phases)
    sel = cfg.ensemble.selection
    state = common.restore_state()

    def on_epoch(row: dict[str, Any], snapshot: Any) -> None:
        common.report_epoch(row, snapshot, cfg.output.checkpoint_every, row["step"] == last)

    st = fit(
        module,
        train,
        val,
        phases,
        cfg.train,
        seed,
        select_on=sel,
        test=test if sel == "test" else None,
        state=state,
        on_epoch=on_epoch,
        transform=data.train_transform(),
    )
    test_probs = predict_proba(module, test.x)
    val_acc = float((predict_proba(module, val.x).argmax(1) == val.y.numpy()).mean())
    final = {
        "step": last + 1,
        "final": True,
        "variant": variant,
        "member": member,
        "seed": seed,
        "n_train": int(kept_train.sum()),
        "n_val": int(kept_val.sum()),
        "dropped_train": int((train_m & drop).sum()),
        "dropped_val": int((val_m & drop).sum()),
        "val_acc": val_acc,
        "test_acc": float((test_probs.argmax(1) == test.y.numpy()).mean()),
        "selected_phase": st["best"]["phase"],
        "selected_epoch": st["best"]["epoch"],
        **node_info(),
    }
    with tempfile.TemporaryDirectory() as d:
        np.savez(Path(d) / "result.npz", test_probs=test_probs)
        torch.save({**st, "module": module.state_dict()}, Path(d) / "state.pt")
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(d))
    common.release_accelerator(model)


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
    manifest, crops, names = prepared.manifest, prepared.images, list(prepared.class_names)
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
    files.savez(out / Clean.GALLERY_CROPS, crops=crops[gallery["index"].to_numpy()])
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
    subject-bootstrap interval and the paired difference to ``none``."""
    out = paths.stage(Clean.DIR)
    variants = list(drops)
    space = {
        "variant": tune.grid_search(variants),
        "member": tune.grid_search(list(range(cfg.clean.members))),
    }
    trainable = tune.with_resources(
        tune.with_parameters(
            retrain_trainable, cfg=cfg, chosen=chosen, data_ref=[data_ref], drops=drops
        ),
        common.resources(cfg),
    )
    total = len(variants) * cfg.clean.members
    settings = common.tune_settings(cfg, "clean", "val_acc", total)
    results = common.fit_tuner(
        trainable, space, settings, resume, finished=lambda r: bool(r.metrics.get("final"))
    )
    rows, work, probs = [], [], {}
    for r in results:
        m = r.metrics
        with r.checkpoint.as_directory() as d, np.load(Path(d) / "result.npz") as z:
            probs[m["variant"], int(m["member"])] = z["test_probs"]
        keys = (
            "variant",
            "member",
            "seed",
            "n_train",
            "n_val",
            "dropped_train",
            "dropped_val",
            "val_acc",
            "test_acc",
            "selected_phase",
            "selected_epoch",
        )
        rows.append({k: m[k] for k in keys})
        work.append({"unit": f"{m['variant']} member {m['member']}", **common.where(m)})
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
    for v in variants:
        vote = accuracy_interval(correct[v], groups, seed=cfg.seed)
        diff = paired_difference(correct[v], correct["none"], groups, seed=cfg.seed)
        member = mean_interval(frac[v], groups, seed=cfg.seed)
        mdiff = mean_interval(frac[v] - frac["none"], groups, seed=cfg.seed)
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
        gap = paired_difference(correct["flagged"], correct["oracle"], groups, seed=cfg.seed)
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
