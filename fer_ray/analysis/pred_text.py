"""Predicted classes as one short string: a character per item, ``chr(48 + class)``.

Tune's result log keeps every reported value; a trial's predictions on its validation fold
stay compact there as "0312..." (classes 0-9 are the digits; up to 79 classes stay one ASCII
character), and the grid and search stages read them back for the pooled intervals.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

ZERO = 48  # ord("0")
MAX_CLASS = 127 - ZERO  # the last one-byte (ASCII) character


def encode(classes: ArrayLike) -> str:
    """Class indices (0 to 79) → one character per item, in item order."""
    c = np.asarray(classes, dtype=np.int64).ravel()
    if c.size and (c.min() < 0 or c.max() > MAX_CLASS):
        raise ValueError(f"classes must lie in 0..{MAX_CLASS} (got {c.min()}..{c.max()})")
    return "".join(chr(ZERO + int(v)) for v in c)


def decode(text: str) -> np.ndarray:
    """The inverse of ``encode``: int64 class indices."""
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int64) - ZERO
