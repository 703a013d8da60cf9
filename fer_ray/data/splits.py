"""Grouped, stratified splits: no subject or movie ever sits on two sides.

All splits are deterministic functions of (labels, groups, seed), so the same
config gives the same folds on every machine of a cluster.

Three algorithms, chosen by the shape of the groups, all grouped and stratified:

* at most ``SGKF_MAX_GROUPS`` (1000) groups, which covers data sets grouped by subject or
  movie (the default synthetic set has 105 subjects, CK+ 123, JAFFE 10), so their splits are those
  of before: scikit-learn's ``StratifiedGroupKFold``, whose greedy balances class proportions
  best when groups are few and large. Its Python loop over groups costs about 0.15 s per
  split at 1000 groups and grows linearly (30 s at 35,887 one-image groups), hence the cap;
* every group one image (FER2013, RAF-DB: no subject ids): ``StratifiedKFold``, the same
  partition family with groups of one, each class spread within one image per fold;
* many groups of several images: a greedy by per-class counts that deals k groups at a time
  (``_balanced_folds``), about 15 microseconds per round: 0.2 s for 50,000 groups.

Each fold assignment is memoised in the process (keyed by a digest of the inputs), so the
preflight, the dry run, the feature build and every member reuse it; ``split_fingerprint``
names the inputs for a caller that stores the splits itself.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from fer_ray import files
from fer_ray.errors import SplitError, StoredFileError

__all__ = [
    "SGKF_MAX_GROUPS",
    "SplitError",
    "assert_disjoint",
    "clear_split_memo",
    "grouped_folds",
    "grouped_holdout",
    "holdout_and_folds",
    "member_split",
    "split_fingerprint",
]

SGKF_MAX_GROUPS = 1000
_MEMO_SIZE = 16
_MEMO: OrderedDict[str, np.ndarray] = OrderedDict()


def _factorize(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group index per item (in first-seen order: hashing, no sort) and the distinct labels."""
    codes, uniques = pd.factorize(groups, use_na_sentinel=False)
    return codes.astype(np.int64), np.asarray(uniques)


def _check(labels: np.ndarray, n_groups: int, n_items: int, n_splits: int, what: str) -> None:
    if n_groups < n_splits:
        raise SplitError(
            f"{what} needs at least {n_splits} groups (subjects/movies), the data has {n_groups}"
        )
    if len(labels) != n_items:
        raise SplitError(f"{what}: {len(labels)} labels but {n_items} groups")


def _digest(a: np.ndarray) -> bytes:
    """Objects (strings) by pandas' value hashes; fixed-width arrays by their bytes."""
    if a.dtype.kind == "O":
        raw = pd.util.hash_array(a.ravel(), categorize=False).tobytes()
    else:
        raw = np.ascontiguousarray(a).tobytes()
    return hashlib.sha1(f"{a.dtype.str}{a.shape}".encode() + raw).digest()


def split_fingerprint(labels: np.ndarray, groups: np.ndarray, **params: object) -> str:
    """Hex digest of the labels, groups and split parameters: the key under which a caller
    may store splits computed once (equal inputs give equal splits)."""
    h = hashlib.sha1(_digest(np.asarray(labels)) + _digest(np.asarray(groups)))
    h.update(repr(sorted(params.items())).encode())
    return h.hexdigest()


def clear_split_memo() -> None:
    """Forget the memoised fold assignments of this process."""
    _MEMO.clear()


def grouped_folds(labels: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold id (0..k-1) per item: stratified by label, grouped by ``groups``."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    key = split_fingerprint(labels, groups, k=int(k), seed=int(seed), n=len(labels))
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key].copy()
    codes, uniques = _factorize(groups)
    n_groups = len(uniques)
    _check(labels, n_groups, len(groups), k, f"{k}-fold split")
    try:
        if n_groups <= SGKF_MAX_GROUPS:
            folds = _sgkf_folds(labels, groups, k, seed)
        elif n_groups == len(labels):
            folds = _stratified_folds(labels, k, seed)
        else:
            folds = _balanced_folds(labels, codes, n_groups, k, seed)
    except ValueError as e:  # scikit-learn's own checks (e.g. too few items of a class)
        counts = np.bincount(np.unique(labels, return_inverse=True)[1])
        raise SplitError(
            f"{k}-fold split: {e} (smallest class has {counts.min()} items, "
            f"{n_groups} groups); use fewer folds or more data"
        ) from None
    _MEMO[key] = folds
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return folds.copy()


def _sgkf_folds(labels: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    folds = np.full(len(labels), -1, dtype=np.int64)
    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (_, test_idx) in enumerate(sgkf.split(np.zeros(len(labels)), labels, groups)):
        folds[test_idx] = f
    return folds


def _stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """One image per group: plain stratified folds (each class within one image per fold)."""
    folds = np.full(len(labels), -1, dtype=np.int64)
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (_, test_idx) in enumerate(skf.split(np.zeros(len(labels)), labels)):
        folds[test_idx] = f
    return folds


def _balanced_folds(
    labels: np.ndarray, codes: np.ndarray, n_groups: int, k: int, seed: int
) -> np.ndarray:
    """Many groups of several images: a greedy by per-class counts, k groups at a time.

    Groups are taken largest first (ties in a seeded random order), k per round; each round's
    k groups go one to each fold, matched (an exact k x k assignment) so as to minimise the
    squared gap between every fold's class counts and a k-th of the counts dealt so far. The
    gap stays within about one group per class, like scikit-learn's greedy, with one cheap
    step per k groups instead of a scan of all folds per group.
    """
    y = np.unique(labels, return_inverse=True)[1].ravel()
    n_cls = int(y.max()) + 1
    counts = np.bincount(codes * n_cls + y, minlength=n_groups * n_cls)
    counts = np.vstack([counts.reshape(n_groups, n_cls), np.zeros((1, n_cls), np.int64)])
    order = np.random.default_rng(seed).permutation(n_groups)
    order = order[np.argsort(-counts[order].sum(axis=1), kind="stable")]
    rounds = np.concatenate([order, np.full(-n_groups % k, n_groups)]).reshape(-1, k)
    dealt, seen = np.zeros((k, n_cls)), np.zeros(n_cls)
    group_fold = np.empty(n_groups + 1, dtype=np.int64)  # the last row: padding, no items
    for members in rounds:
        n = counts[members]
        seen += n.sum(axis=0)
        # squared gap after the round = const + 2 * sum of n_group . (dealt_fold - seen / k)
        rows, cols = linear_sum_assignment(n @ (dealt - seen / k).T)
        dealt[cols] += n[rows]
        group_fold[members[rows]] = cols
    return group_fold[codes]


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
    _disjoint(*_factorize(np.asarray(groups)), masks)


def _disjoint(codes: np.ndarray, uniques: np.ndarray, masks: tuple[np.ndarray, ...]) -> None:
    """Names the first group (in mask order, then first-seen order) found in an earlier mask."""
    first = np.full(len(uniques), -1, dtype=np.int64)
    for i, m in enumerate(masks):
        present = np.zeros(len(uniques), dtype=bool)
        present[codes[np.asarray(m, dtype=bool)]] = True
        clash = np.flatnonzero(present & (first >= 0) & (first != i))
        if clash.size:
            g = uniques[clash[0]]
            raise SplitError(
                f"group {g.item() if hasattr(g, 'item') else g!r} appears in split "
                f"{first[clash[0]]} and split {i}"
            )
        first[present & (first < 0)] = i


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
    codes, uniques = _factorize(groups)
    if test_split is not None:
        _disjoint(codes, uniques, (~test, test))
    fold_of = np.full(len(labels), -1, dtype=np.int64)
    fold_of[~test] = grouped_folds(labels[~test], groups[~test], folds, seed)
    for f in range(folds):
        _disjoint(codes, uniques, ((fold_of >= 0) & (fold_of != f), fold_of == f, test))
    return test, fold_of


def run_splits(
    manifest: pd.DataFrame, cfg: Any, store: Path | None = None, write: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``holdout_and_folds`` of a prepared manifest under a run's config (``grid.folds``,
    ``seed``, ``ensemble.test_fraction``, ``data.test_split``): the one call the preflight, the
    dry run's estimate and the trial data bundle all make. With ``store`` (a folder) the splits
    are computed once per set of inputs and read back from ``<store>/<fingerprint>.npz`` by
    every later call, in this process or another (a resumed run, a second stage's driver);
    ``write=False`` reads stored splits but stores none (the preflight and the dry run, which
    write nothing)."""
    labels = manifest["label"].to_numpy()
    groups = manifest["group"].astype(str).to_numpy()
    own = manifest["split"].fillna("").to_numpy()
    params = {
        "folds": cfg.grid.folds,
        "seed": cfg.seed,
        "test_fraction": cfg.ensemble.test_fraction,
        "test_split": cfg.data.test_split,
    }
    path = None
    if store is not None:
        key = split_fingerprint(labels, groups, own=_digest(own).hex(), **params)
        path = Path(store) / f"splits_{key[:20]}.npz"
        stored = _read_splits(path, len(labels))
        if stored is not None:
            return stored
    test, folds = holdout_and_folds(labels, groups, own_split=own, **params)
    if path is not None and write:
        files.savez(path, test=test, folds=folds)
    return test, folds


def _read_splits(path: Path, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Stored (test, folds), or None when absent or damaged (then moved aside)."""
    if not path.is_file():
        return None
    try:
        z = files.load_npz(path, ("test", "folds"))
    except StoredFileError as e:
        files.quarantine(e, "stored splits")
        return None
    return (z["test"], z["folds"]) if len(z["test"]) == n else None


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
