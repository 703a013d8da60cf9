"""Tests for the soft-vote ensemble-size curve and its NLL / ECE metrics."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from fer_ray.analysis import ensemble_size as es
from fer_ray.analysis import metrics
from fer_ray.errors import ConfigError, DataError


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _members(m: int = 7, n: int = 120, c: int = 7, seed: int = 0):
    """M members = the true class signal + independent noise, so voting helps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = 1.5 * np.eye(c)[y][None] + rng.normal(0.0, 1.5, (m, n, c))
    return _softmax(logits), y


def _loop_ece(probs: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for i in range(n_bins):
        lo, hi = edges[i], edges[i + 1]
        inside = [j for j in range(len(y)) if (conf[j] > lo or i == 0) and conf[j] <= hi]
        if inside:
            acc = np.mean([pred[j] == y[j] for j in inside])
            mean_conf = np.mean([conf[j] for j in inside])
            total += len(inside) / len(y) * abs(acc - mean_conf)
    return total


def _constant_conf(conf: float, n: int, n_right: int) -> tuple[np.ndarray, np.ndarray]:
    """n 2-class items predicting class 0 with probability ``conf``; n_right have label 0."""
    probs = np.tile([conf, 1.0 - conf], (n, 1))
    return probs, (np.arange(n) >= n_right).astype(int)


def test_nll_hand_computed():
    probs = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    y = np.array([0, 1, 0])
    expected = (np.log(2) + np.log(1.25) + np.log(5)) / 3  # -log 0.5, -log 0.8, -log 0.2
    assert es.negative_log_likelihood(probs, y) == pytest.approx(expected, rel=1e-12)
    # a zero probability on the true class costs -log(eps), not infinity
    hard = np.array([[1.0, 0.0]])
    assert es.negative_log_likelihood(hard, [1], eps=1e-6) == pytest.approx(-np.log(1e-6))


@pytest.mark.parametrize("n_bins", [1, 5, 10, 15])
def test_ece_equals_loop_implementation(n_bins):
    rng = np.random.default_rng(n_bins)
    probs = rng.dirichlet(np.full(5, 0.7), size=300)
    y = rng.integers(0, 5, 300)
    assert es.expected_calibration_error(probs, y, n_bins) == pytest.approx(
        _loop_ece(probs, y, n_bins), abs=1e-12
    )


def test_ece_bin_edges_belong_to_the_lower_bin():
    # with 5 bins, confidence 0.8 is in (0.6, 0.8], apart from 0.9 in (0.8, 1.0]
    p1, y1 = _constant_conf(0.8, 5, 5)  # all right: under-confident by 0.2
    p2, y2 = _constant_conf(0.9, 5, 0)  # all wrong: over-confident by 0.9
    probs, y = np.vstack([p1, p2]), np.concatenate([y1, y2])
    # separate bins: 5/10 * 0.2 + 5/10 * 0.9; one shared bin would give |1.0 - 4.5| / 10
    assert es.expected_calibration_error(probs, y, 5) == pytest.approx(0.55)
    assert _loop_ece(probs, y, 5) == pytest.approx(0.55)


def test_ece_of_calibrated_and_overconfident_cases():
    # 80 % confident and 8 of 10 right; 60 % confident and 3 of 5 right: calibrated
    p1, y1 = _constant_conf(0.8, 10, 8)
    p2, y2 = _constant_conf(0.6, 5, 3)
    calibrated = np.vstack([p1, p2]), np.concatenate([y1, y2])
    assert es.expected_calibration_error(*calibrated) == pytest.approx(0.0, abs=1e-12)
    # 90 % confident but 6 of 10 right: over-confident by 0.3
    assert es.expected_calibration_error(*_constant_conf(0.9, 10, 6)) == pytest.approx(0.3)
    # mixed: 10 items with gap 0.3 and 5 calibrated ones -> 10/15 * 0.3
    p3, y3 = _constant_conf(0.9, 10, 6)
    mixed = np.vstack([p3, p2]), np.concatenate([y3, y2])
    assert es.expected_calibration_error(*mixed) == pytest.approx(0.2)


def test_ece_of_labels_drawn_from_the_probs_is_small():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=40_000)
    y = (rng.random(40_000)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    assert es.expected_calibration_error(probs, y) < 0.015  # sampling noise only
    sharp = _softmax(3.0 * np.log(probs))  # same argmax, over-confident
    assert es.expected_calibration_error(sharp, y) > 0.1


def test_full_ensemble_row_equals_direct_soft_vote():
    probs, y = _members()
    curve = es.ensemble_size_curve(probs, y, n_orderings=20)
    last = curve.iloc[-1]
    vote = metrics.soft_vote(list(probs))
    assert last["k"] == 7 and last["n_ensembles"] == 1 and last["exhaustive"]
    assert last["accuracy"] == metrics.vote_accuracy(list(probs), y)
    assert last["accuracy_std"] == last["nll_std"] == last["ece_std"] == 0.0
    assert last["nll"] == pytest.approx(es.negative_log_likelihood(vote, y), rel=1e-12)
    assert last["ece"] == pytest.approx(es.expected_calibration_error(vote, y), abs=1e-12)


def test_first_row_is_the_mean_member():
    probs, y = _members()
    accs = np.array([np.mean(p.argmax(axis=1) == y) for p in probs])
    nlls = np.array([es.negative_log_likelihood(p, y) for p in probs])
    first = es.ensemble_size_curve(probs, y, n_orderings=20).iloc[0]
    assert first["exhaustive"] and first["n_ensembles"] == 7
    assert first["accuracy"] == pytest.approx(accs.mean(), rel=1e-12)
    assert first["accuracy_std"] == pytest.approx(accs.std(), rel=1e-12)  # population std
    assert first["nll"] == pytest.approx(nlls.mean(), rel=1e-12)


def test_curve_equals_brute_force_over_subsets_and_orderings():
    # M = 6, 14 orderings: k = 1, 5, 6 are enumerated (C(6, k) <= 14), k = 2, 3, 4 are the
    # prefixes of the 14 orderings drawn from the seed (C(6, k) = 15, 20, 15).
    probs, y = _members(m=6, n=80, c=5, seed=3)
    n_orderings, seed = 14, 4
    curve = es.ensemble_size_curve(probs, y, n_orderings=n_orderings, seed=seed, n_bins=10)
    perms = np.random.default_rng(seed).permuted(np.tile(np.arange(6), (n_orderings, 1)), axis=1)
    assert curve["exhaustive"].tolist() == [True, False, False, False, True, True]
    assert curve["n_ensembles"].tolist() == [6, 14, 14, 14, 6, 1]
    for k in range(1, 7):
        exhaustive = len(list(combinations(range(6), k))) <= n_orderings
        sets = list(combinations(range(6), k)) if exhaustive else [o[:k] for o in perms]
        acc, nll, ece = [], [], []
        for s in sets:
            vote = metrics.soft_vote([probs[i] for i in s])
            acc.append(metrics.vote_accuracy([probs[i] for i in s], y))
            nll.append(-np.mean(np.log(vote[np.arange(len(y)), y])))
            ece.append(_loop_ece(vote, y, 10))
        row = curve.iloc[k - 1]
        ddof = 0 if exhaustive or len(sets) == 1 else 1
        assert row["accuracy"] == pytest.approx(np.mean(acc), rel=1e-12)
        assert row["accuracy_std"] == pytest.approx(np.std(acc, ddof=ddof), rel=1e-9, abs=1e-12)
        assert row["nll"] == pytest.approx(np.mean(nll), rel=1e-9)
        assert row["nll_std"] == pytest.approx(np.std(nll, ddof=ddof), rel=1e-6, abs=1e-12)
        assert row["ece"] == pytest.approx(np.mean(ece), rel=1e-9)
        assert row["ece_std"] == pytest.approx(np.std(ece, ddof=ddof), rel=1e-6, abs=1e-12)


def test_enough_orderings_make_every_row_exact():
    probs, y = _members(m=5, n=60, c=4, seed=1)
    curve = es.ensemble_size_curve(probs, y, n_orderings=10)  # max C(5, k) = 10
    assert curve["exhaustive"].all()
    assert curve["n_ensembles"].tolist() == [1 * 5, 10, 10, 5, 1]
    pairs = [metrics.vote_accuracy([probs[i], probs[j]], y) for i, j in combinations(range(5), 2)]
    assert curve.loc[1, "accuracy"] == pytest.approx(np.mean(pairs), rel=1e-12)
    # an exact curve does not depend on the seed
    other = es.ensemble_size_curve(probs, y, n_orderings=10, seed=99)
    np.testing.assert_array_equal(curve.to_numpy(), other.to_numpy())


def test_voting_independent_noisy_members_helps():
    probs, y = _members(m=9, n=400, seed=2)
    curve = es.ensemble_size_curve(probs, y, n_orderings=30)
    assert list(curve.columns) == [
        "k",
        "accuracy",
        "accuracy_std",
        "nll",
        "nll_std",
        "ece",
        "ece_std",
        "n_ensembles",
        "exhaustive",
    ]
    assert curve["k"].tolist() == list(range(1, 10))
    assert curve["accuracy"].iloc[-1] > curve["accuracy"].iloc[0] + 0.1
    assert curve["nll"].iloc[-1] < curve["nll"].iloc[0]
    assert curve["accuracy_std"].iloc[0] > 0.0 == curve["accuracy_std"].iloc[-1]


def test_chunked_batches_give_the_same_curve(monkeypatch):
    probs, y = _members(m=5, n=50, c=3, seed=6)
    whole = es.ensemble_size_curve(probs, y, n_orderings=8, seed=1)
    monkeypatch.setattr(es, "_CHUNK", 1)  # one ensemble per batch
    chunked = es.ensemble_size_curve(probs, y, n_orderings=8, seed=1)
    np.testing.assert_allclose(
        chunked.drop(columns="exhaustive").to_numpy(float),
        whole.drop(columns="exhaustive").to_numpy(float),
        rtol=1e-12,
        atol=1e-15,
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: es.negative_log_likelihood(np.array([[2.0, -1.0]]), [0]), "probabilities"),
        (lambda: es.negative_log_likelihood(np.array([[0.5, 0.2]]), [0]), "sum to 1"),
        (lambda: es.negative_log_likelihood(np.array([[0.5, 0.5]]), [0, 1]), "1 entries"),
        (lambda: es.negative_log_likelihood(np.array([[0.5, 0.5]]), [2]), "0..1"),
        (lambda: es.negative_log_likelihood(np.array([[0.5, 0.5]]), [0.5]), "integer"),
        (lambda: es.expected_calibration_error(np.zeros((0, 3)), []), "empty"),
        (lambda: es.ensemble_size_curve(np.full((4, 3), 0.25), [0, 1, 2]), "members"),
    ],
)
def test_bad_input_raises_data_error(call, message):
    with pytest.raises(DataError, match=message):
        call()


def test_bad_settings_raise_config_error():
    probs, y = _members(m=2, n=5, c=3)
    with pytest.raises(ConfigError, match="n_orderings"):
        es.ensemble_size_curve(probs, y, n_orderings=0)
    with pytest.raises(ConfigError, match="n_bins"):
        es.expected_calibration_error(probs[0], y, n_bins=0)
