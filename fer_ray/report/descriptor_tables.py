"""The descriptors stage's part of the report: seed 000's Table 1, Fig. 1a and Fig. 1b.

Reads only the stage's stored files (``descriptors/summary.json`` and its CSVs), never Ray,
and returns blocks in ``fer_ray.report.render``'s format; the PNGs are written to the
report directory. ``Block`` is redefined here so render.py can import this module.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fer_ray.data.descriptors import PAPER_TABLE1, PAPER_TEST_ACC  # noqa: E402

Block = tuple  # ("h1"|"h2"|"p"|"code", text) · ("table", DataFrame) · ("img", file, caption)

FIG1A = "descriptors_fig1a_angles.png"
FIG1B = "descriptors_fig1b_pairs.png"


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _labels(table: pd.DataFrame) -> list[str]:
    return [f"{i}\n{f}" for i, f in zip(table["input"], table["feature"])]


def fig1a_angles(angles: pd.DataFrame, absolute: bool, path: Path) -> None:
    """Bar per input: mean angle to the other inputs, error bar = std over models."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.bar(_labels(angles), angles["mean"], yerr=angles["std"], capsize=3, color="tab:blue")
    lo = float((angles["mean"] - angles["std"]).min())
    hi = float((angles["mean"] + angles["std"]).max())
    ax.set_ylim(max(0.0, lo - 0.3 * (hi - lo) - 1), hi + 0.3 * (hi - lo) + 1)
    ax.set_xlabel("input")
    ax.set_ylabel("average angle (deg)")
    kind = "absolute" if absolute else "signed"
    ax.set_title(f"Fig. 1a: average angle per input ({kind} weights; bars: std over models)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    im = ax.imshow(100 * mat, cmap="viridis")
    ticks = [f"{i + 1} {f}" for i, f in enumerate(features)]
    ax.set_xticks(range(n), ticks, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), ticks, fontsize=8)
    for (i, j), v in np.ndenumerate(100 * mat):
        ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6, color="w")
    fig.colorbar(im, ax=ax, label="held-out accuracy (%)")
    ax.set_title(f"Fig. 1b: accuracy with inputs i, j eliminated\n(all inputs: {100 * full:.1f} %)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def descriptor_blocks(run_dir: str | Path, out: str | Path) -> list[Block]:
    """Report blocks for the descriptor baseline ([] when the stage has not finished)."""
    d = Path(run_dir) / "descriptors"
    if not (d / "summary.json").is_file():
        return []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = json.loads((d / "summary.json").read_text())
    t1 = pd.read_csv(d / "table1_magnitude.csv")
    angles = pd.read_csv(d / "angles.csv")
    pairs = pd.read_csv(d / "pairs.csv", keep_default_na=False)
    folds = pd.read_csv(d / "folds.csv")
    features = t1["feature"].tolist()

    table1 = t1[["input", "feature", "mean", "std"]].copy()
    table1["paper"] = list(PAPER_TABLE1)[: len(table1)]
    table1.to_csv(out / "descriptors_table1.csv", index=False)
    fig1a_angles(angles, bool(s["absolute_angles"]), out / FIG1A)
    fig1b_pairs(pairs, features, out / FIG1B)

    grouped = bool(s["grouped"])
    split = (
        f"{s['folds']}-fold CV stratified by label and grouped by movie"
        if grouped
        else f"{s['folds']}-fold CV stratified by label, **not grouped by movie**"
    )
    blocks: list[Block] = [
        ("h2", "Descriptor baseline (seed 000, sections 2.1 and 3.1)"),
        (
            "p",
            f"A {s['topology']} fully connected net (ReLU, Adam lr {s['lr']:g}, "
            f"{s['epochs']} epochs, batch {s['batch_size']}) on the 5 LPQ + 5 PHOG descriptors "
            f"of `{s['sheet']}` ({s['n_rows']} images, {s['n_groups']} "
            f"{'movies' if grouped else 'rows as groups'}), z-scored with each training "
            f"part's mean and std; {split}, {s['repeats']} repeat(s): {s['n_models']} models. "
            "Each model keeps its last epoch (no selection on the held-out fold).",
        ),
    ]
    if not grouped:
        blocks.append(("p", f"**Warning: not grouped by movie.** {s['grouping_note']}."))
    blocks += [
        (
            "p",
            f"CV accuracy {_pct(s['cv_acc_mean'])} ± {_pct(s['cv_acc_std'])} (held-out folds, "
            f"mean ± std over {s['n_models']} models) against chance {_pct(s['chance_majority'])}"
            f" (majority class) and {_pct(s['chance_uniform'])} (uniform). Paper: test accuracy "
            f"{100 * PAPER_TEST_ACC:.3f} % on one holdout. With the epoch chosen on the held-out "
            f"fold (optimistic) ours would read {_pct(s['cv_acc_best_epoch_mean'])}.",
        ),
        (
            "p",
            "Table 1: average Gedeon magnitude per input (sum over the 7 outputs of eq. 2), "
            f"mean ± std over models, next to the paper's values. Per model the ten values sum "
            f"to n_outputs = 7 (ours: {s['magnitude_sum']:.4f}; paper: "
            f"{sum(PAPER_TABLE1):.4f}), so 0.7 is the flat level.",
        ),
        ("table", table1),
        ("img", FIG1A, "Fig. 1a: average distinctiveness angle per input, std over models"),
        (
            "img",
            FIG1B,
            "Fig. 1b: held-out accuracy with inputs eliminated in pairs (diagonal: one)",
        ),
    ]
    w = s["pairs_worst"]
    blocks.append(
        (
            "p",
            f"All inputs: {_pct(s['pairs_full_acc'])}. Eliminating a pair costs "
            f"{100 * s['pairs_mean_drop']:.2f} points on average; the costliest pair is inputs "
            f"{w['inputs'][0]} and {w['inputs'][1]} ({w['names'][0]}, {w['names'][1]}: "
            f"{100 * w['drop']:.2f} points). The paper found every pair removable without "
            "significant loss.",
        )
    )
    blocks.append(("table", folds[["repeat", "fold", "n_train", "n_val", "val_acc", "node"]]))
    return blocks
