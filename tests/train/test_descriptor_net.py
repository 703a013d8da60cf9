import numpy as np
import pytest

from fer_ray.config import TrainConfig
from fer_ray.recipes.descriptors import DescriptorsConfig
from fer_ray.train.descriptor_net import N_CLASSES, train_fold, zscore


def test_zscore_uses_the_training_rows_only():
    x = np.array([[1.0, 3.0], [3.0, 3.0], [100.0, -50.0]])
    mean, std = zscore(x, np.array([0, 1]))
    assert mean.tolist() == [2.0, 3.0]
    assert std.tolist() == [1.0, 1.0]  # column 1 is constant on the train rows: std 1, not 0


def test_train_fold_learns_a_separable_problem_and_scores_its_last_epoch():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(N_CLASSES), 20)
    x = rng.normal(size=(len(y), 10))
    x[:, 0] += 6 * np.cos(2 * np.pi * y / N_CLASSES)
    x[:, 1] += 6 * np.sin(2 * np.pi * y / N_CLASSES)
    val = np.arange(len(y)) % 4 == 0
    d = DescriptorsConfig(hidden=16, epochs=60, lr=0.01, batch_size=16)
    out = train_fold(x, y, np.flatnonzero(~val), np.flatnonzero(val), d, TrainConfig(), seed=0)
    assert out["w_hidden"].shape == (16, 10) and out["w_out"].shape == (N_CLASSES, 16)
    assert out["val_acc"] == pytest.approx(np.mean(out["val_preds"] == y[val]))
    assert out["val_acc"] > 0.8  # chance is 1/7
    assert np.allclose(out["val_features"], (x[val] - out["mean"]) / out["std"])
