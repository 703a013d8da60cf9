"""Tests for top-loss flagging and its scoring (fer_ray.analysis.cleaning)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from fer_ray.analysis import cleaning
from fer_ray.data.noise import flip_labels
from fer_ray.errors import ConfigError, DataError


def test_top_losses_orders_largest_first_and_breaks_ties_by_index():
    losses = [0.5, 2.0, 0.5, 3.0, 2.0, 0.1]
    np.testing.assert_array_equal(cleaning.top_losses(losses), [3, 1, 4, 0, 2, 5])
    np.testing.assert_array_equal(cleaning.top_losses(losses, 3), [3, 1, 4])
    np.testing.assert_array_equal(cleaning.top_losses(losses, 0), [])
    np.testing.assert_array_equal(cleaning.top_losses(losses, 10), [3, 1, 4, 0, 2, 5])
    many_ties = np.zeros(1000)
    np.testing.assert_array_equal(cleaning.top_losses(many_ties, 5), np.arange(5))


def test_flag_top_losses_by_k_and_fraction():
    losses = np.array([0.5, 2.0, 0.5, 3.0, 2.0, 0.1])
    np.testing.assert_array_equal(
        cleaning.flag_top_losses(losses, k=2), [False, True, False, True, False, False]
    )
    # round(0.5 * 6) = 3: the tie at 2.0 is cut by index, both 2.0s are in
    np.testing.assert_array_equal(
        cleaning.flag_top_losses(losses, fraction=0.5), [False, True, False, True, True, False]
    )
    assert cleaning.flag_top_losses(losses, fraction=0.25).sum() == 2  # round(1.5) = 2
    assert cleaning.flag_top_losses(losses, fraction=0.0).sum() == 0
    with pytest.raises(ConfigError, match="exactly one"):
        cleaning.flag_top_losses(losses, k=1, fraction=0.1)
    with pytest.raises(ConfigError, match="exactly one"):
        cleaning.flag_top_losses(losses)
    with pytest.raises(ConfigError, match="k must be"):
        cleaning.flag_top_losses(losses, k=-1)


def test_flag_quality_on_hand_worked_cases():
    t, f = True, False
    q = cleaning.flag_quality(
        np.array([t, t, f, t, f, f, f, f, f, f]), np.array([t, f, f, t, t, f, f, f, f, f])
    )
    # TP = 2 (items 0, 3); flagged 3; flipped 3
    assert q["n_true_positive"] == 2 and q["n_flagged"] == 3 and q["n_flipped"] == 3
    assert q["precision"] == pytest.approx(2 / 3)
    assert q["recall"] == pytest.approx(2 / 3)
    assert q["f1"] == pytest.approx(2 / 3)
    assert q["base_rate"] == pytest.approx(0.3)
    q = cleaning.flag_quality(np.array([t, t, t, t]), np.array([t, f, f, f]))
    assert (q["precision"], q["recall"]) == (0.25, 1.0)
    assert q["f1"] == pytest.approx(2 * 0.25 / 1.25)  # 0.4
    q = cleaning.flag_quality(np.zeros(4, bool), np.array([t, f, f, f]))
    assert (q["precision"], q["recall"], q["f1"]) == (0.0, 0.0, 0.0)


def test_flag_quality_matches_sklearn_on_random_masks():
    rng = np.random.default_rng(0)
    flagged, flipped = rng.random(500) < 0.2, rng.random(500) < 0.1
    q = cleaning.flag_quality(flagged, flipped)
    p, r, f1, _ = precision_recall_fscore_support(flipped, flagged, average="binary")
    assert (q["precision"], q["recall"], q["f1"]) == pytest.approx((p, r, f1))
    with pytest.raises(DataError, match="bool masks"):
        cleaning.flag_quality(flagged.astype(int), flipped)
    with pytest.raises(DataError, match="equal 1-D shapes"):
        cleaning.flag_quality(flagged[:-1], flipped)


def test_top_losses_find_every_flipped_label_of_a_model_that_knows_the_clean_ones():
    # a "model" that puts 0.7 on each item's CLEAN label: flipped items get -log(0.1)
    n, n_classes = 400, 4
    clean = np.random.default_rng(1).integers(0, n_classes, n)
    train = np.arange(n) < 300
    noisy, flipped = flip_labels(clean, 0.1, n_classes, seed=2, mask=train)
    probs = np.full((n, n_classes), 0.1)
    probs[np.arange(n), clean] = 0.7
    losses = cleaning.cross_entropy_losses(probs[train], noisy[train])
    flagged = cleaning.flag_top_losses(losses, k=int(flipped.sum()))
    q = cleaning.flag_quality(flagged, flipped[train])
    assert q["n_flipped"] == 30
    assert (q["precision"], q["recall"]) == (1.0, 1.0)
    assert q["base_rate"] == pytest.approx(0.1)


def test_gallery_table_matches_fastai_plot_top_losses():
    names = ["angry", "happy", "sad"]
    probs = np.array(
        [
            [0.80, 0.10, 0.10],  # label angry: loss -log 0.8
            [0.10, 0.85, 0.05],  # label sad, predicted happy: loss -log 0.05 (largest)
            [0.30, 0.30, 0.40],  # label happy, predicted sad: loss -log 0.3
            [0.60, 0.20, 0.20],  # label happy, predicted angry: loss -log 0.2
        ]
    )
    labels = np.array([0, 2, 1, 1])
    table = cleaning.top_loss_table(
        probs,
        labels,
        3,
        names,
        index=np.array([10, 11, 12, 13]),
        flipped=np.array([0, 1, 0, 1]) > 0,
    )
    assert list(table.columns) == [*cleaning.GALLERY_COLUMNS, "flipped"]
    assert list(table["index"]) == [11, 13, 12]
    assert list(table["rank"]) == [1, 2, 3]
    assert list(table["predicted_name"]) == ["happy", "angry", "sad"]
    assert list(table["true_name"]) == ["sad", "happy", "happy"]
    np.testing.assert_allclose(table["loss"], -np.log([0.05, 0.2, 0.3]), rtol=1e-9)
    np.testing.assert_allclose(table["p_true"], [0.05, 0.2, 0.3])
    np.testing.assert_allclose(table["p_predicted"], [0.85, 0.6, 0.4])
    assert table.loc[0, "title"] == "happy/sad / 3.00 / 0.05"  # prediction/actual/loss/prob
    assert list(table["flipped"]) == [True, True, False]
    weighted = cleaning.top_loss_table(probs, labels, 4, names, losses=[9.0, 0.0, 1.0, 1.0])
    assert list(weighted["index"]) == [0, 2, 3, 1]  # ranked by the given losses, ties by index
    with pytest.raises(DataError, match="3 class names"):
        cleaning.top_loss_table(probs, labels, 2, names[:2])
    with pytest.raises(DataError, match=r"lie in 0\.\.2"):
        cleaning.top_loss_table(probs, np.array([0, 3, 1, 1]), 2, names)


def test_losses_must_be_finite():
    with pytest.raises(DataError, match="finite"):
        cleaning.top_losses([0.1, np.nan])
    with pytest.raises(DataError, match="1-D"):
        cleaning.top_losses(np.zeros((2, 2)))
