"""The two-phase fine-tuned members: per-member test accuracy, soft vote, learning curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from fer_ray.layout import SUMMARY, Ensemble, Grid
from fer_ray.report.figures import save, subplots
from fer_ray.report.page import Block, h2, img, p, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "ensemble"
MEMBER_ACCURACY = "member_accuracy.png"
LEARNING_CURVES = "learning_curves.png"


def load(run: Run) -> Part | None:
    members = run.csv(Ensemble.DIR, Ensemble.MEMBERS)
    if members is None:
        return None
    part = Part(
        tables={"ensemble_members": members},
        facts={
            "summary": run.json(Ensemble.DIR, SUMMARY),
            "epochs": run.config["train"]["epochs"],
            "ensemble": run.config["ensemble"],
            # the learning-curve figure puts the grid's curves beside the members'
            "grid_curves": run.csv(Grid.DIR, Grid.CURVES),
        },
    )
    curves = run.csv(Ensemble.DIR, Ensemble.CURVES)
    if curves is not None:
        part.tables["ensemble_curves"] = curves
    return part


def member_accuracy(members: pd.DataFrame, ens: dict[str, Any], path: Path) -> None:
    fig, ax = subplots(figsize=(7, 3.5))
    ax.bar(members["member"].astype(str), members["test_acc"], color="tab:blue", label="member")
    ax.axhline(ens["test_acc_mean"], color="k", ls="--", label="mean")
    ax.axhline(ens["vote_acc"], color="tab:green", label="soft vote")
    ax.axhline(ens["chance_uniform"], color="tab:red", ls=":", label="chance")
    ax.set_xlabel("member")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    suffix = " (selected on test)" if ens["selected_on_test"] else ""
    ax.set_title("Ensemble members" + suffix)
    ax.legend(loc="lower right", fontsize=8)
    save(fig, path)


def learning_curves(grid: pd.DataFrame | None, ens: pd.DataFrame | None, path: Path) -> None:
    """Left: grid cells (mean over folds); right: every member, both phases."""
    fig, axes = subplots(1, 2, figsize=(10, 3.5))
    if grid is not None:
        for (lr, h), d in grid.groupby(["lr", "hidden"]):
            mean = d.groupby("epoch")["val_acc"].mean()
            axes[0].plot(mean.index, mean.values, label=f"lr {lr:g} h {h}")
        axes[0].set_title("Grid: val accuracy (mean over folds)")
        axes[0].set_xlabel("epoch")
        axes[0].legend(fontsize=6)
    if ens is not None:
        for _, d in ens.groupby("member"):
            axes[1].plot(d["step"], d["val_acc"], color="tab:blue", alpha=0.4)
            axes[1].plot(d["step"], d["train_acc"], color="tab:orange", alpha=0.3)
        p2 = ens.loc[ens["phase"] == 2, "step"]
        if len(p2):
            axes[1].axvline(p2.min() - 0.5, color="k", ls=":", label="phase 2")
        axes[1].plot([], [], color="tab:blue", label="val")
        axes[1].plot([], [], color="tab:orange", label="train")
        axes[1].set_title("Ensemble members")
        axes[1].set_xlabel("epoch (both phases)")
        axes[1].legend(fontsize=7)
    for ax in axes:
        ax.set_ylabel("accuracy")
    save(fig, path)


def plots(part: Part, out: Path) -> None:
    if part.facts["summary"]:
        member_accuracy(
            part.tables["ensemble_members"], part.facts["summary"], out / MEMBER_ACCURACY
        )
    learning_curves(
        part.facts["grid_curves"], part.tables.get("ensemble_curves"), out / LEARNING_CURVES
    )


def blocks(part: Part) -> list[Block]:
    e = part.facts["ensemble"]
    sel = "test set (labelled: selected on test)" if e["selection"] == "test" else "validation"
    b = [
        h2("Ensemble (two-phase fine-tunes)"),
        p(
            f"Each member: {part.facts['epochs']} epochs at the chosen lr, then "
            f"{e['phase2_epochs']} epochs at lr {e['phase2_lr']:g}; epoch and phase selected "
            f"on {sel}. Train/val split ({1 - e['val_fraction']:.0%}:{e['val_fraction']:.0%}) "
            "drawn per member seed, grouped."
        ),
        table(part.tables["ensemble_members"]),
    ]
    if part.facts["summary"]:  # the figure draws the summary's mean and vote lines
        b.append(img(MEMBER_ACCURACY, "Test accuracy per member, mean and soft vote"))
    b.append(img(LEARNING_CURVES, "Learning curves (validation accuracy per epoch)"))
    return b
