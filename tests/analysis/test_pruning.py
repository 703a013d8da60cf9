"""Tests for the feature-pruning experiments (paper sec. 2.5, 3.5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fer_ray.analysis import gedeon, pruning
from fer_ray.analysis.pruning import HeadWeights


def _random_head(rng, n_features=64, n_hidden=32, n_outputs=7) -> HeadWeights:
    return HeadWeights(
        w_hidden=rng.standard_normal((n_hidden, n_features)) / np.sqrt(n_features),
        b_hidden=rng.standard_normal(n_hidden) * 0.1,
        w_out=rng.standard_normal((n_outputs, n_hidden)) / np.sqrt(n_hidden),
        b_out=rng.standard_normal(n_outputs) * 0.1,
    )


def _useless_feature_task(n_informative=20, n_useless=10, n_classes=4, n=300, seed=0):
    """A head that is exactly a linear classifier on the informative features.

    Labels are the argmax of ``x @ A.T``; the head computes ReLU(z) - ReLU(-z) = z with
    hidden units [A; -A], so its accuracy is 1.0.  The last ``n_useless`` features have
    all-zero weights (contribution 0), so pruning them changes nothing.
    """
    rng = np.random.default_rng(seed)
    f = n_informative + n_useless
    a = np.zeros((n_classes, f))
    a[:, :n_informative] = rng.standard_normal((n_classes, n_informative))
    x = rng.standard_normal((n, f))
    y = (x @ a.T).argmax(axis=1)
    eye = np.eye(n_classes)
    head = HeadWeights(
        w_hidden=np.vstack([a, -a]),
        b_hidden=np.zeros(2 * n_classes),
        w_out=np.hstack([eye, -eye]),
        b_out=np.zeros(n_classes),
    )
    return x, y, head


def test_head_logits_matches_manual_forward_and_zeroing():
    rng = np.random.default_rng(1)
    head = _random_head(rng)
    x = rng.standard_normal((50, 64))
    manual = np.maximum(x @ head.w_hidden.T + head.b_hidden, 0) @ head.w_out.T + head.b_out
    np.testing.assert_allclose(pruning.head_logits(x, head), manual, atol=1e-12)
    keep = rng.random(64) > 0.3
    zeroed = np.where(keep, x, 0.0)
    np.testing.assert_allclose(
        pruning.head_logits(x, head, keep), pruning.head_logits(zeroed, head), atol=1e-12
    )


def test_head_validation():
    with pytest.raises(ValueError):
        HeadWeights(np.ones((3, 4)), np.ones(2), np.ones((2, 3)), np.ones(2))
    head = _random_head(np.random.default_rng(0), n_features=5, n_hidden=3, n_outputs=2)
    assert (head.n_features, head.n_hidden, head.n_outputs) == (5, 3, 2)
    with pytest.raises(ValueError):
        pruning.head_logits(np.ones((2, 5)), head, keep=np.ones(5))  # not bool
    with pytest.raises(ValueError):
        pruning.head_logits(np.ones((2, 4)), head)


def test_pruning_nothing_equals_unpruned_accuracy():
    rng = np.random.default_rng(2)
    head = _random_head(rng)
    x = rng.standard_normal((200, 64))
    y = rng.integers(0, 7, 200)
    base = pruning.accuracy(x, y, head)
    assert pruning.accuracy(x, y, head, np.ones(64, dtype=bool)) == base
    sweep = pruning.ratio_sweep(x, y, head, [0.0], draws=3, rng=0)
    assert (sweep["accuracy"] == base).all()


def test_pruning_everything_predicts_bias_class():
    rng = np.random.default_rng(3)
    head = _random_head(rng)
    b_out = head.b_out.copy()
    b_out[2] = 100.0  # class 2 wins whenever the features are gone
    head = HeadWeights(head.w_hidden, head.b_hidden, head.w_out, b_out)
    x = rng.standard_normal((100, 64))
    y = np.array([2] * 40 + [0] * 25 + [1] * 20 + [5] * 15)  # class 2 is the majority
    logits = pruning.head_logits(x, head, np.zeros(64, dtype=bool))
    assert np.all(logits.argmax(axis=1) == 2)
    acc = pruning.accuracy(x, y, head, np.zeros(64, dtype=bool))
    assert acc == 0.40
    sweep = pruning.ratio_sweep(x, y, head, [1.0], draws=2, rng=0)
    assert list(sweep["accuracy"]) == [0.40, 0.40]
    assert list(sweep["n_kept"]) == [0, 0]


def test_threshold_mask_matches_direct_count():
    rng = np.random.default_rng(4)
    s = rng.standard_normal(512)
    keep = pruning.threshold_mask(s)
    thr = s.mean() - s.std(ddof=0)
    assert pruning.prune_threshold(s) == pytest.approx(thr)
    assert np.count_nonzero(~keep) == np.count_nonzero(s < thr)
    assert np.all(s[keep] >= thr)
    assert pruning.threshold_mask([1.0, 2.0, 3.0]).tolist() == [False, True, True]
    # [1, 1, 3, 3]: mean 2, std 1 -> threshold exactly 1.0, and scores at it are kept
    assert pruning.threshold_mask([1.0, 1.0, 3.0, 3.0]).all()


def test_pruning_baselines():
    rng = np.random.default_rng(5)
    head = _random_head(rng, n_features=128, n_hidden=40)
    x = rng.standard_normal((150, 128))
    y = pruning.head_logits(x, head).argmax(axis=1)  # labels the head gets 100 % right
    res = pruning.pruning_baselines(x, y, head, rng=np.random.default_rng(0))
    assert set(res) == {"none", "magnitude", "angle", "random"}
    for entry in res.values():
        assert set(entry) == {"n_pruned", "accuracy", "correct", "threshold"}
        right = pruning.unbits(entry["correct"])  # per sample, and it agrees with the accuracy
        assert len(right) == len(y) and right.mean() == pytest.approx(entry["accuracy"])
    assert res["none"] == {
        "n_pruned": 0,
        "accuracy": 1.0,
        "correct": "1" * len(y),
        "threshold": None,
    }
    contrib = gedeon.feature_contributions(head.w_hidden, head.w_out)
    angles = gedeon.mean_angles(head.w_hidden, absolute=True)
    assert res["magnitude"]["threshold"] == pytest.approx(contrib.mean() - contrib.std())
    assert res["magnitude"]["n_pruned"] == np.count_nonzero(
        contrib < contrib.mean() - contrib.std()
    )
    assert res["angle"]["threshold"] == pytest.approx(angles.mean() - angles.std())
    assert res["angle"]["n_pruned"] == np.count_nonzero(angles < angles.mean() - angles.std())
    assert res["random"]["n_pruned"] == res["magnitude"]["n_pruned"] > 0
    assert res["random"]["threshold"] is None
    for name in ("magnitude", "angle", "random"):
        assert 0.0 < res[name]["accuracy"] < 1.0
    raw = pruning.pruning_baselines(x, y, head, absolute_angles=False, rng=0)
    signed = gedeon.mean_angles(head.w_hidden, absolute=False)
    assert raw["angle"]["threshold"] == pytest.approx(signed.mean() - signed.std())


def test_default_ratios():
    r = pruning.default_ratios()
    assert len(r) == 32
    assert r[0] == 0.0 and r[-1] == 0.99
    assert np.all(np.diff(r) > 0)
    assert 0.80 in r and 0.85 in r and 0.96 in r and 0.82 not in r
    assert np.array_equal(r, np.round(r, 2))


def test_ratio_sweep_random_shape_and_counts():
    rng = np.random.default_rng(6)
    head = _random_head(rng, n_features=50)
    x = rng.standard_normal((40, 50))
    y = rng.integers(0, 7, 40)
    ratios = [0.0, 0.15, 0.5, 0.99]
    df = pruning.ratio_sweep(x, y, head, ratios, draws=4, rng=np.random.default_rng(1))
    assert list(df.columns) == ["ratio", "draw", "n_pruned", "n_kept", "accuracy", "correct"]
    assert all(pruning.unbits(c).mean() == a for c, a in zip(df["correct"], df["accuracy"]))
    assert len(df) == 16
    assert df["draw"].tolist() == [0, 1, 2, 3] * 4
    assert df.groupby("ratio")["n_pruned"].first().tolist() == [0, 8, 25, 50]  # round(r * 50)
    assert (df["n_pruned"] + df["n_kept"] == 50).all()
    assert df["accuracy"].between(0, 1).all()
    again = pruning.ratio_sweep(x, y, head, ratios, draws=4, rng=np.random.default_rng(1))
    pd.testing.assert_frame_equal(df, again)
    with pytest.raises(ValueError):
        pruning.ratio_sweep(x, y, head, [1.5], draws=1, rng=0)


def test_magnitude_sweep_prunes_useless_features_first():
    x, y, head = _useless_feature_task()
    assert pruning.accuracy(x, y, head) == 1.0
    contrib = gedeon.feature_contributions(head.w_hidden, head.w_out)
    assert np.all(contrib[20:] == 0.0) and np.all(contrib[:20] > 0)
    ratios = np.arange(0, 11) / 30  # prune 0..10 features: exactly the useless ones
    mag = pruning.ratio_sweep(x, y, head, ratios, draws=5, rng=0, order="magnitude")
    assert len(mag) == 11 and (mag["draw"] == 0).all()
    assert (mag["accuracy"] == 1.0).all()
    rnd = pruning.ratio_sweep(x, y, head, [10 / 30], draws=20, rng=0, order="random")
    assert rnd["accuracy"].mean() < 0.9  # random pruning hits informative features
    # one step further, magnitude order must start removing informative features
    more = pruning.ratio_sweep(x, y, head, [15 / 30], draws=1, rng=None, order="magnitude")
    assert more["accuracy"].iloc[0] < 1.0


def test_angle_sweep_is_deterministic_and_prunes_smallest_angle_first():
    rng = np.random.default_rng(8)
    head = _random_head(rng, n_features=30)
    x = rng.standard_normal((60, 30))
    y = rng.integers(0, 7, 60)
    a = pruning.ratio_sweep(x, y, head, [0.1, 0.5], draws=3, rng=None, order="angle")
    b = pruning.ratio_sweep(x, y, head, [0.1, 0.5], draws=3, rng=None, order="angle")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 2
    angles = gedeon.mean_angles(head.w_hidden)
    keep = np.ones(30, dtype=bool)
    keep[np.argsort(angles)[:3]] = False
    assert a["accuracy"].iloc[0] == pruning.accuracy(x, y, head, keep)


def test_smallest_kept_within():
    df = pd.DataFrame(
        {
            "n_kept": [100, 100, 50, 50, 20, 20, 10, 10, 5, 5],
            "accuracy": [0.90, 0.90, 0.895, 0.885, 0.88, 0.86, 0.70, 0.70, 0.90, 0.90],
        }
    )
    # means: 100 -> .90, 50 -> .89 (ok), 20 -> .87 (fail), 10 -> .70, 5 -> .90 (lucky, ignored)
    assert pruning.smallest_kept_within(df, 0.90, tolerance=0.01) == 50
    assert pruning.smallest_kept_within(df, 0.90, tolerance=0.05) == 20
    assert pruning.smallest_kept_within(df, 0.70, tolerance=0.0) == 5
    with pytest.raises(ValueError):
        pruning.smallest_kept_within(df, 0.95, tolerance=0.01)
    with pytest.raises(ValueError):
        pruning.smallest_kept_within(df.iloc[:0], 0.9)


def test_smallest_kept_within_on_real_sweep():
    x, y, head = _useless_feature_task()
    df = pruning.ratio_sweep(x, y, head, np.arange(0, 31) / 30, 1, None, order="magnitude")
    assert pruning.smallest_kept_within(df, 1.0, tolerance=0.0) == 20


def test_pair_elimination_matches_a_hand_worked_head():
    # hidden unit k copies input k (k = 0, 1); output k reads hidden unit k: inputs 2, 3 unused
    w_hidden = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    head = pruning.HeadWeights(w_hidden, np.zeros(2), np.eye(2), np.zeros(2), "relu")
    feats = np.array([[1.0, 0, 5, 5], [1.0, 0, -5, 5], [0, 1.0, 5, -5], [0, 1.0, 5, 5]])
    labels = np.array([0, 0, 1, 1])
    acc = pruning.pair_elimination(feats, labels, head)
    assert acc.shape == (4, 4) and np.array_equal(acc, acc.T)
    assert acc[2, 3] == acc[2, 2] == 1.0  # unused inputs: nothing changes
    # without input 0 class-0 items score (0, 0): argmax picks class 0, still right
    assert acc[0, 0] == 1.0 and acc[0, 2] == 1.0
    # without input 1 class-1 items score (0, 0) too and become class 0: half right
    assert acc[1, 1] == acc[1, 3] == acc[0, 1] == 0.5


def _falloff(n_kept, significant):
    ratio = [1 - k / max(n_kept) for k in n_kept]
    return pd.DataFrame({"n_kept": n_kept, "ratio": ratio, "significant": significant})


def test_falloff_is_where_every_more_pruned_count_is_significant_too():
    # 486 kept is significant on its own, 461 and 435 are not: the uncorrected "largest
    # significant count" would say 486; walking up from the most pruned count stops at 435
    f = _falloff([512, 486, 461, 435, 100, 10], [False, True, False, False, True, True])
    assert pruning.falloff_fixed_sequence(f) == 100
    f = _falloff([512, 100, 10, 1], [False, True, True, False])  # most pruned not significant
    assert pruning.falloff_fixed_sequence(f) is None
    f = _falloff([512, 100, 10], [False, True, True])
    assert pruning.falloff_fixed_sequence(f.sample(frac=1, random_state=0)) == 100  # any order
    assert pruning.falloff_fixed_sequence(_falloff([512], [False])) is None
