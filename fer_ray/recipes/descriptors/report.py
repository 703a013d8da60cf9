"""Seed 000's descriptor baseline (Table 1, Figs. 1a and 1b) beside the paper's numbers.

The paper's values come from the stage's own ``summary.json`` (``paper_table1``,
``paper_test_acc``), so the report needs nothing but stored files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer_ray.layout import SUMMARY, Descriptors
from fer_ray.report.figures import save, subplots
from fer_ray.report.page import Block, h2, img, p, pct, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "descriptors"
FIG1A = "descriptors_fig1a_angles.png"
FIG1B = "descriptors_fig1b_pairs.png"


def load(run: Run) -> Part | None:
    s = run.json(Descriptors.DIR, SUMMARY)
    if s is None:
        return None
    t1 = run.need_csv(Descriptors.DIR, Descriptors.TABLE1)
    table1 = t1[["input", "feature", "mean", "std"]].copy()
    table1["paper"] = list(s["paper_table1"])[: len(table1)]
    return Part(
        tables={"descriptors_table1": table1},
        facts={
            "summary": s,
            "angles": run.need_csv(Descriptors.DIR, Descriptors.ANGLES),
            "pairs": run.need_csv(Descriptors.DIR, Descriptors.PAIRS, keep_default_na=False),
            "folds": run.need_csv(Descriptors.DIR, Descriptors.FOLDS),
        },
    )


def fig1a_angles(angles: pd.DataFrame, absolute: bool, path: Path) -> None:
    """Bar per input: mean angle to the other inputs, error bar = std over models."""
    fig, ax = subplots(figsize=(7, 3.4))
    labels = [f"{i}\n{f}" for i, f in zip(angles["input"], angles["feature"])]
    ax.bar(labels, angles["mean"], yerr=angles["std"], capsize=3, color="tab:blue")
    lo = float((angles["mean"] - angles["std"]).min())
    hi = float((angles["mean"] + angles["std"]).max())
    ax.set_ylim(max(0.0, lo - 0.3 * (hi - lo) - 1), hi + 0.3 * (hi - lo) + 1)
    ax.set_xlabel("input")
    ax.set_ylabel("average angle (deg)")
    kind = "absolute" if absolute else "signed"
    ax.set_title(f"Fig. 1a: average angle per input ({kind} weights; bars: std over models)")
    save(fig, path)


def pair_matrix(pairs: pd.DataFrame, n: int = 10) -> np.ndarray:
    """(n, n) mean accuracy with inputs i and j eliminated; diagonal = input i alone."""
    mat = np.full((n, n), np.nan)
    for row in pairs[pairs["kind"].isin(["single", "pair"])].itertuples(index=False):
        mat[row.i - 1, row.j - 1] = mat[row.j - 1, row.i - 1] = row.acc_mean
    return mat


def fig1b_pairs(pairs: pd.DataFrame, features: list[str], path: Path) -> None:
    """Heatmap of held-out accuracy with each pair of inputs eliminated."""
    n = len(features)
    mat = pair_matrix(pairs, n)
    full = float(pairs.loc[pairs["kind"] == "full", "acc_mean"].iloc[0])
    fig, ax = subplots(figsize=(6.4, 5.4))
    im = ax.imshow(100 * mat, cmap="viridis")
    ticks = [f"{i + 1} {f}" for i, f in enumerate(features)]
    ax.set_xticks(range(n), ticks, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), ticks, fontsize=8)
    for (i, j), v in np.ndenumerate(100 * mat):
        ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6, color="w")
    fig.colorbar(im, ax=ax, label="held-out accuracy (%)")
    ax.set_title(f"Fig. 1b: accuracy with inputs i, j eliminated\n(all inputs: {100 * full:.1f} %)")
    save(fig, path)


def plots(part: Part, out: Path) -> None:
    f = part.facts
    fig1a_angles(f["angles"], bool(f["summary"]["absolute_angles"]), out / FIG1A)
    features = part.tables["descriptors_table1"]["feature"].tolist()
    fig1b_pairs(f["pairs"], features, out / FIG1B)


def blocks(part: Part) -> list[Block]:
    s = part.facts["summary"]
    grouped = bool(s["grouped"])
    split = (
        f"{s['folds']}-fold CV stratified by label and grouped by movie"
        if grouped
        else f"{s['folds']}-fold CV stratified by label, **not grouped by movie**"
    )
    b = [
        h2("Descriptor baseline (seed 000, sections 2.1 and 3.1)"),
        p(
            f"A {s['topology']} fully connected net (ReLU, Adam lr {s['lr']:g}, "
            f"{s['epochs']} epochs, batch {s['batch_size']}) on the 5 LPQ + 5 PHOG descriptors "
            f"of `{s['sheet']}` ({s['n_rows']} images, {s['n_groups']} "
            f"{'movies' if grouped else 'rows as groups'}), z-scored with each training "
            f"part's mean and std; {split}, {s['repeats']} repeat(s): {s['n_models']} models. "
            "Each model keeps its last epoch (no selection on the held-out fold)."
        ),
    ]
    if not grouped:
        b.append(p(f"**Warning: not grouped by movie.** {s['grouping_note']}."))
    w = s["pairs_worst"]
    folds = part.facts["folds"]
    b += [
        p(
            f"CV accuracy {pct(s['cv_acc_mean'])} ± {pct(s['cv_acc_std'])} (held-out folds, "
            f"mean ± std over {s['n_models']} models) against chance {pct(s['chance_majority'])}"
            f" (majority class) and {pct(s['chance_uniform'])} (uniform). Paper: test accuracy "
            f"{100 * s['paper_test_acc']:.3f} % on one holdout. With the epoch chosen on the "
            f"held-out fold (optimistic) ours would read {pct(s['cv_acc_best_epoch_mean'])}."
        ),
        p(
            "Table 1: average Gedeon magnitude per input (sum over the 7 outputs of eq. 2), "
            f"mean ± std over models, next to the paper's values. Per model the ten values sum "
            f"to n_outputs = 7 (ours: {s['magnitude_sum']:.4f}; paper: "
            f"{sum(s['paper_table1']):.4f}), so 0.7 is the flat level."
        ),
        table(part.tables["descriptors_table1"]),
        img(FIG1A, "Fig. 1a: average distinctiveness angle per input, std over models"),
        img(FIG1B, "Fig. 1b: held-out accuracy with inputs eliminated in pairs (diagonal: one)"),
        p(
            f"All inputs: {pct(s['pairs_full_acc'])}. Eliminating a pair costs "
            f"{100 * s['pairs_mean_drop']:.2f} points on average; the costliest pair is inputs "
            f"{w['inputs'][0]} and {w['inputs'][1]} ({w['names'][0]}, {w['names'][1]}: "
            f"{100 * w['drop']:.2f} points). The paper found every pair removable without "
            "significant loss."
        ),
        table(folds[["repeat", "fold", "n_train", "n_val", "val_acc"]]),
    ]
    return b
