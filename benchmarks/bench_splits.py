"""Grouped splits and the bootstrap at 10k / 35k / 100k images: before and after they scaled.

Usage (from the repository root): ``python benchmarks/bench_splits.py [--quick]``.

Splits: ``holdout_and_folds`` (a 1/7 holdout, then 5 folds of the rest, every split checked
for a group on two sides) on fake labels (FER2013's class shares) with one group per image
(FER2013, RAF-DB) and with about 20 images per group. "old" is the algorithm before (scikit-
learn's StratifiedGroupKFold for every shape and a Python loop over groups per check), kept
here; "new" is ``fer_ray.data.splits`` with its memo cleared, so both compute from scratch.
Each line also gives the worst gap between a fold's class share and the data's (percentage
points) and whether the two algorithms give the same splits (they must, up to 1000 groups).

Bootstrap: ``_resampled_means`` for 2000 resamples of N one-image groups, all draws at once
(old, kept here) against blocks of draws (new): wall seconds, peak traced memory and whether
the resampled accuracies are identical. ``--quick`` (under a minute): 10k images, and 35k
with groups of 20, only. Timings are one run each, in the same process, one after the other.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

try:
    from fer_ray.analysis import intervals
    from fer_ray.data import splits
except ImportError:  # running as a script without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fer_ray.analysis import intervals
    from fer_ray.data import splits

SHARES = [0.25, 0.04, 0.14, 0.25, 0.17, 0.11, 0.04]  # FER2013's seven classes


def old_folds(labels: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    folds = np.full(len(labels), -1, dtype=np.int64)
    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (_, idx) in enumerate(sgkf.split(np.zeros(len(labels)), labels, groups)):
        folds[idx] = f
    return folds


def old_disjoint(groups: np.ndarray, *masks: np.ndarray) -> None:
    seen: dict[object, int] = {}
    for i, m in enumerate(masks):
        for g in np.unique(groups[m]):
            if g in seen and seen[g] != i:
                raise AssertionError(f"group {g} in split {seen[g]} and {i}")
            seen[g] = i


def old_holdout_and_folds(labels, groups, folds=5, seed=0):
    test = old_folds(labels, groups, 7, seed) == 0
    fold_of = np.full(len(labels), -1, dtype=np.int64)
    fold_of[~test] = old_folds(labels[~test], groups[~test], folds, seed)
    for f in range(folds):
        old_disjoint(groups, (fold_of >= 0) & (fold_of != f), fold_of == f, test)
    return test, fold_of


def fake(n: int, per_group: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.choice(7, n, p=SHARES)
    groups = rng.permutation(np.arange(n) // per_group)
    return labels, np.array([f"g{g}" for g in groups], dtype=object)


def worst_gap(labels: np.ndarray, test: np.ndarray, fold_of: np.ndarray) -> float:
    """Largest |class share in a part - class share overall|, in percentage points."""
    overall = np.bincount(labels, minlength=7) / len(labels)
    parts = [test] + [fold_of == f for f in range(fold_of.max() + 1)]
    return 100 * max(
        np.abs(np.bincount(labels[p], minlength=7) / p.sum() - overall).max() for p in parts
    )


def bench_splits(sizes: list[tuple[int, int]]) -> None:
    print(f"{'images':>7} {'per group':>9} {'groups':>7} {'old s':>8} {'new s':>7} "
          f"{'ratio':>7} {'old gap pp':>10} {'new gap pp':>10}  same")  # fmt: skip
    for n, per in sizes:
        labels, groups = fake(n, per)
        t0 = time.perf_counter()
        old = old_holdout_and_folds(labels, groups)
        t_old = time.perf_counter() - t0
        splits.clear_split_memo()
        t0 = time.perf_counter()
        new = splits.holdout_and_folds(labels, groups, folds=5, seed=0, test_fraction=0.15)
        t_new = time.perf_counter() - t0
        same = all(np.array_equal(a, b) for a, b in zip(old, new, strict=True))
        print(f"{n:>7} {per:>9} {len(set(groups)):>7} {t_old:>8.2f} {t_new:>7.3f} "
              f"{t_old / t_new:>6.0f}x {worst_gap(labels, *old):>10.3f} "
              f"{worst_gap(labels, *new):>10.3f}  {'yes' if same else 'no'}")  # fmt: skip


def old_resampled_means(sums, counts, n_boot, seed):
    n_units = counts.shape[0]
    idx = np.random.default_rng(seed).integers(0, n_units, size=(n_boot, n_units))
    mult = np.bincount(
        (idx + n_units * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n_units
    ).reshape(n_boot, n_units)
    mult = mult.astype(np.float64)
    return (mult @ sums.T).T / (mult @ counts)


def _traced(fn, *args):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out = fn(*args)
        return out, time.perf_counter() - t0, tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def bench_bootstrap(sizes: list[int]) -> None:
    print(f"{'images':>7} {'old s':>7} {'new s':>7} {'ratio':>6} {'old MB':>7} {'new MB':>7}  "
          f"identical")  # fmt: skip
    for n in sizes:
        correct = (np.random.default_rng(1).random(n) < 0.7).astype(np.float64)
        args = (correct[None, :], np.ones(n), 2000, 0)
        old, t_old, m_old = _traced(old_resampled_means, *args)
        new, t_new, m_new = _traced(intervals._resampled_means, *args)
        print(f"{n:>7} {t_old:>7.2f} {t_new:>7.2f} {t_old / t_new:>5.1f}x {m_old:>7.0f} "
              f"{m_new:>7.0f}  {'yes' if np.array_equal(old, new) else 'no'}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="10k images (35k with groups of 20)")
    a = p.parse_args(argv)
    if a.quick:
        sizes, boots = [(10_000, 1), (10_000, 20), (35_000, 20)], [10_000]
    else:
        sizes = [(n, per) for n in (10_000, 35_000, 100_000) for per in (1, 20)]
        boots = [10_000, 35_000, 100_000]
    la = os.getloadavg()
    print(f"# bench_splits {'--quick ' if a.quick else ''}· load {la[0]:.2f} on "
          f"{os.cpu_count()} cores")  # fmt: skip
    print("## holdout_and_folds (1/7 holdout + 5 folds), fresh, old vs new")
    bench_splits(sizes)
    print("## bootstrap: 2000 resamples of one-image groups, old (all at once) vs new (blocks)")
    bench_bootstrap(boots)


if __name__ == "__main__":
    main()
