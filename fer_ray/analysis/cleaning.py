"""Top-loss flagging (seed 004 sec. 4.4, Fig. 3 and 5), scored against known label noise.

Seed 004 plotted the images with the largest loss, saw many wrong labels, moved those to
their right class folder and deleted "deviation figures", by hand.  Here the flagging is a
rule (the k or fraction largest losses) so it can be run at scale, and ``flag_quality``
scores it against labels flipped on purpose (``fer_ray.data.noise.flip_labels``).

The losses should be out-of-fold (each item scored by a model that did not train on it):
a network that has memorised a wrong label gives it a small loss, which hides it.  Getting
such losses needs training, so it lives with the stages; this module is pure numpy/pandas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from fer_ray.errors import ConfigError, DataError

__all__ = [
    "GALLERY_COLUMNS",
    "cross_entropy_losses",
    "flag_quality",
    "flag_top_losses",
    "top_loss_table",
    "top_losses",
]

GALLERY_COLUMNS = [
    "rank",
    "index",
    "true",
    "true_name",
    "predicted",
    "predicted_name",
    "loss",
    "p_true",
    "p_predicted",
    "title",
]


def _losses(losses: ArrayLike) -> np.ndarray:
    arr = np.asarray(losses, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"losses must be 1-D (one per item), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DataError("losses must be finite (no NaN/inf)")
    return arr


def _count(k: int, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ConfigError(f"{what} must be an int >= 0, got {k!r}")
    return int(k)


def top_losses(losses: ArrayLike, k: int | None = None) -> np.ndarray:
    """Indices of the ``k`` largest losses, largest first (``None``: all items).

    Equal losses keep index order (lower index first), so the result does not depend on
    the sort algorithm.  ``k`` larger than the number of items returns them all.
    """
    arr = _losses(losses)
    order = np.argsort(-arr, kind="stable")
    return order if k is None else order[: _count(k, "k")]


def flag_top_losses(
    losses: ArrayLike, *, fraction: float | None = None, k: int | None = None
) -> np.ndarray:
    """Bool mask of the items to flag: the ``k`` largest losses, or ``round(fraction * N)``.

    Give exactly one of ``fraction`` and ``k``; ties at the cut follow ``top_losses``.
    """
    arr = _losses(losses)
    if (fraction is None) == (k is None):
        raise ConfigError("give exactly one of fraction and k to flag_top_losses")
    if fraction is not None:
        if not 0.0 <= float(fraction) <= 1.0:
            raise ConfigError(f"flag fraction must lie in [0, 1], got {fraction}")
        k = round(float(fraction) * arr.size)
    flagged = np.zeros(arr.size, dtype=bool)
    flagged[top_losses(arr, k)] = True
    return flagged


def flag_quality(flagged: ArrayLike, truly_flipped: ArrayLike) -> dict[str, float | int]:
    """How well the flags find the flipped labels.

    precision = TP / n_flagged, recall = TP / n_flipped, f1 their harmonic mean; a ratio
    with a zero denominator is 0 (scikit-learn's ``zero_division=0``).  ``base_rate`` =
    n_flipped / n is the precision of flagging at random, the bar top losses must clear.
    """
    f = np.asarray(flagged)
    t = np.asarray(truly_flipped)
    if f.dtype != np.bool_ or t.dtype != np.bool_:
        raise DataError("flagged and truly_flipped must be bool masks")
    if f.shape != t.shape or f.ndim != 1:
        raise DataError(f"flagged {f.shape} and truly_flipped {t.shape} must be equal 1-D shapes")
    tp = int(np.count_nonzero(f & t))
    n_flagged, n_flipped = int(f.sum()), int(t.sum())
    precision = tp / n_flagged if n_flagged else 0.0
    recall = tp / n_flipped if n_flipped else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_flagged": n_flagged,
        "n_flipped": n_flipped,
        "n_true_positive": tp,
        "base_rate": n_flipped / f.size if f.size else 0.0,
    }


def _probs_labels(probs: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2:
        raise DataError(f"probs must be 2-D (N, C), got shape {p.shape}")
    if y.ndim != 1 or y.shape[0] != p.shape[0]:
        raise DataError(f"labels must be 1-D with {p.shape[0]} entries, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"labels must be integer class indices, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise DataError(f"labels must lie in 0..{p.shape[1] - 1}")
    if not np.all(np.isfinite(p)) or (p < 0).any():
        raise DataError("probs must be finite and non-negative")
    return p, y.astype(np.int64)


def cross_entropy_losses(probs: ArrayLike, labels: ArrayLike, eps: float = 1e-12) -> np.ndarray:
    """Per-item ``-log p[label]`` (probabilities clipped at ``eps``, as ``loop.evaluate``)."""
    p, y = _probs_labels(probs, labels)
    return -np.log(p[np.arange(y.size), y] + eps)


def top_loss_table(
    probs: ArrayLike,
    labels: ArrayLike,
    k: int,
    class_names: Sequence[str],
    *,
    losses: ArrayLike | None = None,
    index: ArrayLike | None = None,
    flipped: ArrayLike | None = None,
) -> pd.DataFrame:
    """The top-loss gallery (seed 004 Fig. 3 and 5): the ``k`` items with the largest loss.

    Seed 004 (fastai's ``plot_top_losses``) titles each image
    "prediction/actual/loss/probability", the probability being that of the ACTUAL
    (labelled) class; ``title`` reproduces it and ``p_predicted`` is added.  Columns:
    rank (1 = largest loss), index (``index[i]``, default the row number), true,
    true_name, predicted (argmax, ties: lowest class), predicted_name, loss, p_true,
    p_predicted, title, and ``flipped`` when a known-noise mask is given.  ``losses``
    default to ``cross_entropy_losses``; pass the training loss (e.g. class-weighted)
    to rank by it instead.  Seed 004's Fig. 5 shows the top 20 of its validation set.
    """
    p, y = _probs_labels(probs, labels)
    names = [str(c) for c in class_names]
    if len(names) != p.shape[1]:
        raise DataError(f"expected {p.shape[1]} class names, got {len(names)}")
    loss = cross_entropy_losses(p, y) if losses is None else _losses(losses)
    if loss.shape != y.shape:
        raise DataError(f"losses must have {y.size} entries, got {loss.size}")
    ids = np.arange(y.size) if index is None else np.asarray(index)
    if ids.shape != y.shape:
        raise DataError(f"index must have {y.size} entries, got shape {ids.shape}")
    rows = top_losses(loss, k)
    pred = p.argmax(axis=1)
    out = pd.DataFrame(
        {
            "rank": np.arange(1, rows.size + 1),
            "index": ids[rows],
            "true": y[rows],
            "true_name": [names[c] for c in y[rows]],
            "predicted": pred[rows],
            "predicted_name": [names[c] for c in pred[rows]],
            "loss": loss[rows],
            "p_true": p[rows, y[rows]],
            "p_predicted": p[rows, pred[rows]],
        }
    )
    out["title"] = [
        f"{r.predicted_name}/{r.true_name} / {r.loss:.2f} / {r.p_true:.2f}"
        for r in out.itertuples()
    ]
    if flipped is not None:
        fl = np.asarray(flipped)
        if fl.dtype != np.bool_ or fl.shape != y.shape:
            raise DataError(f"flipped must be a bool mask of shape {y.shape}")
        out["flipped"] = fl[rows]
    return out
