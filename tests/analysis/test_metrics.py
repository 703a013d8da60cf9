"""Tests for confusion matrices, per-class reports and ensemble voting."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import classification_report, confusion_matrix

from fer_ray.analysis import metrics

# 3 classes, 8 samples.  Rows = true, columns = predicted:
#   true 0: preds 0, 0, 1      -> [2, 1, 0]
#   true 1: preds 1, 2         -> [0, 1, 1]
#   true 2: preds 2, 2, 0      -> [1, 0, 2]
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2])
PREDS = np.array([0, 0, 1, 1, 2, 2, 2, 0])
HAND_CM = np.array([[2, 1, 0], [0, 1, 1], [1, 0, 2]])


def test_confusion_hand_example():
    cm = metrics.confusion(LABELS, PREDS, 3)
    np.testing.assert_array_equal(cm, HAND_CM)
    assert cm.dtype == np.int64


def test_confusion_keeps_absent_classes():
    cm = metrics.confusion(LABELS, PREDS, 5)
    assert cm.shape == (5, 5)
    np.testing.assert_array_equal(cm[:3, :3], HAND_CM)
    assert cm[3:].sum() == 0 and cm[:, 3:].sum() == 0


def test_confusion_matches_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    np.testing.assert_array_equal(metrics.confusion(y, p, 7), confusion_matrix(y, p))
    assert metrics.confusion(y, p, 7).sum() == 500


def test_per_class_report_hand_example():
    rep = metrics.per_class_report(LABELS, PREDS, ["angry", "happy", "sad", "surprise"])
    assert list(rep.columns) == ["precision", "recall", "f1", "support"]
    assert list(rep.index) == ["angry", "happy", "sad", "surprise"]
    # column sums of HAND_CM = predicted counts [3, 2, 3]
    np.testing.assert_allclose(rep["precision"].to_numpy(), [2 / 3, 1 / 2, 2 / 3, 0.0])
    np.testing.assert_allclose(rep["recall"].to_numpy(), [2 / 3, 1 / 2, 2 / 3, 0.0])
    np.testing.assert_allclose(rep["f1"].to_numpy(), [2 / 3, 1 / 2, 2 / 3, 0.0])
    assert rep["support"].tolist() == [3, 2, 3, 0]


def test_per_class_report_matches_sklearn():
    rng = np.random.default_rng(1)
    names = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    y, p = rng.integers(0, 7, 300), rng.integers(0, 7, 300)
    rep = metrics.per_class_report(y, p, names)
    ref = classification_report(y, p, output_dict=True, zero_division=0)
    for i, name in enumerate(names):
        assert rep.loc[name, "precision"] == pytest.approx(ref[str(i)]["precision"])
        assert rep.loc[name, "recall"] == pytest.approx(ref[str(i)]["recall"])
        assert rep.loc[name, "f1"] == pytest.approx(ref[str(i)]["f1-score"])
        assert rep.loc[name, "support"] == ref[str(i)]["support"]


def test_soft_vote_identical_members_equals_member():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(7), size=20)
    np.testing.assert_allclose(metrics.soft_vote([p, p, p]), p, atol=1e-15)


def test_soft_vote_and_vote_accuracy_hand_example():
    a = np.array([[0.6, 0.4], [0.2, 0.8], [0.5, 0.5]])
    b = np.array([[0.2, 0.8], [0.4, 0.6], [0.9, 0.1]])
    np.testing.assert_allclose(metrics.soft_vote([a, b]), [[0.4, 0.6], [0.3, 0.7], [0.7, 0.3]])
    # member a alone gets sample 0 right (label 0); the vote flips it to class 1
    assert metrics.vote_accuracy([a, b], [0, 1, 0]) == pytest.approx(2 / 3)
    assert metrics.vote_accuracy([a], [0, 1, 0]) == 1.0  # tie in row 2 -> lowest index
    with pytest.raises(ValueError):
        metrics.soft_vote([])
    with pytest.raises(ValueError):
        metrics.soft_vote([a, b[:2]])


def test_mean_std_sample_convention_matches_paper_table3():
    acc = [87.2549, 89.2157, 85.2941, 92.1569, 92.1569, 91.1765, 91.1765, 87.2549]
    acc += [95.0980, 93.1373, 91.1765, 89.2157, 91.1765, 88.2353, 90.1961]
    mean, std = metrics.mean_std(acc)
    assert mean == pytest.approx(90.2614, abs=1e-4)
    assert std == pytest.approx(2.55, abs=0.005)  # ddof=1; ddof=0 would give 2.47
    assert metrics.mean_std([3.0]) == (3.0, 0.0)
    assert metrics.mean_std([1.0, 3.0]) == (2.0, pytest.approx(np.sqrt(2)))
    with pytest.raises(ValueError):
        metrics.mean_std([])
