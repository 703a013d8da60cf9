"""Matplotlib for the report's PNGs: headless (Agg) before pyplot loads, one dpi, no leaks.

Sections draw through ``subplots`` and ``save`` instead of importing pyplot, so no section can
pick an interactive backend on a machine without a display or leave a figure open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 110


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``plt.subplots`` on the headless backend."""
    return plt.subplots(*args, **kwargs)


def save(fig: Any, path: Path) -> None:
    """Lay out, write and close ``fig``."""
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
