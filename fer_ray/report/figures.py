"""Matplotlib for the report's PNGs: headless (Agg) before pyplot loads, one dpi, no leaks.

Sections draw through ``subplots`` and ``save`` instead of importing pyplot, so no section can
pick an interactive backend on a machine without a display or leave a figure open. A label
drawn on a coloured cell takes ``text_colour`` of that cell, so it stays readable on the
darkest and the lightest cells of any colour map; a legend goes beside the data
(``legend_outside``) or, for a panel with another to its right, under it (``legend_below``),
never over it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 110
#: Line styles and markers to tell curves apart besides their colour (in grey print, for the
#: colour-blind): the n-th curve of a chart takes the n-th of each.
STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``plt.subplots`` on the headless backend."""
    return plt.subplots(*args, **kwargs)


def legend_outside(ax: Any, **kwargs: Any) -> Any:
    """The axes' legend to the right of its plotting area, so that it covers no data
    (``save``'s layout makes room for it)."""
    kwargs.setdefault("fontsize", 8)
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs)


def legend_below(ax: Any, **kwargs: Any) -> Any:
    """The axes' legend under its plotting area (below the x label), for a panel with
    another panel to its right; entries side by side unless ``ncol`` says otherwise."""
    kwargs.setdefault("fontsize", 8)
    kwargs.setdefault("ncol", 2)
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), borderaxespad=0.0, **kwargs)


def close(fig: Any) -> None:
    """Close ``fig`` without writing it (a test that only measures it)."""
    plt.close(fig)


def save(fig: Any, path: Path) -> None:
    """Lay out, write and close ``fig``."""
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def luminance(rgb: Sequence[float]) -> float:
    """WCAG relative luminance of an sRGB colour (components 0-1; alpha ignored)."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: Sequence[float], b: Sequence[float]) -> float:
    """WCAG contrast ratio of two colours, 1 (none) to 21 (black on white)."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_colour(cell: Sequence[float]) -> str:
    """``"black"`` or ``"white"``: whichever contrasts more with a cell of colour ``cell``."""
    black = contrast(cell, (0.0, 0.0, 0.0))
    white = contrast(cell, (1.0, 1.0, 1.0))
    return "black" if black >= white else "white"
