"""Tests for the learning-rate range test (fer_ray.train.lr_finder)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fer_ray.errors import ConfigError, DataError
from fer_ray.train.lr_finder import lr_find, plot_lr_finder, suggest_lr


def _regression(seed=0, n=512, d=10):
    """y = x w + 1 + small noise, features of unequal scale (a non-trivial Hessian)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) * torch.linspace(0.5, 2.0, d)
    y = x @ torch.randn(d, generator=g) + 1.0 + 0.1 * torch.randn(n, generator=g)
    return x, y


def _mse(out, y):
    return nn.functional.mse_loss(out.squeeze(-1), y)


def _linear(d=10):
    torch.manual_seed(0)
    return nn.Linear(d, 1)


def _sgd(module):
    return torch.optim.SGD(module.parameters(), lr=1.0)


def _critical_lr(x):
    """Full-batch gradient descent on this MSE diverges above 2 / lambda_max(Hessian)."""
    xa = torch.cat([x, torch.ones(len(x), 1)], 1).double()
    hessian = 2 * xa.T @ xa / len(x)
    return 2 / torch.linalg.eigvalsh(hessian).max().item()


def _train(lr, x, y, epochs=3, batch_size=32):
    model = _linear()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        before = _mse(model(x), y).item()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            opt.zero_grad()
            _mse(model(x[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        return before, _mse(model(x), y).item()


def _find(x, y, seed=0, **kw):
    return lr_find(
        _linear(),
        x,
        y,
        batch_size=32,
        generator=torch.Generator().manual_seed(seed),
        optimizer_factory=_sgd,
        loss_fn=_mse,
        **kw,
    )


@pytest.mark.parametrize(("data_seed", "seed"), [(0, 0), (1, 2), (3, 3)])
def test_suggested_lr_trains_and_100x_diverges(data_seed, seed):
    x, y = _regression(data_seed)
    res = _find(x, y, seed=seed)
    assert res.suggestion == "min_div10"
    assert res.suggested_lr == pytest.approx(res.min_loss_lr / 10)
    crit = _critical_lr(x)  # about 0.22-0.25 for these draws
    assert res.diverged  # end_lr = 10 is far past crit
    assert crit / 100 < res.suggested_lr < crit
    assert 100 * res.suggested_lr > crit
    before, after = _train(res.suggested_lr, x, y)
    assert after < 0.05 * before  # a few epochs at the suggestion fit the line
    before, after = _train(100 * res.suggested_lr, x, y)
    assert not np.isfinite(after) or after > 100 * before


def test_model_weights_and_global_rng_are_unchanged():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.Dropout(0.3), nn.Linear(16, 3))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.get_rng_state()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 6, generator=g), torch.randint(0, 3, (200,), generator=g)
    res = lr_find(
        model,
        x,
        y,
        batch_size=16,
        generator=torch.Generator().manual_seed(0),
        optimizer_factory=lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9),
        num_it=60,
    )
    assert len(res.lrs) >= 20  # it did train the copy
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k  # incl. BatchNorm running stats
    assert not model.training
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_deterministic_for_a_seed():
    x, y = _regression()
    a, b, c = _find(x, y, seed=4), _find(x, y, seed=4), _find(x, y, seed=5)
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.lrs, b.lrs)
    assert a.suggested_lr == b.suggested_lr
    assert not np.array_equal(a.losses[: len(c.losses)], c.losses[: len(a.losses)])


def test_schedule_smoothing_and_divergence_rule():
    x, y = _regression()
    res = _find(x, y, start_lr=1e-6, end_lr=1e-2, num_it=40)  # stays below crit
    assert not res.diverged and len(res.lrs) == 40
    np.testing.assert_allclose(res.lrs, np.logspace(-6, -2, 40), rtol=1e-12)
    avg, ref = 0.0, []
    for i, loss in enumerate(res.losses):  # fastai's debiased moving average, beta 0.98
        avg = 0.98 * avg + 0.02 * loss
        ref.append(avg / (1 - 0.98 ** (i + 1)))
    np.testing.assert_allclose(res.smoothed, ref, rtol=1e-12)
    res = _find(x, y)  # 1e-7 .. 10 over 100 steps: diverges
    assert res.diverged and len(res.lrs) < 100
    best = np.minimum.accumulate(res.smoothed)
    assert res.smoothed[-1] > 4 * best[-2] or not np.isfinite(res.smoothed[-1])
    assert (res.smoothed[1:-1] <= 4 * best[:-2]).all()  # it did not stop later than needed


def test_parameter_groups_keep_their_ratio():
    x, y = _regression()
    made = []

    def two_groups(module):
        opt = torch.optim.SGD(
            [{"params": [module.weight], "lr": 0.1}, {"params": [module.bias], "lr": 1.0}]
        )
        made.append(opt)
        return opt

    res = lr_find(
        _linear(),
        x,
        y,
        batch_size=32,
        generator=torch.Generator().manual_seed(0),
        optimizer_factory=two_groups,
        loss_fn=_mse,
        num_it=30,
        end_lr=1e-3,
    )
    w_lr, b_lr = (g["lr"] for g in made[0].param_groups)
    assert b_lr == pytest.approx(res.lrs[-1]) and w_lr == pytest.approx(0.1 * b_lr)


def test_suggest_lr_on_a_hand_made_curve():
    lrs = np.array([1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0])
    loss = np.array([3.0, 3.0, 2.0, 0.5, 0.4, 0.45, 5.0])
    # np.gradient: idx1 -0.5, idx2 (0.5 - 3) / 2 = -1.25, idx3 (0.4 - 2) / 2 = -0.8 -> idx2
    assert suggest_lr(lrs, loss, "steepest", 0, 0) == 1e-2
    assert suggest_lr(lrs, loss, "min_div10", 0, 0) == pytest.approx(0.1)  # min at 1.0
    loss_nan = loss.copy()
    loss_nan[-1] = np.nan
    assert suggest_lr(lrs, loss_nan, "min_div10", 0, 0) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="suggestion"):
        suggest_lr(lrs, loss, "valley")


def test_plot_writes_a_png(tmp_path):
    x, y = _regression()
    res = _find(x, y)
    out = plot_lr_finder(res, tmp_path / "sub" / "lr.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    d = res.to_dict()
    assert d["suggested_lr"] == res.suggested_lr and len(d["lrs"]) == len(res.lrs)


def test_bad_input_raises():
    x, y = _regression()
    with pytest.raises(DataError, match="rows"):
        _find(x, y[:-1])
    with pytest.raises(ConfigError, match="start_lr < end_lr"):
        _find(x, y, start_lr=1.0, end_lr=0.1)
    with pytest.raises(ConfigError, match="num_it"):
        _find(x, y, num_it=1)
