"""Tests for the accuracy intervals over groups (t, percentile and BCa bootstrap) and the
paired tests."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, norm, ttest_1samp
from scipy.stats import t as scipy_t

from fer_ray.analysis import intervals
from fer_ray.analysis.intervals import Interval
from fer_ray.errors import ConfigError, DataError


def _test_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """105 items of 5 subjects of unequal size, about 68 % correct (the default run)."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.array(["s4", "s1", "s3", "s0", "s2"]), [30, 25, 20, 18, 12])
    correct = rng.random(105) < 0.68
    return correct, groups


def test_estimate_is_plain_accuracy_and_interval_is_sane():
    correct, groups = _test_split()
    iv = intervals.accuracy_interval(correct, groups, method="percentile")
    assert iv.estimate == pytest.approx(correct.mean(), abs=0)
    assert 0.0 <= iv.low <= iv.estimate <= iv.high <= 1.0
    assert iv.high - iv.low > iv.resolution  # 105 items cannot pin accuracy to one image
    assert (iv.n_items, iv.n_groups, iv.unit, iv.level, iv.n_boot) == (105, 5, "group", 0.95, 2000)


def test_item_groups_match_binomial_normal_width():
    # 680 of 1000 right, each item its own group: the bootstrap is the plain binomial one,
    # whose 95 % width is 2 * 1.96 * sqrt(p (1 - p) / n) = 0.0578 up to Monte Carlo error
    # (about 2 % of the width with 2000 resamples); 8 % tolerance on each of three seeds.
    n, p = 1000, 0.68
    correct = np.random.default_rng(1).permutation(np.arange(n) < int(p * n))
    normal = 2 * 1.96 * np.sqrt(p * (1 - p) / n)
    for seed in range(3):
        iv = intervals.accuracy_interval(correct, np.arange(n), seed=seed, method="percentile")
        assert iv.high - iv.low == pytest.approx(normal, rel=0.08)
        assert iv.unit == "group" and iv.n_groups == n


def test_clustered_correctness_widens_group_interval():
    # 10 subjects of 50 images, each subject all right or all wrong: 500 images carry the
    # information of only 10 independent draws.
    groups = np.repeat(np.arange(10), 50)
    correct = np.repeat(np.arange(10) % 2 == 0, 50)
    by_group = intervals.accuracy_interval(correct, groups, method="percentile")
    by_item = intervals.accuracy_interval(correct, method="percentile")
    assert by_group.estimate == by_item.estimate == 0.5
    assert by_item.unit == "item"
    assert by_item.high - by_item.low == pytest.approx(2 * 1.96 * np.sqrt(0.25 / 500), rel=0.1)
    # 10 Bernoulli(1/2) groups: sd sqrt(0.25 / 10) = 0.158, width about 0.6
    assert by_group.high - by_group.low > 4 * (by_item.high - by_item.low)
    assert by_group.high - by_group.low == pytest.approx(2 * 1.96 * np.sqrt(0.025), rel=0.15)


def test_same_seed_same_result_other_seed_other_draws():
    correct, groups = _test_split()
    a = intervals.accuracy_interval(correct, groups, seed=7)
    assert a == intervals.accuracy_interval(correct, groups, seed=7)
    np.testing.assert_array_equal(
        intervals.bootstrap_means(correct, groups, seed=7),
        intervals.bootstrap_means(correct, groups, seed=7),
    )
    assert not np.array_equal(
        intervals.bootstrap_means(correct, groups, seed=7),
        intervals.bootstrap_means(correct, groups, seed=8),
    )


def test_vectorised_bootstrap_equals_brute_force_loop():
    correct, groups = _test_split(3)
    n_boot, seed = 300, 11
    labels = np.unique(groups)  # units are the sorted distinct labels
    draws = np.random.default_rng(seed).integers(0, len(labels), size=(n_boot, len(labels)))
    loop = np.empty(n_boot)
    for b in range(n_boot):
        items = np.concatenate([correct[groups == labels[g]] for g in draws[b]])
        loop[b] = items.mean()
    fast = intervals.bootstrap_means(correct, groups, n_boot=n_boot, seed=seed)
    np.testing.assert_allclose(fast, loop, rtol=1e-12)
    iv = intervals.accuracy_interval(
        correct, groups, n_boot=n_boot, level=0.9, seed=seed, method="percentile"
    )
    assert (iv.low, iv.high) == pytest.approx(tuple(np.quantile(loop, [0.05, 0.95])), rel=1e-12)


def test_item_bootstrap_equals_brute_force_loop():
    values = np.random.default_rng(5).exponential(size=40)  # e.g. per-item NLL
    draws = np.random.default_rng(2).integers(0, 40, size=(200, 40))
    loop = np.array([values[d].mean() for d in draws])
    np.testing.assert_allclose(intervals.bootstrap_means(values, n_boot=200, seed=2), loop)
    iv = intervals.mean_interval(values, n_boot=200, seed=2, method="percentile")
    assert iv.estimate == pytest.approx(values.mean())
    assert (iv.low, iv.high) == pytest.approx(tuple(np.quantile(loop, [0.025, 0.975])))


def test_single_group_falls_back_to_items():
    correct, _ = _test_split()
    one = intervals.accuracy_interval(correct, np.full(105, "s0"))
    items = intervals.accuracy_interval(correct)
    assert one.unit == "item" and one.n_groups == 1
    assert (one.low, one.high) == (items.low, items.high)
    assert one.high - one.low > 0.1  # not the zero width a one-group bootstrap would give


def test_paired_difference_of_identical_vectors_is_exactly_zero():
    correct, groups = _test_split()
    iv = intervals.paired_difference(correct, correct, groups)
    assert (iv.estimate, iv.low, iv.high) == (0.0, 0.0, 0.0)


def test_paired_difference_uses_the_same_draws_for_both():
    correct_a, groups = _test_split(0)
    correct_b = correct_a.copy()
    correct_b[::4] = ~correct_b[::4]  # b differs from a on a quarter of the items
    iv = intervals.paired_difference(correct_a, correct_b, groups, seed=4, method="percentile")
    assert iv.estimate == pytest.approx(correct_a.mean() - correct_b.mean())
    diff = intervals.bootstrap_means(correct_a, groups, seed=4) - intervals.bootstrap_means(
        correct_b, groups, seed=4
    )
    assert (iv.low, iv.high) == pytest.approx(tuple(np.quantile(diff, [0.025, 0.975])))
    # pairing: narrower than the spread of either accuracy alone
    single = intervals.accuracy_interval(correct_a, groups, seed=4, method="percentile")
    assert iv.high - iv.low < single.high - single.low


def test_mcnemar_hand_worked_case():
    # a right / b wrong on 1 item, a wrong / b right on 5, 4 concordant items.
    a = np.array([1, 0, 0, 0, 0, 0, 1, 1, 0, 0], dtype=bool)
    b = np.array([0, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=bool)
    res = intervals.mcnemar(a, b)
    assert (res["b"], res["c"], res["n_discordant"]) == (1, 5, 6)
    # P(X <= 1 | n=6, 1/2) = (1 + 6) / 64, doubled for the two-sided test
    assert res["p_value"] == pytest.approx(14 / 64)
    assert intervals.mcnemar(b, a)["p_value"] == pytest.approx(14 / 64)
    assert intervals.mcnemar(a, a) == {"b": 0, "c": 0, "n_discordant": 0, "p_value": 1.0}


def test_mcnemar_matches_scipy_binomtest():
    rng = np.random.default_rng(9)
    a = rng.random(200) < 0.7
    b = a.copy()
    b[np.flatnonzero(a)[:30]] = False  # 30 items only a gets right
    b[np.flatnonzero(~a)[:6]] = True  # 6 items only b gets right
    res = intervals.mcnemar(a, b)
    assert (res["b"], res["c"]) == (30, 6)
    assert res["p_value"] == pytest.approx(binomtest(30, 36, 0.5).pvalue, rel=1e-12)
    assert res["p_value"] < 1e-3  # 30 against 6 discordant items is far from a coin flip
    for seed in range(5):  # arbitrary pairs too
        r = np.random.default_rng(seed)
        a, b = r.random(50) < 0.6, r.random(50) < 0.5
        n_b, n_c = int(np.sum(a & ~b)), int(np.sum(~a & b))
        res = intervals.mcnemar(a, b)
        assert (res["b"], res["c"]) == (n_b, n_c)
        assert res["p_value"] == pytest.approx(binomtest(n_b, n_b + n_c).pvalue, rel=1e-12)


def test_interval_format_dict_and_resolution():
    iv = Interval(0.68, 0.581, 0.771, 0.95, 105, 5)
    assert iv.format() == "68.0 % [58.1, 77.1]"
    assert iv.format(pct=False, digits=3) == "0.680 [0.581, 0.771]"
    assert iv.resolution == pytest.approx(1 / 105)
    d = iv.as_dict()
    assert d["estimate"] == 0.68 and d["n_groups"] == 5 and d["unit"] == "group"
    assert d["resolution"] == pytest.approx(1 / 105)
    with pytest.raises(AttributeError):
        iv.low = 0.0  # frozen


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: intervals.accuracy_interval([1, 0, 1], ["a", "b"]), "one label per item"),
        (lambda: intervals.accuracy_interval([]), "empty"),
        (lambda: intervals.accuracy_interval([1, 0, 2]), "0/1"),
        (lambda: intervals.accuracy_interval([1, 0], level=1.0), "level"),
        (lambda: intervals.accuracy_interval([1, 0], level=0.0), "level"),
        (lambda: intervals.accuracy_interval([1, 0], ["a", None]), "missing"),
        (lambda: intervals.mean_interval([1.0, np.nan]), "NaN"),
        (lambda: intervals.paired_difference([1, 0], [1, 0, 1]), "items"),
        (lambda: intervals.mcnemar([1, 0], [1]), "items"),
        (lambda: Interval(0.5, 0.6, 0.4, 0.95, 10, 2), "above"),
    ],
)
def test_bad_input_raises_data_error(call, message):
    with pytest.raises(DataError, match=message):
        call()


def test_bad_n_boot_is_a_config_error():
    with pytest.raises(ConfigError, match="n_boot"):
        intervals.accuracy_interval([1, 0, 1], n_boot=0)


def _old_resampled_means(sums, counts, n_boot, seed):
    """The bootstrap before it was made in blocks: all (n_boot, U) draws at once."""
    n_units = counts.shape[0]
    idx = np.random.default_rng(seed).integers(0, n_units, size=(n_boot, n_units))
    mult = np.bincount(
        (idx + n_units * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n_units
    ).reshape(n_boot, n_units)
    mult = mult.astype(np.float64)
    return (mult @ sums.T).T / (mult @ counts)


@pytest.mark.parametrize("cells", [1, 997, 1 << 21])
def test_block_bootstrap_draws_as_all_at_once(monkeypatch, cells):
    # Blocks of 4 resamples, of a few, or all at once: same draws in the same order, so
    # integer-valued sums (correct counts: accuracies, paired differences) give the same bits
    # and real-valued ones agree to rounding (the BLAS order of a block may differ).
    monkeypatch.setattr(intervals, "_CHUNK_CELLS", cells)
    rng = np.random.default_rng(12)
    for n_units, n_boot, seed in [(5, 2000, 0), (105, 333, 7), (4000, 250, 3), (1, 10, 1)]:
        counts = rng.integers(1, 30, n_units).astype(np.float64)
        right = rng.binomial(counts.astype(int), 0.7).astype(np.float64)
        diff = right - rng.binomial(counts.astype(int), 0.6)
        sums = np.vstack([right, diff, rng.normal(size=n_units) * counts])
        old = _old_resampled_means(sums, counts, n_boot, seed)
        new = intervals._resampled_means(sums, counts, n_boot, seed)
        np.testing.assert_array_equal(new[:2], old[:2])
        np.testing.assert_allclose(new[2], old[2], rtol=1e-13, atol=1e-15)


def test_one_block_is_the_all_at_once_computation():
    # Up to 2**21 draws (2000 resamples of 1048 groups: every default-size run) the block is
    # the whole computation: real-valued means equal to the last bit too.
    rng = np.random.default_rng(8)
    for n_units, seed in [(5, 0), (35, 4), (1048, 2)]:
        counts = rng.integers(1, 40, n_units).astype(np.float64)
        sums = (rng.random(n_units) * counts)[None, :]
        old = _old_resampled_means(sums, counts, 2000, seed)
        np.testing.assert_array_equal(intervals._resampled_means(sums, counts, 2000, seed), old)


def test_intervals_unchanged_from_all_at_once_reference(monkeypatch):
    # Public results on a few random data sets, with blocks forced small, against the
    # reference: every interval bound equal to the last bit.
    correct, groups = _test_split(2)
    items = np.random.default_rng(4).random(3000) < 0.6
    for c, g, seed in [(correct, groups, 0), (correct, None, 5), (items, np.arange(3000), 9)]:
        monkeypatch.setattr(intervals, "_CHUNK_CELLS", 1 << 21)
        ref = intervals.accuracy_interval(c, g, seed=seed, method="percentile")
        monkeypatch.setattr(intervals, "_CHUNK_CELLS", 5000)
        assert intervals.accuracy_interval(c, g, seed=seed, method="percentile") == ref
        codes = np.unique(g if g is not None else np.arange(len(c)), return_inverse=True)[1]
        sums = np.bincount(codes, weights=c.astype(float))[None, :]
        old = _old_resampled_means(sums, np.bincount(codes).astype(float), 2000, seed)[0]
        assert (ref.low, ref.high) == tuple(np.quantile(old, [0.025, 0.975]))


def test_bootstrap_memory_does_not_grow_with_n_boot_times_items():
    # 12,000 images, each its own group: all draws at once held 2000 x 12,000 int64 (192 MB)
    # three times over; in blocks the peak stays near one block (16 MB per array).
    import tracemalloc

    correct = np.random.default_rng(0).random(12_000) < 0.7
    tracemalloc.start()
    try:
        iv = intervals.accuracy_interval(correct, np.arange(12_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 80e6
    assert iv.low < correct.mean() < iv.high


# -- multiple testing (issue 25) ------------------------------------------------------------


def test_holm_matches_the_step_down_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 -> max(0.06, 0.04)
    adjusted = intervals.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # NaN is no test: left out of the family (m = 2) and left NaN; adjusted p capped at 1
    out = intervals.holm([0.02, float("nan"), 0.01])
    assert np.isnan(out[1]) and out[[0, 2]].tolist() == pytest.approx([0.02, 0.02])
    assert intervals.holm([0.6, 0.7]).tolist() == [1.0, 1.0]
    with pytest.raises(DataError, match="p-values"):
        intervals.holm([0.5, 1.5])


def test_bootstrap_p_below_zero_counts_the_documented_resamples():
    values = np.array([-0.2, -0.1, 0.05, -0.3, 0.1, -0.05, -0.2, 0.0])
    groups = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    # the resamples as the module docstring defines them, redone by hand
    idx = np.random.default_rng(3).integers(0, 4, size=(500, 4))
    sums = np.array([-0.3, -0.25, 0.05, -0.2])  # per group, groups sorted a..d
    means = sums[idx].sum(1) / (2 * 4)
    expected = (1 + np.count_nonzero(means >= 0)) / 501
    p = intervals.bootstrap_p_below_zero(values, groups, n_boot=500, seed=3)
    assert p == pytest.approx(expected, abs=0)
    assert intervals.bootstrap_p_below_zero(-np.ones(6), None, n_boot=99) == pytest.approx(0.01)
    assert intervals.bootstrap_p_below_zero(np.ones(6), None, n_boot=99) == 1.0


def test_t_interval_equals_scipy_t_on_hand_made_subject_means():
    # 5 subjects of 21 images (the default data's size), subject accuracies by hand: with
    # equal sizes the cluster t-interval is the t-interval of the 5 subject means.
    right = np.array([12, 15, 18, 9, 20])
    groups = np.repeat(np.arange(5), 21)
    correct = np.concatenate([np.arange(21) < r for r in right])
    means = right / 21
    se = means.std(ddof=1) / np.sqrt(5)
    q = scipy_t.ppf(0.975, df=4)
    iv = intervals.accuracy_interval(correct, groups)
    assert iv.method == "t" and iv.n_boot == 0 and iv.unit == "group"
    assert iv.estimate == pytest.approx(means.mean(), abs=1e-15)
    assert (iv.low, iv.high) == pytest.approx((means.mean() - q * se, means.mean() + q * se))
    lo, hi = scipy_t.interval(0.9, df=4, loc=means.mean(), scale=se)
    iv90 = intervals.accuracy_interval(correct, groups, level=0.9)
    assert (iv90.low, iv90.high) == pytest.approx((lo, hi))


def test_t_interval_weights_unequal_subjects_by_their_images():
    # Unequal sizes: the pooled accuracy is a ratio; its linearised (CR1) standard error
    # sqrt(G/(G-1) sum (S_g - p n_g)^2) / N, computed here by a plain loop.
    correct, groups = _test_split()
    p = correct.mean()
    labels = np.unique(groups)
    resid = [correct[groups == g].sum() - p * np.sum(groups == g) for g in labels]
    se = np.sqrt(5 / 4 * np.sum(np.square(resid))) / 105
    iv = intervals.accuracy_interval(correct, groups, method="t")
    q = scipy_t.ppf(0.975, df=4)
    assert (iv.low, iv.high) == pytest.approx((p - q * se, p + q * se), rel=1e-12)


def test_t_interval_edge_cases_are_stated():
    groups = np.repeat(np.arange(4), 10)
    # every subject at the same accuracy: no spread seen, a zero-width interval
    same = np.tile(np.arange(10) < 7, 4)
    iv = intervals.accuracy_interval(same, groups)
    assert (iv.low, iv.estimate, iv.high) == pytest.approx((0.7, 0.7, 0.7))
    # all right: [1, 1], clipped to the range; a paired difference of equals: [0, 0]
    assert (intervals.accuracy_interval(np.ones(40), groups).low) == 1.0
    d = intervals.paired_difference(same, same, groups)
    assert (d.estimate, d.low, d.high) == (0.0, 0.0, 0.0)
    # one subject: items become the unit, as with the bootstrap (stated by unit)
    one = intervals.accuracy_interval(same, np.zeros(40))
    assert one.unit == "item" and one.n_groups == 1 and one.width > 0.2
    # one item: no spread can be estimated, so the interval is the whole range
    lone = intervals.accuracy_interval([1], None)
    assert (lone.low, lone.high) == (0.0, 1.0)
    assert np.isinf(intervals.mean_interval([2.5], None).width)


def test_bca_is_percentile_when_the_bootstrap_is_symmetric_and_unbiased():
    # Many small groups of a symmetric quantity: z0 and the acceleration near 0, so BCa's
    # bounds are close to the percentile bounds (same resamples).
    rng = np.random.default_rng(3)
    values = rng.normal(size=2000)
    groups = np.repeat(np.arange(400), 5)
    pct = intervals.mean_interval(values, groups, method="percentile", seed=1)
    bca = intervals.mean_interval(values, groups, method="bca", seed=1)
    assert bca.method == "bca" and bca.n_boot == 2000
    assert (bca.low, bca.high) == pytest.approx((pct.low, pct.high), abs=0.1 * pct.width)


def test_bca_bounds_follow_the_formula_by_hand():
    boot = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    sums, counts = np.array([1.0, 2.0, 4.0]), np.array([5.0, 5.0, 5.0])  # estimate 7/15
    est = 7 / 15
    z0 = norm.ppf(np.mean(boot < est))
    loo = (7 - sums) / 10
    d = loo.mean() - loo
    a = np.sum(d**3) / (6 * np.sum(d**2) ** 1.5)
    z = norm.ppf([0.025, 0.975])
    want = np.quantile(boot, norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))
    assert intervals.bca_bounds(boot, sums, counts, 0.95) == pytest.approx(tuple(want))


def test_unknown_method_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="t, percentile, bca"):
        intervals.accuracy_interval([1, 0, 1], method="wald")


def test_p_below_zero_by_t_is_scipys_one_sided_t_test_on_subject_means():
    # equal sizes: the one-sided one-sample t-test of the subject means against 0
    diffs = np.array([-3, -1, 0, -2, 1, -4])  # per subject, out of 10 images
    groups = np.repeat(np.arange(6), 10)
    values = np.concatenate(
        [np.r_[np.full(abs(d), np.sign(d)), np.zeros(10 - abs(d))] for d in diffs]
    )
    want = ttest_1samp(diffs / 10, 0.0, alternative="less").pvalue
    assert intervals.p_below_zero(values, groups) == pytest.approx(want, rel=1e-10)
    pct = intervals.p_below_zero(values, groups, method="percentile", seed=3)
    assert pct == intervals.bootstrap_p_below_zero(values, groups, seed=3)
    assert intervals.p_below_zero(np.full(60, -1.0), groups) == 0.0


def test_the_config_key_offers_exactly_the_methods_and_suggests_a_near_miss():
    import typing

    from fer_ray import config
    from fer_ray.recipes.core import StatisticsConfig

    hints = typing.get_type_hints(StatisticsConfig)
    assert typing.get_args(hints["interval"]) == intervals.METHODS
    assert StatisticsConfig().interval == intervals.DEFAULT_METHOD
    assert config.from_dict({}, ["statistics.interval=percentile"]).statistics.interval == (
        "percentile"
    )
    with pytest.raises(ConfigError, match="did you mean 'bca'"):
        config.from_dict({}, ["statistics.interval=bcaa"])
