"""Several grid cells as one batched model (fer_ray.train.packed) give fit's numbers."""

import numpy as np
import pytest
import torch
from torch import nn

from fer_ray.config import ModelConfig, TrainConfig
from fer_ray.models.factory import create_model
from fer_ray.train.loop import Phase, Split, fit
from fer_ray.train.packed import fit_packed


class Cell(nn.Module):
    """A conv block with BatchNorm and a head: the shape of the grid's tail, small."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(8, 12)
        self.fc2 = nn.Linear(12, 3)

    def forward(self, x):
        z = torch.relu(self.bn(self.conv(x))).mean((2, 3))
        return self.fc2(torch.relu(self.fc1(z)))


def _data(n=100):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, 4, 4, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long() + (x[:, 1].mean((1, 2)) > 0.1).long()
    return Split(x[:70], y[:70]), Split(x[70:], y[70:])


def _compare(make, train, val, lrs, seeds, epochs, cfg):
    alone, packed = [make(s) for s in seeds], [make(s) for s in seeds]
    ref = [fit(m, train, val, [Phase(lr, epochs)], cfg, s, keep_best=False)
           for m, lr, s in zip(alone, lrs, seeds)]  # fmt: skip
    got = fit_packed(packed, train, val, lrs, epochs, cfg, seeds)
    for a, b, ra, rb in zip(alone, packed, ref, got):
        for k, v in a.state_dict().items():
            torch.testing.assert_close(b.state_dict()[k].float(), v.float(), rtol=1e-5, atol=1e-5)
        for ha, hb in zip(ra["history"], rb["history"]):
            assert ha["val_acc"] == hb["val_acc"] and ha["train_acc"] == hb["train_acc"]
            assert hb["train_loss"] == pytest.approx(ha["train_loss"], abs=1e-5)
            assert hb["val_loss"] == pytest.approx(ha["val_loss"], abs=1e-5)
        assert ra["best"]["step"] == rb["best"]["step"]


def test_packed_cells_equal_cells_trained_alone():
    torch.set_num_threads(1)
    train, val = _data()
    _compare(Cell, train, val, [0.01, 0.003, 0.001], [11, 12, 13], 4, TrainConfig(batch_size=16))


def test_packed_sgd_cells_equal_cells_trained_alone():
    train, val = _data()
    cfg = TrainConfig(batch_size=32, optimizer="sgd", momentum=0.9, weight_decay=1e-4)
    _compare(Cell, train, val, [0.05, 0.01], [1, 2], 3, cfg)


@pytest.mark.slow
def test_packed_resnet_tails_equal_tails_trained_alone():
    """The grid's real tail (resnet18 layer4.1 + head) on cached-feature-shaped inputs."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((90, 512, 2, 2)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 7, 90))
    train, val = Split(x[:64], y[:64]), Split(x[64:], y[64:])
    mcfg = ModelConfig(weights="none")

    def make(seed):
        return create_model(mcfg, 7, 20, head_seed=seed).tail

    _compare(make, train, val, [0.005, 0.001], [5, 6], 2, TrainConfig(batch_size=32))


def test_packing_needs_one_lr_and_seed_per_module():
    train, val = _data()
    with pytest.raises(ValueError, match="one lr and one seed"):
        fit_packed([Cell(0), Cell(1)], train, val, [0.1], 1, TrainConfig(), [0, 1])
