"""Known label noise, so top-loss cleaning (seed 004 sec. 4.4) can be scored.

Seed 004 cleaned FER2013 by hand from the top-loss gallery and could only report the error
after cleaning (38.47 % -> 30.03 % fine-tuned); it could not say how many of the flagged
images were really mislabelled.  Flipping a known set of training labels first gives the
ground truth that ``fer_ray.analysis.cleaning.flag_quality`` scores the flags against.
Pure numpy.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from fer_ray.errors import ConfigError, DataError

__all__ = ["flip_labels"]


def flip_labels(
    labels: ArrayLike,
    fraction: float,
    n_classes: int,
    seed: int,
    mask: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly ``round(fraction * n_eligible)`` labels to a different, uniform class.

    Only items with ``mask`` True are eligible; ``mask=None`` makes every item eligible.  The
    caller decides which labels stay clean: the synthetic source passes every item outside its
    test holdout, so only the test labels are clean (test accuracy is measured against the
    truth); the grid's folds and each member's validation split are drawn later from the
    noisy pool and carry flipped labels too, as the validation data of a data set with real
    label noise would (seed 004's cleaning drops flagged items from validation as well).
    The flipped items are a uniform sample without replacement of the eligible ones; each gets
    one of the other ``n_classes - 1`` classes with equal probability (symmetric noise).
    ``round`` is Python's (half to even).  Returns (new labels, a copy with the input's
    dtype; bool mask of the flipped items).  Same arguments, same result.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise DataError(f"labels must be 1-D, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"labels must be integer class indices, got dtype {y.dtype}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise ConfigError(f"n_classes must be an int >= 2, got {n_classes!r}")
    if n_classes < 2:
        raise ConfigError(f"n_classes must be >= 2 to flip a label, got {n_classes}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    frac = float(fraction)
    if not 0.0 <= frac <= 1.0:
        raise ConfigError(f"noise fraction must lie in [0, 1], got {fraction}")
    if mask is None:
        eligible = np.arange(y.size)
    else:
        m = np.asarray(mask)
        if m.dtype != np.bool_ or m.shape != y.shape:
            raise DataError(f"mask must be a bool array of shape {y.shape}")
        eligible = np.flatnonzero(m)
    n_flip = round(frac * eligible.size)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(eligible, size=n_flip, replace=False)
    offset = rng.integers(1, n_classes, size=n_flip)  # 1..C-1: never the same class
    new = y.copy()
    new[chosen] = (y[chosen] + offset) % n_classes
    flipped = np.zeros(y.shape, dtype=bool)
    flipped[chosen] = True
    return new, flipped
