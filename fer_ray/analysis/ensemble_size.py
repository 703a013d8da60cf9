"""How the soft-vote ensemble improves with its size: accuracy, NLL and ECE against k.

The paper trains 15 models; whether 15 is needed, or 5 give the same vote, is answered by
the curve of the soft vote of k members (k = 1..M).  The first k members of a uniformly
random ordering are a uniformly random k-subset, so each point is the mean (and spread) of a
metric over random k-member ensembles.  Pure numpy/pandas.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from fer_ray.errors import ConfigError, DataError

__all__ = ["ensemble_size_curve", "expected_calibration_error", "negative_log_likelihood"]

_SUM_TOL = 1e-3  # softmax rows stored as float16/float32 still sum to 1 within this
_CHUNK = 4_000_000  # float64 elements per batch of stacked ensemble members (32 MB)


def _labels(labels: ArrayLike, n_items: int, n_classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n_items:
        raise DataError(f"labels must be 1-D with {n_items} entries, got shape {y.shape}")
    whole = np.issubdtype(y.dtype, np.integer) or (
        np.issubdtype(y.dtype, np.floating) and bool(np.all(y == np.round(y)))
    )
    if not whole:
        raise DataError(f"labels must be integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    return y


def _probs(probs: ArrayLike, ndim: int) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    shape = "(N, C)" if ndim == 2 else "(M members, N items, C classes)"
    if p.ndim != ndim:
        raise DataError(f"probs must be {shape}, got shape {p.shape}")
    if min(p.shape) == 0:
        raise DataError(f"probs is empty: shape {p.shape}")
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
        raise DataError("probs must be finite probabilities in [0, 1] (softmax outputs)")
    dev = float(np.abs(p.sum(axis=-1) - 1.0).max())
    if dev > _SUM_TOL:
        raise DataError(f"probs rows must sum to 1 (off by up to {dev:.3g}); logits given?")
    return p


def _check_bins(n_bins: int) -> None:
    if int(n_bins) != n_bins or n_bins < 1:
        raise ConfigError(f"n_bins must be a positive integer, got {n_bins}")


def _batch_metrics(
    votes: np.ndarray, y: np.ndarray, n_bins: int, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accuracy, NLL and ECE of each of S prediction sets ``votes`` (S, N, C)."""
    n_sets, n_items, _ = votes.shape
    pred = votes.argmax(axis=2)
    correct = (pred == y).astype(np.float64)
    acc = correct.mean(axis=1)
    p_true = np.take_along_axis(votes, y[None, :, None], axis=2)[:, :, 0]
    nll = -np.log(np.maximum(p_true, eps)).mean(axis=1)
    conf = votes.max(axis=2)
    # bin m holds conf in (m/n_bins, (m+1)/n_bins]; the first bin also holds 0
    inner = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    flat = (np.searchsorted(inner, conf, side="left") + n_bins * np.arange(n_sets)[:, None]).ravel()
    size = n_sets * n_bins
    gap = np.bincount(flat, weights=(correct - conf).ravel(), minlength=size)
    # sum_m |B_m|/N * |acc_m - conf_m| = sum_m |sum_{B_m}(correct - conf)| / N
    ece = np.abs(gap.reshape(n_sets, n_bins)).sum(axis=1) / n_items
    return acc, nll, ece


def negative_log_likelihood(probs: ArrayLike, labels: ArrayLike, eps: float = 1e-12) -> float:
    """Mean -log p(true class); ``eps`` floors p so one confident mistake stays finite."""
    p = _probs(probs, 2)
    y = _labels(labels, p.shape[0], p.shape[1])
    return float(_batch_metrics(p[None], y, 1, eps)[1][0])


def expected_calibration_error(probs: ArrayLike, labels: ArrayLike, n_bins: int = 15) -> float:
    """ECE: confidence-weighted gap between accuracy and max probability (Guo et al. 2017).

    Equal-width bins ``(m/n_bins, (m+1)/n_bins]`` on the max probability; each bin's
    ``|accuracy - mean confidence|`` is weighted by its share of items.
    """
    _check_bins(n_bins)
    p = _probs(probs, 2)
    y = _labels(labels, p.shape[0], p.shape[1])
    return float(_batch_metrics(p[None], y, int(n_bins), 1e-12)[2][0])


def _subsets(n_members: int, k: int, perms: np.ndarray) -> tuple[np.ndarray, bool]:
    """The k-member ensembles scored at size k (sorted member indices) and if all are."""
    if comb(n_members, k) <= perms.shape[0]:
        return np.array(list(combinations(range(n_members), k)), dtype=np.int64), True
    return np.sort(perms[:, :k], axis=1), False


def ensemble_size_curve(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    n_orderings: int = 50,
    seed: int = 0,
    n_bins: int = 15,
) -> pd.DataFrame:
    """Soft-vote accuracy, NLL and ECE against ensemble size k = 1..M, mean and spread.

    ``probs`` is (M, N, C): each member's softmax on the same N items.  At each k, if the
    C(M, k) distinct k-subsets number at most ``n_orderings`` they are all scored
    (``exhaustive``: the exact mean over random orderings, never costlier than sampling;
    always true at k = 1 and k = M, so the ends are exact); otherwise the k-prefixes of
    ``n_orderings`` random orderings (one shared set, drawn from ``seed``) are scored.
    ``n_orderings >= C(M, M // 2)`` makes every row exact (6435 for M = 15).  The ``*_std``
    columns are the spread across k-member ensembles: population std (ddof=0) over all
    subsets when exhaustive, sample std (ddof=1) over the orderings otherwise.
    """
    if int(n_orderings) != n_orderings or n_orderings < 1:
        raise ConfigError(f"n_orderings must be a positive integer, got {n_orderings}")
    _check_bins(n_bins)
    p = _probs(probs, 3)
    n_members, n_items, n_classes = p.shape
    y = _labels(labels, n_items, n_classes)
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.tile(np.arange(n_members), (int(n_orderings), 1)), axis=1)

    rows = []
    for k in range(1, n_members + 1):
        subsets, exhaustive = _subsets(n_members, k, perms)
        step = max(1, _CHUNK // (k * n_items * n_classes))
        parts = [
            _batch_metrics(p[subsets[i : i + step]].mean(axis=1), y, int(n_bins), 1e-12)
            for i in range(0, subsets.shape[0], step)
        ]
        acc, nll, ece = (np.concatenate(m) for m in zip(*parts))
        ddof = 0 if exhaustive or acc.size == 1 else 1
        rows.append(
            {
                "k": k,
                "accuracy": acc.mean(),
                "accuracy_std": acc.std(ddof=ddof),
                "nll": nll.mean(),
                "nll_std": nll.std(ddof=ddof),
                "ece": ece.mean(),
                "ece_std": ece.std(ddof=ddof),
                "n_ensembles": int(subsets.shape[0]),
                "exhaustive": exhaustive,
            }
        )
    return pd.DataFrame(rows)
