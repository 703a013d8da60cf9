"""Tests for per-class loss weights (fer_ray.train.class_weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from fer_ray.errors import DataError
from fer_ray.train.class_weights import (
    SEED004_WEIGHTS,
    balanced_class_weights,
    named_class_weights,
)

# Seed 004, Table 1: training images per class (angry, fear, happy, neutral, sad, surprise)
SEED004_TRAIN_COUNTS = [3996, 4098, 7216, 4966, 4831, 3172]


def test_balanced_matches_sklearn_on_random_labels():
    y = np.random.default_rng(0).choice(5, size=777, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    ours = balanced_class_weights(y, 5)
    ref = compute_class_weight("balanced", classes=np.arange(5), y=y)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_balanced_on_seed004_counts():
    y = np.repeat(np.arange(6), SEED004_TRAIN_COUNTS)
    w = balanced_class_weights(y, 6)
    assert y.size == 28279  # Table 1 total
    np.testing.assert_allclose(w, 28279 / (6 * np.array(SEED004_TRAIN_COUNTS)))
    assert w[2] == pytest.approx(0.6532, abs=1e-4)  # happy, the largest class
    assert w[5] == pytest.approx(1.4859, abs=1e-4)  # surprise, the smallest
    # every class carries the same total weight, and the mean item weight is 1
    np.testing.assert_allclose(w * SEED004_TRAIN_COUNTS, 28279 / 6)
    assert w[y].mean() == pytest.approx(1.0)


def test_balanced_weights_equalise_the_weighted_loss_of_a_constant_predictor():
    # a predictor that is equally wrong on every item: with balanced weights each class
    # contributes the same share of torch's weighted cross-entropy
    y = torch.from_numpy(np.repeat(np.arange(3), [50, 30, 20]))
    w = torch.from_numpy(balanced_class_weights(y.numpy(), 3))
    logits = torch.zeros(len(y), 3)
    per_item = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    shares = [float((w[c] * per_item[y == c]).sum()) for c in range(3)]
    assert shares == pytest.approx([shares[0]] * 3)


def test_missing_class_and_bad_labels_raise():
    with pytest.raises(DataError, match=r"missing \[2\]"):
        balanced_class_weights(np.array([0, 1, 1, 3]), 4)
    with pytest.raises(DataError, match=r"0\.\.2"):
        balanced_class_weights(np.array([0, 1, 3]), 3)
    with pytest.raises(DataError, match="integer"):
        balanced_class_weights(np.array([0.0, 1.0]), 2)


def test_seed004_weights_in_fer_ray_class_order():
    order = ["angry", "fear", "happy", "sad", "surprise", "neutral"]  # fer2013_seed004.yaml
    np.testing.assert_allclose(named_class_weights(order), [0.10, 0.30, 0.05, 0.20, 0.20, 0.15])
    assert sum(SEED004_WEIGHTS.values()) == pytest.approx(1.0)
    np.testing.assert_allclose(named_class_weights(["Happy", "FEAR"]), [0.05, 0.30])
    with pytest.raises(DataError, match="disgust"):
        named_class_weights(["angry", "disgust"])
