"""Grouped, stratified splits: no subject or movie ever sits on two sides.

All splits are deterministic functions of (labels, groups, seed), so the same
config gives the same folds on every machine of a cluster.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold


class SplitError(ValueError):
    """The data cannot be split as asked (too few groups for the folds)."""


def _check(labels: np.ndarray, groups: np.ndarray, n_splits: int, what: str) -> None:
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise SplitError(
            f"{what} needs at least {n_splits} groups (subjects/movies), the data has {n_groups}"
        )
    if len(labels) != len(groups):
        raise SplitError(f"{what}: {len(labels)} labels but {len(groups)} groups")


def grouped_folds(labels: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold id (0..k-1) per item: stratified by label, grouped by ``groups``."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    _check(labels, groups, k, f"{k}-fold split")
    folds = np.full(len(labels), -1, dtype=np.int64)
    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (_, test_idx) in enumerate(sgkf.split(np.zeros(len(labels)), labels, groups)):
        folds[test_idx] = f
    return folds


def grouped_holdout(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """Boolean mask of a held-out part of about ``fraction`` of the items.

    Taken as one fold of a stratified grouped k-fold with k = round(1/fraction),
    so the realised fraction is about 1/k (0.15 → 1/7 ≈ 0.143); the report states
    the realised size.
    """
    if not 0 < fraction < 1:
        raise SplitError(f"holdout fraction must be in (0, 1), got {fraction}")
    k = max(2, round(1 / fraction))
    return grouped_folds(labels, groups, k, seed) == 0


def assert_disjoint(groups: np.ndarray, *masks: np.ndarray) -> None:
    """Raise if any group appears in two of the given item masks."""
    seen: dict[object, int] = {}
    for i, m in enumerate(masks):
        for g in np.unique(np.asarray(groups)[m]):
            if g in seen and seen[g] != i:
                raise SplitError(
                    f"group {g.item() if hasattr(g, 'item') else g!r} appears in split {seen[g]} and split {i}"
                )
            seen[g] = i
