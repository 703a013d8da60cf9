"""Uncertainty of test-set accuracies: cluster intervals over groups, and paired tests.

The default test split holds few subjects.  Images of one subject are not independent (same
face, lighting, annotator habits), so every interval here treats *groups* (subjects) as the
unit, never images.  Three methods (``METHODS``), all over groups:

* ``"t"`` (the default, ``DEFAULT_METHOD``): the cluster t-interval.  The pooled mean is a
  ratio of group sums to group sizes; its standard error is the linearised (CR1) one,
  ``sqrt(G/(G-1) * sum_g (S_g - est * n_g)**2) / N`` (with equal group sizes: the standard
  deviation of the group means over ``sqrt(G)``), and the bounds are ``est -/+ t * se`` with
  Student's t quantile at ``G - 1`` degrees of freedom.  Measured against the synthetic
  population (benchmarks/bench_coverage.py, docs/statistics.md) it covers close to 95 % at 5
  and 15 subjects, where the bootstrap methods under-cover.
* ``"percentile"``: the percentile cluster bootstrap (groups resampled with replacement,
  items of the drawn groups pooled).  Its variance is ``(G-1)/G`` of the usual estimate and
  only ``C(2G-1, G)`` distinct resamples exist (126 for G=5): it under-covers with few groups.
* ``"bca"``: the bias-corrected and accelerated bootstrap (Efron, "Better bootstrap
  confidence intervals", 1987) on the same resamples, acceleration from the jackknife over
  groups.  It corrects skew, not the ``(G-1)/G`` shrinkage, so it under-covers too.

Bootstrap draws are reproducible: resample ``b`` takes units
``np.random.default_rng(seed).integers(0, n_units, size=(n_boot, n_units))[b]``, where the
units are the sorted distinct group labels (or the items, in their order, when resampling
items); quantiles are ``np.quantile`` with linear interpolation.  Pure numpy/pandas/scipy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import binomtest, norm
from scipy.stats import t as student_t

from fer_ray.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "Interval",
    "accuracy_interval",
    "bootstrap_means",
    "bootstrap_p_below_zero",
    "p_below_zero",
    "holm",
    "mcnemar",
    "mean_interval",
    "paired_difference",
]

Unit = Literal["group", "item"]
Method = Literal["t", "percentile", "bca"]
#: The interval methods, by name (``statistics.interval`` in a config).
METHODS: tuple[str, ...] = ("t", "percentile", "bca")
#: The method whose coverage, measured on the synthetic population, is closest to 95 %.
DEFAULT_METHOD: Method = "t"
#: Names a report prints for each method.
METHOD_NAMES: dict[str, str] = {
    "t": "cluster t-interval",
    "percentile": "percentile cluster bootstrap",
    "bca": "BCa cluster bootstrap",
}


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval and the sample it came from.

    ``unit`` says what the interval's unit was: ``"group"`` or ``"item"`` (no groups given,
    or a single group, where an interval over groups is undefined).  ``method``: one of
    ``METHODS``; ``n_boot`` is 0 for the t-interval, which draws no resamples.
    """

    estimate: float
    low: float
    high: float
    level: float
    n_items: int
    n_groups: int
    unit: Unit = "group"
    n_boot: int = 0
    method: str = "percentile"

    def __post_init__(self) -> None:
        _check_level(self.level)
        if self.n_items < 1 or self.n_groups < 1:
            raise DataError(
                f"an interval needs n_items >= 1 and n_groups >= 1, "
                f"got {self.n_items} and {self.n_groups}"
            )
        if not self.low <= self.high:
            raise DataError(f"interval low {self.low} is above high {self.high}")

    @property
    def resolution(self) -> float:
        """Accuracy step of one test item: differences below it are not measurable."""
        return 1.0 / self.n_items

    @property
    def width(self) -> float:
        return self.high - self.low

    def as_dict(self) -> dict[str, Any]:
        """Flat dict (fields plus ``resolution``) for a report table row or JSON."""
        return {**asdict(self), "resolution": self.resolution}

    def format(self, pct: bool = True, digits: int = 1) -> str:
        """``"68.0 % [58.1, 77.1]"`` (pct) or ``"0.680 [0.581, 0.771]"`` (digits=3)."""
        scale, unit = (100.0, " %") if pct else (1.0, "")
        e, lo, hi = (scale * v for v in (self.estimate, self.low, self.high))
        return f"{e:.{digits}f}{unit} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise DataError(f"level must be in (0, 1), e.g. 0.95, got {level}")


def _check_n_boot(n_boot: int) -> None:
    if int(n_boot) != n_boot or n_boot < 1:
        raise ConfigError(f"n_boot must be a positive integer, got {n_boot}")


def _values(values: ArrayLike, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise DataError(f"{name} must be 1-D (one value per item), got shape {v.shape}")
    if v.size == 0:
        raise DataError(f"{name} is empty")
    if not np.all(np.isfinite(v)):
        raise DataError(f"{name} has NaN or infinite values")
    return v


def _correct(correct: ArrayLike, name: str) -> np.ndarray:
    v = _values(correct, name)
    if not np.all((v == 0.0) | (v == 1.0)):
        raise DataError(f"{name} must be 0/1 or bool per item")
    return v


def _codes(groups: ArrayLike | None, n_items: int) -> tuple[np.ndarray, int]:
    """Group index per item (0..G-1, sorted labels) and G; ``None``: every item its own."""
    if groups is None:
        return np.arange(n_items), n_items
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != n_items:
        raise DataError(f"groups must have one label per item ({n_items}), got shape {g.shape}")
    try:
        codes, uniques = pd.factorize(g, sort=True)
    except TypeError as exc:
        raise DataError(f"group labels cannot be sorted (mixed types?): {exc}") from None
    if np.any(codes < 0):
        raise DataError("groups has missing (NaN/None) labels")
    return codes.astype(np.int64), len(uniques)


_CHUNK_CELLS = 1 << 21  # draws held at once: 2M int64 (16 MB) per array, whatever the data size


def _resampled_means(
    sums: np.ndarray, counts: np.ndarray, n_boot: int, seed: int | None
) -> np.ndarray:
    """Pooled mean of each resample: drawn units' value sums over their item counts.

    ``sums`` is (K, U) per-unit sufficient statistics (value sums) and ``counts`` (U,) the
    items per unit, for K statistics sharing the draws; returns (K, n_boot).  The (n_boot, U)
    draws are made a block of resamples at a time, in the order one
    ``integers(0, U, size=(n_boot, U))`` call makes them, so the numbers do not depend on
    the block size; memory is O(U) beyond the inputs, time O(n_boot * U).  Integer-valued
    sums (accuracies, paired differences) give the same bits as all draws at once; other
    sums may differ in the last bit where blocks are used (the BLAS summation order, which
    already varies with the machine's thread count), never when one block holds all
    resamples (n_boot * U <= 2**21, e.g. 2000 resamples of up to 1048 groups).  Blocks are
    a multiple of 4 resamples, the row grouping of the BLAS kernel.
    """
    n_units = counts.shape[0]
    rng = np.random.default_rng(seed)
    block = max(4, _CHUNK_CELLS // max(n_units, 1) // 4 * 4)
    out = np.empty((sums.shape[0], n_boot))
    for start in range(0, n_boot, block):
        rows = min(block, n_boot - start)
        idx = rng.integers(0, n_units, size=(rows, n_units))
        idx += n_units * np.arange(rows)[:, None]
        mult = np.bincount(idx.ravel(), minlength=rows * n_units).reshape(rows, n_units)
        mult = mult.astype(np.float64)
        out[:, start : start + rows] = (mult @ sums.T).T / (mult @ counts)
    return out


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"interval method must be one of {', '.join(METHODS)}, got {method!r}")


def _units(
    values: np.ndarray, groups: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, int, Unit]:
    """Per-unit value sums and item counts, the number of groups, and the unit: groups, or
    items when no groups are given or there is only one (an interval over one group is
    undefined)."""
    codes, n_groups = _codes(groups, values.shape[0])
    unit: Unit = "group" if groups is not None and n_groups > 1 else "item"
    if unit == "item":
        codes = np.arange(values.shape[0])
    n_units = int(codes.max()) + 1
    sums = np.bincount(codes, weights=values, minlength=n_units)
    counts = np.bincount(codes, minlength=n_units).astype(np.float64)
    return sums, counts, n_groups, unit


def _bootstrap(
    values: np.ndarray, groups: ArrayLike | None, n_boot: int, seed: int | None
) -> tuple[np.ndarray, int, Unit]:
    """(n_boot,) resampled means, the number of groups, and the unit resampled."""
    _check_n_boot(n_boot)
    sums, counts, n_groups, unit = _units(values, groups)
    return _resampled_means(sums[None, :], counts, int(n_boot), seed)[0], n_groups, unit


def bootstrap_means(
    values: ArrayLike, groups: ArrayLike | None = None, *, n_boot: int = 2000, seed: int = 0
) -> np.ndarray:
    """The (n_boot,) bootstrap distribution of the pooled per-item mean.

    For statistics the intervals do not cover, e.g. the share of resamples where model A's
    accuracy does not beat B's: ``(bootstrap_means(ca - cb, groups) <= 0).mean()``.
    """
    v = _values(values, "values")
    return _bootstrap(v, groups, n_boot, seed)[0]


def t_bounds(sums: np.ndarray, counts: np.ndarray, level: float) -> tuple[float, float]:
    """Cluster t-interval of the pooled mean ``sum(sums) / sum(counts)`` over U units.

    Linearised (CR1) standard error of the ratio, Student's t at U - 1 degrees of freedom.
    All units with the same mean: zero width (no spread seen, not certainty).  One unit: no
    spread can be estimated, so the bounds are infinite (callers clip them to the range).
    """
    n_units, total = counts.shape[0], float(counts.sum())
    est = float(sums.sum()) / total
    if n_units < 2:
        return -np.inf, np.inf
    resid = sums - est * counts
    se = float(np.sqrt(n_units / (n_units - 1) * np.sum(resid * resid))) / total
    q = float(student_t.ppf(0.5 + level / 2.0, n_units - 1))
    return est - q * se, est + q * se


def bca_bounds(
    boot: np.ndarray, sums: np.ndarray, counts: np.ndarray, level: float
) -> tuple[float, float]:
    """BCa bounds from resampled means ``boot`` of the units (``sums``, ``counts``).

    Bias correction from the share of resamples below the estimate (ties count half, the
    share kept inside [1/(2B), 1 - 1/(2B)]); acceleration from the jackknife over units.
    """
    est = float(sums.sum() / counts.sum())
    b = boot.shape[0]
    tie = np.abs(boot - est) <= 1e-12 * max(1.0, abs(est))
    share = (np.count_nonzero((boot < est) & ~tie) + 0.5 * np.count_nonzero(tie)) / b
    z0 = float(norm.ppf(np.clip(share, 0.5 / b, 1.0 - 0.5 / b)))
    rest = counts.sum() - counts
    accel = 0.0
    if np.all(rest > 0):
        loo = (sums.sum() - sums) / rest
        d = loo.mean() - loo
        denom = 6.0 * float(np.sum(d * d)) ** 1.5
        accel = float(np.sum(d**3)) / denom if denom > 0 else 0.0
    z = norm.ppf([0.5 - level / 2.0, 0.5 + level / 2.0])
    adjusted = norm.cdf(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
    low, high = np.quantile(boot, adjusted)
    return float(low), float(high)


def _interval(
    values: np.ndarray,
    groups: ArrayLike | None,
    n_boot: int,
    level: float,
    seed: int | None,
    method: str = DEFAULT_METHOD,
    bounds: tuple[float, float] | None = None,
) -> Interval:
    """``values``' pooled mean with its ``method`` interval, clipped to ``bounds`` if given."""
    _check_level(level)
    _check_method(method)
    _check_n_boot(n_boot)
    sums, counts, n_groups, unit = _units(values, groups)
    if method == "t":
        low, high = t_bounds(sums, counts, level)
    else:
        boot = _resampled_means(sums[None, :], counts, int(n_boot), seed)[0]
        if method == "bca":
            low, high = bca_bounds(boot, sums, counts, level)
        else:
            alpha = 1.0 - level  # the same bits as before the other methods came
            low, high = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    est = float(values.mean())
    low, high = float(low), float(high)
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Interval(
        estimate=est,
        low=low,
        high=high,
        level=float(level),
        n_items=int(values.shape[0]),
        n_groups=n_groups,
        unit=unit,
        n_boot=0 if method == "t" else int(n_boot),
        method=method,
    )


def mean_interval(
    values: ArrayLike,
    groups: ArrayLike | None = None,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    method: str = DEFAULT_METHOD,
    bounds: tuple[float, float] | None = None,
) -> Interval:
    """Interval over groups of a per-item mean (NLL, per-item mean correctness, ...).

    The mean accuracy of the 15 models has test-set uncertainty too: pass each item's
    fraction of models that got it right (and ``bounds=(0, 1)``).  ``resolution`` is only
    meaningful for accuracies.  ``n_boot`` and ``seed`` matter for the bootstrap methods.
    """
    return _interval(_values(values, "values"), groups, n_boot, level, seed, method, bounds)


def accuracy_interval(
    correct: ArrayLike,
    groups: ArrayLike | None = None,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    method: str = DEFAULT_METHOD,
) -> Interval:
    """Accuracy with an interval over groups (subjects), not images, clipped to [0, 1].

    ``groups=None`` or a single group makes items the unit (``unit="item"``): one group
    would leave no spread to estimate, an interval that claims certainty.
    """
    v = _correct(correct, "correct")
    return _interval(v, groups, n_boot, level, seed, method, (0.0, 1.0))


def paired_difference(
    correct_a: ArrayLike,
    correct_b: ArrayLike,
    groups: ArrayLike | None = None,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    method: str = DEFAULT_METHOD,
) -> Interval:
    """accuracy(a) - accuracy(b) on the same items, both scored on the same groups.

    Pairing removes the item-difficulty variance shared by a and b, so this interval is
    much narrower than comparing two separate intervals.  Exactly [0, 0] when a == b.
    """
    a = _correct(correct_a, "correct_a")
    b = _correct(correct_b, "correct_b")
    if a.shape != b.shape:
        raise DataError(f"correct_a has {a.shape[0]} items but correct_b has {b.shape[0]}")
    return _interval(a - b, groups, n_boot, level, seed, method, (-1.0, 1.0))


def mcnemar(correct_a: ArrayLike, correct_b: ArrayLike) -> dict[str, float | int]:
    """Exact McNemar test of two classifiers on the same items.

    Returns ``b`` (a right, b wrong), ``c`` (a wrong, b right) and the exact two-sided
    binomial ``p_value`` of ``b`` in ``b + c`` at 1/2 (1.0 when ``b + c == 0``).  It treats
    items as independent; with few subjects prefer ``paired_difference`` with groups.
    """
    a = _correct(correct_a, "correct_a").astype(bool)
    b = _correct(correct_b, "correct_b").astype(bool)
    if a.shape != b.shape:
        raise DataError(f"correct_a has {a.shape[0]} items but correct_b has {b.shape[0]}")
    n_b = int(np.sum(a & ~b))
    n_c = int(np.sum(~a & b))
    p = 1.0 if n_b + n_c == 0 else float(binomtest(n_b, n_b + n_c, 0.5).pvalue)
    return {"b": n_b, "c": n_c, "n_discordant": n_b + n_c, "p_value": p}


def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm, "A simple sequentially rejective multiple test
    procedure", 1979), in input order; NaN entries are left out of the family and stay NaN.

    Rejecting where the adjusted p is below alpha keeps the chance of ANY false rejection among
    the family at most alpha, whatever the dependence between the tests: a count of "p < 0.05"
    over many tests does not.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise DataError("p-values must lie in [0, 1]")
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


def bootstrap_p_below_zero(
    values: ArrayLike, groups: ArrayLike | None = None, *, n_boot: int = 2000, seed: int = 0
) -> float:
    """One-sided bootstrap p-value that the pooled mean is below 0: the share of resamples
    whose mean is at least 0, counted as ``(1 + hits) / (1 + n_boot)`` so it is never 0.

    Same resamples as ``mean_interval`` with the same groups and seed, so a 95 % interval whose
    top lies below 0 goes with a p-value of about 0.025 or less.
    """
    boot = bootstrap_means(values, groups, n_boot=n_boot, seed=seed)
    return float((1 + np.count_nonzero(boot >= 0.0)) / (1 + boot.size))


def p_below_zero(
    values: ArrayLike,
    groups: ArrayLike | None = None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    method: str = DEFAULT_METHOD,
) -> float:
    """One-sided p-value that the pooled mean is below 0, from the same method (and, for the
    bootstrap methods, the same resamples) as ``mean_interval``: a 95 % interval whose top
    lies below 0 goes with a p-value of about 0.025 or less.

    ``"t"``: ``P(T_{G-1} <= est / se)`` with the cluster standard error (0 or 1 when all
    groups agree); the bootstrap methods: ``bootstrap_p_below_zero``.
    """
    _check_method(method)
    if method != "t":
        return bootstrap_p_below_zero(values, groups, n_boot=n_boot, seed=seed)
    v = _values(values, "values")
    sums, counts, _, _ = _units(v, groups)
    est = float(sums.sum() / counts.sum())
    n_units = counts.shape[0]
    if n_units < 2:
        return 1.0
    resid = sums - est * counts
    se = float(np.sqrt(n_units / (n_units - 1) * np.sum(resid * resid))) / float(counts.sum())
    if se == 0.0:
        return 0.0 if est < 0 else 1.0
    return float(student_t.cdf(est / se, n_units - 1))
