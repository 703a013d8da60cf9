"""Seed 000's Figs. 2-5: Gedeon contribution, distinctiveness angles and pruning, per feature.

Each count is printed next to the paper's value, so a reader sees at once how far the
reproduction lands from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fer_ray.layout import SUMMARY, Analyse
from fer_ray.report.figures import save, subplots
from fer_ray.report.page import Block, h2, img, p, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "feature_analysis"
FIG2 = "fig2_magnitude.png"
FIG3 = "fig3_angles.png"
FIG4 = "fig4_pruning_baselines.png"
FIG5 = "fig5_pruning_sweep.png"


def baselines(b: pd.DataFrame) -> pd.DataFrame:
    """Per pruning rule: features pruned and accuracy, mean ± std over models."""
    bt = b.groupby("rule", sort=False).agg(
        n_pruned_mean=("n_pruned", "mean"),
        accuracy_mean=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
    )
    return bt.fillna(0.0).reset_index()


def counts(s: dict[str, Any]) -> pd.DataFrame:
    """The analysis summary's counts, each labelled with the paper's value."""
    n = s["n_features"]
    rows = [
        (
            "features within mean ± std, magnitude (paper: 348 of 512)",
            f"{s['features_within_magnitude']} of {n}",
        ),
        (
            "features within mean ± std, angle (paper: 352 of 512)",
            f"{s['features_within_angle']} of {n}",
        ),
        (
            "avg magnitude mean / std (paper: 0.0137 / 0.0003)",
            f"{s['magnitude_mean']:.4f} / {s['magnitude_std']:.4f}",
        ),
        (
            "avg angle mean / std, deg (paper: 46.27 / 0.41)",
            f"{s['angle_mean']:.2f} / {s['angle_std']:.2f}",
        ),
        (
            "min / max pairwise angle, deg (paper: 40.80 / 51.14)",
            f"{s['angle_min_pair']:.2f} / {s['angle_max_pair']:.2f}",
        ),
        (
            "pruned by magnitude < mean - std (paper: 87)",
            f"{s['pruned_by_rule']['magnitude']:.1f}",
        ),
        ("pruned by angle < mean - std (paper: 81)", f"{s['pruned_by_rule']['angle']:.1f}"),
        ("pruned at random (same count as magnitude)", f"{s['pruned_by_rule']['random']:.1f}"),
        (
            "smallest kept-feature count within 1 point of unpruned "
            "(median over models; paper: ~25)",
            str(s["smallest_kept_within_1pt"]),
        ),
    ]
    return pd.DataFrame(rows, columns=["quantity", "value"])


def load(run: Run) -> Part | None:
    s = run.json(Analyse.DIR, SUMMARY)
    if s is None:
        return None
    tables = {
        "magnitude": run.need_csv(Analyse.DIR, Analyse.MAGNITUDE),
        "angles": run.need_csv(Analyse.DIR, Analyse.ANGLES),
        "sweep": run.need_csv(Analyse.DIR, Analyse.SWEEP),
        "pruning_baselines": baselines(run.need_csv(Analyse.DIR, Analyse.BASELINES)),
        "analysis_counts": counts(s),
    }
    return Part(tables=tables, facts={"summary": s})


def per_feature(values: np.ndarray, ylabel: str, title: str, path: Path) -> None:
    """Dots per feature with mean and mean ± std lines: the paper's pruning thresholds."""
    m, s = values.mean(), values.std()
    fig, ax = subplots(figsize=(8, 3.2))
    ax.plot(np.arange(len(values)), values, ".", ms=3)
    for y, ls in ((m + s, "--"), (m, "-"), (m - s, "--")):
        ax.axhline(y, color="k", ls=ls, lw=0.8)
    ax.set_xlabel("feature")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (mean = {m:.4g}, std = {s:.2g})")
    save(fig, path)


def fig4_baselines(t: pd.DataFrame, path: Path) -> None:
    fig, ax = subplots(figsize=(5.5, 3.5))
    ax.bar(t["rule"], t["accuracy_mean"], yerr=t["accuracy_std"], capsize=4, color="tab:blue")
    ax.set_ylabel("test accuracy (mean ± std over models)")
    ax.set_ylim(0, 1)
    ax.set_title("Fig. 4: accuracy per pruning baseline")
    save(fig, path)


def fig5_sweep(sw: pd.DataFrame, path: Path) -> None:
    """Full range and the paper's 85-99 % zoom; band = min-max over models."""
    fig, axes = subplots(1, 2, figsize=(10, 3.6))
    for ax, lo in zip(axes, (0.0, 0.85)):
        for order, color in (("random", "tab:blue"), ("magnitude", "tab:red")):
            d = sw[(sw["order"] == order) & (sw["ratio"] >= lo - 1e-9)]
            per_model = d.groupby(["ratio", "member"])["accuracy"].mean().unstack()
            mean = per_model.mean(axis=1)
            ax.plot(mean.index, mean.values, color=color, label=f"{order} order (mean)")
            ax.fill_between(
                mean.index, per_model.min(axis=1), per_model.max(axis=1), color=color, alpha=0.2
            )
        ax.set_xlabel("pruning ratio")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    axes[0].set_title("Fig. 5: accuracy vs pruning ratio (band: min-max over models)")
    axes[1].set_title("zoom 85-99 % (the paper's range)")
    save(fig, path)


def plots(part: Part, out: Path) -> None:
    t = part.tables
    mag = t["magnitude"].drop(columns="feature").to_numpy().mean(1)
    per_feature(mag, "avg magnitude", "Fig. 2: Gedeon contribution per feature", out / FIG2)
    ang = t["angles"].drop(columns="feature").to_numpy().mean(1)
    per_feature(ang, "avg angle (deg)", "Fig. 3: mean angle to other features", out / FIG3)
    fig4_baselines(t["pruning_baselines"], out / FIG4)
    fig5_sweep(t["sweep"], out / FIG5)


def blocks(part: Part) -> list[Block]:
    s = part.facts["summary"]
    angles_kind = "absolute weights" if s["absolute_angles"] else "signed weights"
    return [
        h2("Feature analysis (seed 000, sections 2.3-2.5 and 3.3-3.5)"),
        p(
            f"Per member, on the {s['n_features']} pooled features entering the head; values "
            f"averaged over {s['n_members']} models. Distinctiveness angles use {angles_kind}. "
            "Pruning zeroes features on each model's test split; random pruning draws several "
            "subsets per ratio."
        ),
        table(part.tables["analysis_counts"]),
        img(FIG2, "Fig. 2: average Gedeon magnitude per feature, mean ± std lines"),
        img(FIG3, "Fig. 3: average mean angle per feature"),
        table(part.tables["pruning_baselines"]),
        img(FIG4, "Fig. 4: test accuracy per pruning baseline"),
        img(FIG5, "Fig. 5: test accuracy against pruning ratio (random and least-magnitude-first)"),
    ]
