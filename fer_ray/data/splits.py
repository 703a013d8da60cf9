"""Grouped, stratified splits: no subject or movie ever sits on two sides.

All splits are deterministic functions of (labels, groups, seed), so the same
config gives the same folds on every machine of a cluster.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from fer_ray.errors import SplitError

__all__ = [
    "SplitError",
    "assert_disjoint",
    "grouped_folds",
    "grouped_holdout",
    "holdout_and_folds",
    "member_split",
]


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
    try:
        for f, (_, test_idx) in enumerate(sgkf.split(np.zeros(len(labels)), labels, groups)):
            folds[test_idx] = f
    except ValueError as e:  # scikit-learn's own checks (e.g. too few items of a class)
        counts = np.bincount(np.unique(labels, return_inverse=True)[1])
        raise SplitError(
            f"{k}-fold split: {e} (smallest class has {counts.min()} items, "
            f"{len(np.unique(groups))} groups); use fewer folds or more data"
        ) from None
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


def holdout_and_folds(
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    folds: int,
    seed: int,
    test_fraction: float,
    test_split: str | None = None,
    own_split: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The shared test holdout and the grid folds of the rest, all grouped.

    With ``test_split`` the data set's own split (``own_split``) is the holdout; otherwise
    one grouped, stratified fold of about ``test_fraction``. Returns (test mask, fold id per
    item with -1 on test items).
    """
    labels, groups = np.asarray(labels), np.asarray(groups)
    if test_split is None:
        test = grouped_holdout(labels, groups, test_fraction, seed)
    else:
        own = np.asarray(own_split if own_split is not None else [], dtype=object).astype(str)
        test = own == test_split
        if not test.any() or test.all():
            found = sorted(set(own.tolist()))
            raise SplitError(
                f"data.test_split={test_split!r} must name a part of the data set's own split,"
                f" not all of it; this data set's split values are {found}"
            )
        assert_disjoint(groups, ~test, test)
    fold_of = np.full(len(labels), -1, dtype=np.int64)
    fold_of[~test] = grouped_folds(labels[~test], groups[~test], folds, seed)
    for f in range(folds):
        assert_disjoint(groups, (fold_of >= 0) & (fold_of != f), fold_of == f, test)
    return test, fold_of


def member_split(
    labels: np.ndarray, groups: np.ndarray, test: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train/val masks of one ensemble member: grouped, drawn from its own seed, never
    touching the shared test holdout."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    rest = ~test
    val = np.zeros_like(rest)
    val[rest] = grouped_holdout(labels[rest], groups[rest], val_fraction, seed)
    train = rest & ~val
    assert_disjoint(groups, train, val, test)
    return train, val
