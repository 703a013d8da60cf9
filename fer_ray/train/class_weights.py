"""Per-class loss weights against class imbalance (seed 004 sec. 4.3).

``balanced_class_weights`` is scikit-learn's "balanced" rule, ``n / (C * n_c)``: every class
then carries the same total weight.  Seed 004 did NOT use it: its weights were picked by
hand "after many experiments" (Table 1, column "Corresponding %"), kept here as
``SEED004_WEIGHTS``; ``named_class_weights`` orders them for a class list.  With PyTorch's
weighted ``cross_entropy`` (mean reduction divides by the batch's summed weights) only the
ratios between weights matter, so percentages and balanced weights are used as they are.
Pure numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from fer_ray.errors import ConfigError, DataError

__all__ = ["SEED004_WEIGHTS", "balanced_class_weights", "named_class_weights"]

# Seed 004, Table 1 ("Corresponding %"), FER2013 without disgust; hand-tuned, not balanced:
# fear (4098 training images) gets 3x angry (3996), happy (7216) gets half of angry.
SEED004_WEIGHTS: dict[str, float] = {
    "angry": 0.10,
    "fear": 0.30,
    "happy": 0.05,
    "neutral": 0.15,
    "sad": 0.20,
    "surprise": 0.20,
}


def balanced_class_weights(labels: ArrayLike, n_classes: int) -> np.ndarray:
    """``w_c = N / (n_classes * n_c)`` (scikit-learn's "balanced"), float64 of shape (C,).

    The mean weight over the training items is exactly 1, so the loss scale is kept.  A
    class with no items would get an infinite weight and raises instead.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise DataError(f"labels must be a non-empty 1-D array, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"labels must be integer class indices, got dtype {y.dtype}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise ConfigError(f"n_classes must be an int >= 1, got {n_classes!r}")
    if n_classes < 1:
        raise ConfigError(f"n_classes must be >= 1, got {n_classes}")
    if y.min() < 0 or y.max() >= n_classes:
        raise DataError(f"labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    counts = np.bincount(y, minlength=n_classes)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise DataError(
            f"balanced class weights need every class in the labels; missing {missing.tolist()}"
        )
    return y.size / (n_classes * counts.astype(np.float64))


def named_class_weights(
    class_names: Sequence[str], weights: Mapping[str, float] = SEED004_WEIGHTS
) -> np.ndarray:
    """``weights`` in the order of ``class_names`` (names matched case-insensitively)."""
    table = {str(k).lower(): float(v) for k, v in weights.items()}
    missing = [c for c in class_names if str(c).lower() not in table]
    if missing:
        raise DataError(f"no class weight for {missing}; weights are given for {sorted(table)}")
    out = np.array([table[str(c).lower()] for c in class_names], dtype=np.float64)
    if not np.all(np.isfinite(out)) or (out <= 0).any():
        raise ConfigError(f"class weights must be finite and > 0, got {out.tolist()}")
    return out
