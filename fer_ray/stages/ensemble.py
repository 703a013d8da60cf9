"""ensemble: one Ray Tune run over member seeds, each a two-phase fine-tune.

Every member trains with the grid's chosen (lr, hidden) for ``train.epochs``,
then from its best state at ``ensemble.phase2_lr`` for ``phase2_epochs``. The
kept state is the best epoch over both phases on validation, or on test when
``ensemble.selection: test`` reproduces seed 000's protocol (the report then
labels the numbers "selected on test"). The test holdout is the same for all
members, so their soft vote is well defined.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import ray
import torch
from ray import tune

from fer_ray import config as config_mod
from fer_ray import files, layout
from fer_ray.analysis.ensemble_size import ensemble_size_curve
from fer_ray.analysis.member_intervals import (
    architecture_tables,
    ensemble_intervals,
    holdout_spread,
    member_accuracy_intervals,
)
from fer_ray.analysis.metrics import ensemble_summary, soft_vote
from fer_ray.config import Config
from fer_ray.data.splits import grouped_holdout
from fer_ray.layout import Ensemble, Grid, RunPaths
from fer_ray.seeds import holdout_seed, member_seed
from fer_ray.stages import common, training_choices
from fer_ray.stages.cluster import node_info
from fer_ray.stages.members import train_member
from fer_ray.stages.tune_stage import TuneStage, run_tune_stage
from fer_ray.train.loop import predict_proba

if TYPE_CHECKING:
    from fer_ray.stages.context import StageContext


@torch.no_grad()
def _pooled(model: Any, kind: str, x: torch.Tensor, device: str) -> np.ndarray:
    model.eval()
    x = x.to(device)
    z = x if kind == "features" else model.trunk(x)
    return model.tail.pooled(z).cpu().numpy().astype(np.float32)


def ensemble_trainable(
    config: dict[str, Any],
    cfg: Config,
    chosen: dict,
    data_ref: Any,
    plan: training_choices.Plan | None = None,
) -> None:
    """One member (of one holdout repeat, one compared backbone), by the member trainer."""
    common.set_threads(cfg, cfg.resources.cpus_per_trial)
    data = ray.get(data_ref[0])
    member, repeat = int(config["member"]), int(config.get("repeat", 0))
    test_m = data.test
    if repeat:  # another grouped holdout; the grid's choice saw these subjects (reported)
        e = cfg.ensemble
        test_m = grouped_holdout(
            data.y, data.groups, e.test_fraction, holdout_seed(cfg.seed, repeat)
        )
    # ensemble.backbones (seed 002's comparison on the test set), else the grid's choice
    m = train_member(
        cfg, chosen, plan, data, member_seed(cfg.seed, member, repeat), test_m=test_m,
        backbone=config.get("backbone"),
    )  # fmt: skip
    # the selected weights are loaded: score them once on val and test
    test_probs = predict_proba(m.module, m.test.x)
    val_probs = predict_proba(m.module, m.val.x)
    head = m.model.tail.head
    device = common.trial_device(cfg.resources.gpus_per_trial)
    artifacts = {
        "test_idx": np.flatnonzero(m.test_m),
        "val_idx": np.flatnonzero(m.val_m),
        "train_idx": np.flatnonzero(m.train_m),
        "test_labels": m.test.y.numpy(),
        "test_probs": test_probs,
        "val_probs": val_probs,
        "test_features": _pooled(m.model, data.kind, m.test.x, device),
        "w_hidden": head.fc1.weight.detach().cpu().numpy(),
        "b_hidden": head.fc1.bias.detach().cpu().numpy(),
        "w_out": head.fc2.weight.detach().cpu().numpy(),
        "b_out": head.fc2.bias.detach().cpu().numpy(),
    }
    final = {
        "step": m.last_step + 1,
        "final": True,
        "member": member,
        "repeat": repeat,
        "backbone": m.backbone,
        "seed": m.seed,
        "test_acc": float((test_probs.argmax(1) == artifacts["test_labels"]).mean()),
        "val_acc": float((val_probs.argmax(1) == m.val.y.numpy()).mean()),
        "selected_phase": m.state["best"]["phase"],
        "selected_epoch": m.state["best"]["epoch"],
        "n_train": len(m.train),
        "n_val": len(m.val),
        "n_test": len(m.test),
        "resumed_from": m.resumed,
        **node_info(),
    }
    with tempfile.TemporaryDirectory() as d:
        np.savez(Path(d) / Ensemble.MEMBER, **artifacts)
        torch.save(m.module.state_dict(), Path(d) / Ensemble.MODEL)
        torch.save({**m.state, "module": m.module.state_dict()}, Path(d) / "state.pt")
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(d))
    common.release_accelerator(m.model)


def stage(ctx: StageContext) -> None:
    data_ref, _ = ctx.trial_data()
    chosen = files.read_json(ctx.paths.stage(Grid.DIR) / Grid.CHOSEN)
    run(ctx.cfg, ctx.paths, data_ref, chosen, ctx.resume)


def _member_record(cfg: Config, out: Path, main_bb: str) -> Any:
    """A finished member → its files under ``out`` and its row, work entry and predictions:
    the main members (repeat 0, main backbone) are analysed; the others are scored."""
    e = cfg.ensemble

    def record(r: tune.Result, d: Path | None) -> dict[str, Any]:
        m = r.metrics
        rep, bb, idx = int(m.get("repeat", 0)), m.get("backbone", cfg.model.backbone), m["member"]
        dst = out / Ensemble.MEMBERS_DIR / Ensemble.member_dir(idx)
        if rep:
            dst = out / Ensemble.REPEATS_DIR / f"repeat_{rep}" / Ensemble.member_dir(idx)
        elif bb != main_bb:
            dst = out / Ensemble.ARCHS_DIR / bb / Ensemble.member_dir(idx)
        dst.mkdir(parents=True, exist_ok=True)
        for f in (Ensemble.MEMBER, Ensemble.MODEL):
            shutil.copy(Path(d) / f, dst / f)
        with np.load(dst / Ensemble.MEMBER) as z:
            entry = (z["test_probs"], z["test_labels"], z["test_idx"])
        keys = ["member", "seed", "test_acc", "val_acc", "selected_phase", "selected_epoch"]
        more = {k: m[k] for k in (*keys, "n_train", "n_val", "n_test")}
        unit = (
            f"member {idx}" + (f" repeat {rep}" if rep else "") + (f" {bb}" if e.backbones else "")
        )
        main = rep == 0 and bb == main_bb
        return {
            "rep": rep, "bb": bb, "member": idx, "entry": entry, "val_acc": m["val_acc"],
            "row": {"repeat": rep, "backbone": bb, **more},
            "work": {"unit": unit, **common.where(m), "resumed_from_epoch": m["resumed_from"]},
            "curve": _curve(r.metrics_dataframe).assign(member=idx) if main else None,
        }  # fmt: skip

    return record


def run(cfg: Config, paths: RunPaths, data_ref: Any, chosen: dict, resume: bool) -> dict[str, Any]:
    out = paths.stage(Ensemble.DIR)
    (out / Ensemble.MEMBERS_DIR).mkdir(parents=True, exist_ok=True)
    e = cfg.ensemble
    space: dict[str, Any] = {"member": tune.grid_search(list(range(e.members)))}
    if e.holdout_repeats > 1:
        space["repeat"] = tune.grid_search(list(range(e.holdout_repeats)))
    if e.backbones:
        space["backbone"] = tune.grid_search(list(e.backbones))
    main_bb = main_backbone(cfg)
    data = ray.get(data_ref)
    names = training_choices.class_names(paths)
    plan = training_choices.plan(cfg, out, data_ref, data, names, chosen, resume)
    params = {"cfg": cfg, "chosen": chosen, "data_ref": [data_ref], "plan": plan}
    total = e.members * e.holdout_repeats * max(1, len(e.backbones or []))
    spec = TuneStage(
        "ensemble", ensemble_trainable, params, space, total, _member_record(cfg, out, main_bb)
    )
    records = run_tune_stage(cfg, spec, resume).records
    return _aggregate(cfg, out, data, chosen, plan, records)


def _aggregate(
    cfg: Config, out: Path, data: Any, chosen: dict, plan: Any, records: list[dict]
) -> dict[str, Any]:
    """The members' records → members.csv, curves, the vote, intervals, summary.json."""
    e, main_bb = cfg.ensemble, main_backbone(cfg)
    probs = {(t["rep"], t["member"]): t["entry"] for t in records if t["bb"] == main_bb}
    arch = {(t["bb"], t["member"]): (t["entry"][0], t["val_acc"]) for t in records if not t["rep"]}
    rows, work = [t["row"] for t in records], [t["work"] for t in records]
    curves = [t["curve"] for t in records if t["curve"] is not None]
    table = pd.DataFrame(rows).sort_values(["repeat", "backbone", "member"])
    members = table[(table["repeat"] == 0) & (table["backbone"] == main_bb)]
    members = members.drop(columns=["repeat", "backbone"])
    table = table[table["backbone"] == main_bb]
    first = [probs[0, k] for k in sorted(k for r, k in probs if r == 0)]  # member order
    p0, labels = [p for p, _, _ in first], first[0][1]
    stats = ensemble_summary(members["test_acc"].to_numpy(), p0, labels)
    test_groups = data.groups[data.test]
    stats["intervals"] = ensemble_intervals(
        p0, labels, test_groups, members["val_acc"].to_list(), cfg.seed, cfg.statistics.interval
    )
    bounds = member_accuracy_intervals(p0, labels, test_groups, cfg.seed, cfg.statistics.interval)
    members = members.assign(
        test_acc_low=[b[0] for b in bounds], test_acc_high=[b[1] for b in bounds]
    )
    if e.backbones:
        by_bb = {
            b: (
                [arch[b, k][0] for k in range(e.members)],
                [arch[b, k][1] for k in range(e.members)],
            )
            for b in e.backbones
        }
        archs, arch_class, arch_conf = architecture_tables(
            by_bb, labels, test_groups, cfg.seed, cfg.statistics.interval
        )
        archs.to_csv(out / Ensemble.ARCHS, index=False)
        arch_class.to_csv(out / Ensemble.ARCH_RECALL, index=False)
        arch_conf.to_csv(out / Ensemble.ARCH_CONFUSION, index=False)
    if e.holdout_repeats > 1:
        holdouts = _holdouts(table, probs, data.groups)
        holdouts.to_csv(out / Ensemble.HOLDOUTS, index=False)
        stats["holdouts"] = holdout_spread(holdouts)
    ensemble_size_curve(np.stack(p0), labels, seed=cfg.seed).to_csv(
        out / Ensemble.SIZE_CURVE, index=False
    )
    common.write_work(out, sorted(work, key=lambda w: w["unit"]))
    base_lr = float(chosen["lr"]) if plan is None else plan.base_lr
    lr2 = config_mod.phase2_lr(e.phase2_lr, base_lr) if e.phase2_epochs else None
    summary = {
        "members": len(members),
        "chosen": chosen,
        "phase2_lr": lr2,
        "selection": e.selection,
        "selected_on_test": e.selection == "test",
        **stats,
        "training": training_choices.summary_entry(cfg, plan, data, chosen),
    }
    if cfg.train.phases is not None:
        summary["phase2_lr"] = None  # train.phases replaced the two phases
    members.to_csv(out / Ensemble.MEMBERS, index=False)
    pd.concat(curves).sort_values(["member", "step"]).to_csv(out / Ensemble.CURVES, index=False)
    files.savez(out / Ensemble.VOTE, probs=soft_vote(p0), labels=labels)
    files.write_json(out / layout.SUMMARY, summary)
    tag = " (selected on test)" if summary["selected_on_test"] else ""
    print(
        f"[ensemble] {len(members)} members · test acc {summary['test_acc_mean']:.3f}"
        f" ± {summary['test_acc_std']:.3f}{tag} · soft vote {summary['vote_acc']:.3f}"
        f" · chance {summary['chance_uniform']:.3f}",
        flush=True,
    )
    return summary


CURVE_COLUMNS = (
    "step", "phase", "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "test_acc"
)  # fmt: skip


def main_backbone(cfg: Config) -> str:
    """The backbone whose members are analysed: model.backbone, or the first compared one."""
    bbs = cfg.ensemble.backbones
    return cfg.model.backbone if not bbs or cfg.model.backbone in bbs else bbs[0]


def _curve(h: pd.DataFrame) -> pd.DataFrame:
    """A member's epochs (without its final scoring row), one row per step."""
    h = h[h.get("final", pd.Series(False, index=h.index)).fillna(False) != True]  # noqa: E712
    h = h.drop_duplicates("step", keep="last").sort_values("step")
    return h[[c for c in CURVE_COLUMNS if c in h.columns]]


def _holdouts(table: pd.DataFrame, probs: dict, groups: np.ndarray) -> pd.DataFrame:
    rows = []
    for rep, d in table.groupby("repeat"):
        entries = [probs[rep, k] for k in sorted(d["member"])]
        ps, labels, idx = [p for p, _, _ in entries], entries[0][1], entries[0][2]
        rows.append(
            {
                "repeat": int(rep),
                "n_test": int(len(labels)),
                "n_groups": int(len(np.unique(groups[idx]))),
                "member_mean": float(d["test_acc"].mean()),
                "member_std": float(d["test_acc"].std(ddof=1)) if len(d) > 1 else 0.0,
                "vote_acc": float((soft_vote(ps).argmax(1) == labels).mean()),
            }
        )
    return pd.DataFrame(rows)
