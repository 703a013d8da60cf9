"""Seed 002's architecture comparison: AlexNet, VGG-19 and ResNet-152 side by side.

Seed 002 "ran a preliminary test on three well-known networks" (Fig. 12: training loss per
epoch) and then reported AlexNet's per-class accuracy (Fig. 13) and confusion matrix (Fig. 14).
When the grid searched ``model.backbone`` (``grid.backbones``), this section gives every
architecture the same treatment, side by side, from what the grid stored:

- its best cell (lr, hidden) by mean validation accuracy over the grouped folds;
- that cell's out-of-fold accuracy pooled over the folds (every non-test image scored once
  by a network that never trained on it) with the 95 % interval over subjects the grid
  stored in ``table2.csv``, and the mean ± std over folds;
- per-class accuracy (recall) and the confusion matrix of those out-of-fold predictions;
- the training loss per epoch (Fig. 12), mean over that cell's folds.

It reads ``grid/table2.csv``, ``grid/oof.csv`` and ``grid/curves.csv`` with a ``backbone``
column (one row per backbone × lr × hidden [× fold / item / epoch]); a run whose grid did not
search backbones has no such column and no section.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer_ray.layout import SUMMARY, Grid, Prepare
from fer_ray.report import uncertainty as u
from fer_ray.report.figures import MARKERS, STYLES, legend_outside, save, subplots, text_colour
from fer_ray.report.page import Block, h2, img, p, pct, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "architectures"
CONFUSION = "architectures_confusion.png"
LOSS = "architectures_train_loss.png"


def best_cells(t2: pd.DataFrame) -> pd.DataFrame:
    """Per backbone its best (lr, hidden) by mean over folds; ties → fewer hidden units, then
    larger lr (the grid's own rule, ``fer_ray.analysis.selection.choose``)."""
    t = t2.assign(m=t2["mean"].round(9)).sort_values(
        ["backbone", "m", "hidden", "lr"], ascending=[True, False, True, False]
    )
    return t.groupby("backbone", sort=False).head(1).drop(columns="m").reset_index(drop=True)


def confusion(oof: pd.DataFrame, n_classes: int) -> np.ndarray:
    """Counts, rows true, columns predicted."""
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (oof["label"].to_numpy(int), oof["pred"].to_numpy(int)), 1)
    return cm


def side_by_side(
    cells: pd.DataFrame, oof: pd.DataFrame, classes: list[str]
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The comparison table (one row per backbone) and each backbone's confusion matrix."""
    rows, mats = [], {}
    for c in cells.to_dict("records"):
        o = oof[(oof["backbone"] == c["backbone"]) & (oof["lr"] == c["lr"])
                & (oof["hidden"] == c["hidden"])]  # fmt: skip
        cm = confusion(o, len(classes))
        mats[c["backbone"]] = cm
        row = {
            "backbone": c["backbone"],
            "lr": c["lr"],
            "hidden": int(c["hidden"]),
            "oof_accuracy": c.get("pooled", float((o["pred"] == o["label"]).mean())),
            "low": c.get("low", np.nan),
            "high": c.get("high", np.nan),
            "fold_mean": c["mean"],
            "fold_std": c["std"],
            "n_images": int(len(o)),
        }
        support = cm.sum(1)
        for k, cls in enumerate(classes):
            row[f"acc_{cls}"] = cm[k, k] / support[k] if support[k] else np.nan
        rows.append(row)
    return pd.DataFrame(rows), mats


def load(run: Run) -> Part | None:
    oof = run.csv(Grid.DIR, Grid.OOF)
    if oof is None or "backbone" not in oof.columns:
        return None
    t2 = run.need_csv(Grid.DIR, Grid.TABLE2)
    if "backbone" not in t2.columns:
        return None
    classes = list((run.json(Prepare.DIR, SUMMARY) or {}).get("class_names") or [])
    if not classes:
        classes = [str(k) for k in range(int(max(oof["label"].max(), oof["pred"].max())) + 1)]
    cells = best_cells(t2)
    comp, mats = side_by_side(cells, oof, classes)
    curves = run.csv(Grid.DIR, Grid.CURVES)
    chosen = run.json(Grid.DIR, Grid.CHOSEN) or {}
    return Part(
        tables={"architectures": comp},
        facts={
            "confusions": mats,
            "classes": classes,
            "curves": curves if curves is not None and "backbone" in curves else None,
            "cells": cells,
            "chosen": chosen.get("backbone"),
            "noun": u.group_noun(run),
            "method": u.run_method(run),
        },
    )


def plots(part: Part, out: Path) -> None:
    mats, classes = part.facts["confusions"], part.facts["classes"]
    fig, axes = subplots(1, len(mats), figsize=(4.3 * len(mats), 4.2), squeeze=False)
    for ax, (bb, cm) in zip(axes[0], mats.items()):
        rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        for (i, j), v in np.ndenumerate(cm):
            colour = text_colour(im.cmap(im.norm(rates[i, j]))[:3])
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color=colour)
        ax.set_title(f"{bb} (out-of-fold)")
        ax.set_xlabel("predicted")
    axes[0, 0].set_ylabel("true")
    save(fig, out / CONFUSION)
    curves = part.facts["curves"]
    if curves is None:
        return
    fig, ax = subplots(figsize=(6.8, 3.6))
    for k, c in enumerate(part.facts["cells"].to_dict("records")):
        d = curves[(curves["backbone"] == c["backbone"]) & (curves["lr"] == c["lr"])
                   & (curves["hidden"] == c["hidden"])]  # fmt: skip
        mean = d.groupby("epoch")["train_loss"].mean()
        ax.plot(mean.index, mean.to_numpy(), marker=MARKERS[k % len(MARKERS)],
                ls=STYLES[k % len(STYLES)], label=str(c["backbone"]))  # fmt: skip
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (mean over folds)")
    ax.set_title("Training loss per epoch (seed 002 Fig. 12)")
    legend_outside(ax, title="backbone", title_fontsize=8)
    save(fig, out / LOSS)


def blocks(part: Part) -> list[Block]:
    comp = part.tables["architectures"]
    shown = pd.DataFrame(
        {
            "backbone": comp["backbone"],
            "cell": [f"lr {r.lr:g}, hidden {r.hidden}" for r in comp.itertuples()],
            "out-of-fold accuracy": [
                u.accuracy(r.oof_accuracy, r.low, r.high) if np.isfinite(r.low)
                else pct(r.oof_accuracy)
                for r in comp.itertuples()
            ],
            "fold mean ± std": [
                f"{pct(r.fold_mean)} ± {100 * r.fold_std:.2f}" for r in comp.itertuples()
            ],
            **{
                c[4:]: [f"{100 * v:.1f} %" if np.isfinite(v) else "—" for v in comp[c]]
                for c in comp.columns
                if c.startswith("acc_")
            },
        }
    )  # fmt: skip
    chosen = part.facts["chosen"]
    b = [
        h2("Architectures side by side (seed 002)"),
        p(
            "Each architecture's best grid cell, scored out of fold: every image outside the"
            " test holdout is predicted once by the fold network that did not train on it"
            " (last epoch). The bracket is the 95 %"
            f" {u.method_short(part.facts.get('method'), part.facts['noun'])}; the per-class columns are that architecture's recall."
            + (f" The grid's overall choice, trained by the ensemble: **{chosen}**." if chosen
               else "")
        ),
        table(shown),
        img(CONFUSION, "Confusion matrices of the out-of-fold predictions, side by side"),
    ]  # fmt: skip
    if part.facts["curves"] is not None:
        b.append(img(LOSS, "Training loss per epoch of each architecture's best cell"))
    return b
