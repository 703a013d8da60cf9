"""Figures of a search over several keys: every setting as one line across its keys (parallel
coordinates), and the objective over the two most important keys (a heat map).

Shared by the grid's section (cells, when ``search.space`` adds keys) and a searcher's section
(proposals). A numeric key spanning more than two decades (a learning rate, a weight decay) is
drawn on a log scale; a categorical one at evenly spaced positions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer_ray.report.figures import save, subplots, text_colour

BINS = 4  # a numeric key with more distinct values is binned by quantiles for the heat map


def _axis(values: pd.Series) -> tuple[np.ndarray, list[str], list[float]]:
    """A key's values on [0, 1], with tick labels and positions."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if not numeric:
        cats = sorted(values.astype(str).unique())
        pos = {c: i / max(1, len(cats) - 1) for i, c in enumerate(cats)}
        return values.astype(str).map(pos).to_numpy(float), cats, list(pos.values())
    x = values.to_numpy(float)
    logged = bool((x > 0).all() and x.max() / x.min() > 100)
    t = np.log10(x) if logged else x
    lo, hi = float(t.min()), float(t.max())
    span = hi - lo or 1.0
    ticks = np.unique(np.quantile(t, [0, 0.5, 1]))
    labels = [f"{10**v if logged else v:.3g}" for v in ticks]
    return (t - lo) / span, labels, [(v - lo) / span for v in ticks]


def parallel(frame: pd.DataFrame, keys: list[str], metric: str, path: Path) -> None:
    """One line per setting across ``keys``, coloured by ``metric`` (best on top)."""
    import matplotlib as mpl

    frame = frame[frame[metric].notna()].sort_values(metric)
    axes = [_axis(frame[k]) for k in keys]
    fig, ax = subplots(figsize=(max(5.0, 1.6 * len(keys) + 1.5), 3.8))
    norm = mpl.colors.Normalize(frame[metric].min(), frame[metric].max())
    cmap = mpl.colormaps["viridis"]
    for i, value in enumerate(frame[metric].to_numpy(float)):
        ax.plot(range(len(keys)), [a[0][i] for a in axes], color=cmap(norm(value)), alpha=0.8)
    for j, (_, labels, ticks) in enumerate(axes):
        ax.axvline(j, color="0.6", lw=0.8)
        for label, t in zip(labels, ticks, strict=True):
            ax.text(j + 0.03, t, label, fontsize=7, va="center")
    ax.set_xticks(range(len(keys)), keys, rotation=15, fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.1, len(keys) - 0.6)
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=metric)
    ax.set_title("Every setting across the searched keys (colour: the objective)")
    save(fig, path)


def _bins(values: pd.Series) -> pd.Series:
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if not numeric or values.nunique() <= BINS:
        return values.map(lambda v: f"{v:.3g}" if isinstance(v, float) else str(v))
    cut = pd.qcut(values, BINS, duplicates="drop")
    return cut.map(lambda iv: f"{iv.left:.3g}–{iv.right:.3g}").astype(str)


def heat(frame: pd.DataFrame, a: str, b: str, metric: str, path: Path) -> None:
    """The mean ``metric`` per value (or quantile bin) of ``a`` x ``b``."""
    frame = frame[frame[metric].notna()]
    t = pd.DataFrame({a: _bins(frame[a]), b: _bins(frame[b]), metric: frame[metric]})
    piv = t.pivot_table(index=a, columns=b, values=metric, aggfunc="mean")
    fig, ax = subplots(figsize=(max(5.0, 1.3 * piv.shape[1] + 2.5), 3.8))
    im = ax.imshow(piv.to_numpy(float), cmap="viridis")
    ax.set_xticks(range(piv.shape[1]), list(piv.columns), fontsize=8, rotation=15)
    ax.set_yticks(range(piv.shape[0]), list(piv.index), fontsize=8)
    ax.set_xlabel(b)
    ax.set_ylabel(a)
    for (i, j), v in np.ndenumerate(piv.to_numpy(float)):
        if v == v:  # black or white, whichever contrasts more with the cell
            colour = text_colour(im.cmap(im.norm(v))[:3])
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=8, color=colour)
    fig.colorbar(im, ax=ax, label=f"mean {metric}")
    ax.set_title(f"The two most important keys: {a} x {b}")
    save(fig, path)


def top_two(importance: pd.DataFrame | None, keys: list[str]) -> tuple[str, str]:
    """The two most important keys (``parameter``/``importance`` rows), else the first two."""
    if importance is not None and len(importance) >= 2:
        ranked = importance.sort_values("importance", ascending=False)["parameter"].tolist()
        return ranked[0], ranked[1]
    return keys[0], keys[1]
