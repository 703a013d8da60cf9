"""Coverage of the report's interval methods, counted where the population is known.

A 95 % interval is only as good as the share of test sets whose interval holds the model's
true accuracy.  With a generator as the population that share can be counted: score fixed
models on a large pool of fresh subjects, cut the pool into disjoint test sets of ``k``
subjects (the report's size), compute each interval the report prints (the members' mean
accuracy, the soft vote's accuracy, and the paired difference vote - member mean) on each
test set, and count how often it holds the value on a separate, much larger sample.

Pure numpy/pandas: the caller renders the images and scores the models
(``benchmarks/bench_coverage.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fer_ray.analysis.intervals import METHODS, mean_interval
from fer_ray.errors import DataError

__all__ = ["BOUNDS", "QUANTITIES", "coverage_table", "quantities", "subject_blocks", "truth"]

#: What the report gives an interval for: the members' mean accuracy, the soft vote's
#: accuracy, and the vote paired against the members' mean on the same images.
QUANTITIES: tuple[str, ...] = ("member_mean", "vote", "vote_minus_member_mean")
#: The range each quantity lives in (intervals are clipped to it, as the report's are).
BOUNDS: dict[str, tuple[float, float]] = {
    "member_mean": (0.0, 1.0),
    "vote": (0.0, 1.0),
    "vote_minus_member_mean": (-1.0, 1.0),
}


def quantities(member_correct: np.ndarray, vote_correct: np.ndarray) -> dict[str, np.ndarray]:
    """Per-item values whose pooled means are the three quantities.

    ``member_correct``: (members, items) 0/1; ``vote_correct``: (items,) 0/1.  The members'
    mean accuracy is the pooled mean of each item's share of members right, so its interval
    keeps the pairing image by image (the report computes it the same way).
    """
    m = np.asarray(member_correct, dtype=np.float64)
    v = np.asarray(vote_correct, dtype=np.float64)
    if m.ndim != 2 or v.ndim != 1 or m.shape[1] != v.shape[0]:
        raise DataError(
            f"member_correct must be (members, items) and vote_correct (items,), "
            f"got {m.shape} and {v.shape}"
        )
    frac = m.mean(axis=0)
    return {"member_mean": frac, "vote": v, "vote_minus_member_mean": v - frac}


def truth(member_correct: np.ndarray, vote_correct: np.ndarray) -> dict[str, float]:
    """The three quantities on a (large) sample: the values the intervals should hold."""
    return {k: float(v.mean()) for k, v in quantities(member_correct, vote_correct).items()}


def subject_blocks(subjects: np.ndarray, k: int, max_draws: int | None = None) -> list[np.ndarray]:
    """Disjoint test sets of ``k`` subjects each: item indices, subjects in sorted order.

    Disjoint blocks of one pool are independent draws from the population, and every
    image is rendered once for all methods and quantities.
    """
    subjects = np.asarray(subjects)
    if k < 1:
        raise DataError(f"a test set needs at least one subject, got k={k}")
    order = np.argsort(subjects, kind="stable")
    uniq, starts = np.unique(subjects[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    n = len(uniq) // k if max_draws is None else min(len(uniq) // k, max_draws)
    return [order[starts[d * k] : ends[d * k + k - 1]] for d in range(n)]


def coverage_table(
    member_correct: np.ndarray,
    vote_correct: np.ndarray,
    subjects: np.ndarray,
    true_values: dict[str, float],
    sizes: Sequence[int],
    *,
    methods: Sequence[str] = METHODS,
    level: float = 0.95,
    n_boot: int = 2000,
    max_draws: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (method, quantity, subjects): draws, covered, coverage, its Monte-Carlo
    error ``sqrt(c (1 - c) / draws)``, misses on each side, and the mean width.

    Draw ``d`` bootstraps with ``seed + d``, so the bootstrap methods share their resamples
    and every method sees the same test sets.
    """
    values = quantities(member_correct, vote_correct)
    rows = []
    for k in sizes:
        blocks = subject_blocks(subjects, int(k), max_draws)
        if not blocks:
            raise DataError(f"the pool holds fewer than {k} subjects: no test set of that size")
        for method in methods:
            for q in QUANTITIES:
                ivs = [
                    mean_interval(values[q][idx], subjects[idx], n_boot=n_boot, level=level,
                                  seed=seed + d, method=method, bounds=BOUNDS[q])
                    for d, idx in enumerate(blocks)
                ]  # fmt: skip
                rows.append(_row(method, q, int(k), ivs, true_values[q]))
    return pd.DataFrame(rows)


def _row(method: str, quantity: str, k: int, ivs: list, true_value: float) -> dict:
    low = np.array([iv.low for iv in ivs])
    high = np.array([iv.high for iv in ivs])
    n = len(ivs)
    covered = int(np.count_nonzero((low <= true_value) & (true_value <= high)))
    c = covered / n
    return {
        "method": method,
        "quantity": quantity,
        "subjects": k,
        "draws": n,
        "covered": covered,
        "coverage": c,
        "mc_error": float(np.sqrt(c * (1.0 - c) / n)),
        "miss_low": int(np.count_nonzero(high < true_value)),
        "miss_high": int(np.count_nonzero(low > true_value)),
        "mean_width": float(np.mean(high - low)),
        "truth": float(true_value),
    }
