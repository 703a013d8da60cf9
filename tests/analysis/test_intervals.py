"""Tests for the cluster-bootstrap accuracy intervals and the paired tests."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

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
    iv = intervals.accuracy_interval(correct, groups)
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
        iv = intervals.accuracy_interval(correct, np.arange(n), seed=seed)
        assert iv.high - iv.low == pytest.approx(normal, rel=0.08)
        assert iv.unit == "group" and iv.n_groups == n


def test_clustered_correctness_widens_group_interval():
    # 10 subjects of 50 images, each subject all right or all wrong: 500 images carry the
    # information of only 10 independent draws.
    groups = np.repeat(np.arange(10), 50)
    correct = np.repeat(np.arange(10) % 2 == 0, 50)
    by_group = intervals.accuracy_interval(correct, groups)
    by_item = intervals.accuracy_interval(correct)
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
    iv = intervals.accuracy_interval(correct, groups, n_boot=n_boot, level=0.9, seed=seed)
    assert (iv.low, iv.high) == pytest.approx(tuple(np.quantile(loop, [0.05, 0.95])), rel=1e-12)


def test_item_bootstrap_equals_brute_force_loop():
    values = np.random.default_rng(5).exponential(size=40)  # e.g. per-item NLL
    draws = np.random.default_rng(2).integers(0, 40, size=(200, 40))
    loop = np.array([values[d].mean() for d in draws])
    np.testing.assert_allclose(intervals.bootstrap_means(values, n_boot=200, seed=2), loop)
    iv = intervals.mean_interval(values, n_boot=200, seed=2)
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
    iv = intervals.paired_difference(correct_a, correct_b, groups, seed=4)
    assert iv.estimate == pytest.approx(correct_a.mean() - correct_b.mean())
    diff = intervals.bootstrap_means(correct_a, groups, seed=4) - intervals.bootstrap_means(
        correct_b, groups, seed=4
    )
    assert (iv.low, iv.high) == pytest.approx(tuple(np.quantile(diff, [0.025, 0.975])))
    # pairing: narrower than the spread of either accuracy alone
    single = intervals.accuracy_interval(correct_a, groups, seed=4)
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
