"""Seed 000's Figs. 2-3: Gedeon contribution and distinctiveness angles, per feature.

Each count is printed next to the paper's value, so a reader sees at once how far the
reproduction lands from it. Pruning (Figs. 4-5) is the next section, ``pruning``.
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


def n_outputs(magnitude: pd.DataFrame) -> int:
    """Classes C of the head, read off the stored magnitudes: each model's Gedeon
    contributions sum to its number of outputs (eq. 2 normalises per hidden unit and output)."""
    return int(round(float(magnitude.drop(columns="feature").sum(axis=0).mean())))


def counts(s: dict[str, Any], outputs: int) -> pd.DataFrame:
    """The analysis summary's counts, each labelled with the paper's value. The mean magnitude
    is C / F by construction, so its row says so instead of offering it as a reproduction."""
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
            "avg magnitude mean (paper: 0.0137): fixed by construction, not a reproduction",
            f"{s['magnitude_mean']:.4f} = {outputs} output{'s' * (outputs != 1)} / {n} "
            "features (the paper's "
            "7 / 512 = 0.0137): each model's contributions sum to its outputs",
        ),
        ("avg magnitude std (paper: 0.0003)", f"{s['magnitude_std']:.4f}"),
        (
            "avg angle mean / std, deg (paper: 46.27 / 0.41)",
            f"{s['angle_mean']:.2f} / {s['angle_std']:.2f}",
        ),
        (
            "min / max pairwise angle, deg (paper: 40.80 / 51.14)",
            f"{s['angle_min_pair']:.2f} / {s['angle_max_pair']:.2f}",
        ),
    ]
    return pd.DataFrame(rows, columns=["quantity", "value"])


def load(run: Run) -> Part | None:
    s = run.json(Analyse.DIR, SUMMARY)
    if s is None:
        return None
    magnitude = run.need_csv(Analyse.DIR, Analyse.MAGNITUDE)
    tables = {
        "magnitude": magnitude,
        "angles": run.need_csv(Analyse.DIR, Analyse.ANGLES),
        "analysis_counts": counts(s, n_outputs(magnitude)),
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


def plots(part: Part, out: Path) -> None:
    t = part.tables
    mag = t["magnitude"].drop(columns="feature").to_numpy().mean(1)
    per_feature(mag, "avg magnitude", "Fig. 2: Gedeon contribution per feature", out / FIG2)
    ang = t["angles"].drop(columns="feature").to_numpy().mean(1)
    per_feature(ang, "avg angle (deg)", "Fig. 3: mean angle to other features", out / FIG3)


def blocks(part: Part) -> list[Block]:
    s = part.facts["summary"]
    angles_kind = (
        "absolute weights (a departure: the paper's eq. 3 takes the signed weights)"
        if s["absolute_angles"]
        else "signed weights, as the paper's eq. 3"
    )
    return [
        h2("Feature analysis (seed 000, sections 2.3-2.4 and 3.3-3.4)"),
        p(
            f"Per member, on the {s['n_features']} pooled features entering the head; values "
            f"averaged over {s['n_members']} models. Distinctiveness angles use {angles_kind}."
        ),
        table(part.tables["analysis_counts"]),
        img(FIG2, "Fig. 2: average Gedeon magnitude per feature, mean ± std lines"),
        img(FIG3, "Fig. 3: average mean angle per feature"),
    ]
