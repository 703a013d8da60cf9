import pytest
import torch
from torch import nn

from fer_ray.config import TrainConfig
from fer_ray.train.loop import Phase, Split, fit


def _problem(seed=0, n=120):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return Split(x[: n * 2 // 3], y[: n * 2 // 3]), Split(x[n * 2 // 3 :], y[n * 2 // 3 :])


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


CFG = TrainConfig(batch_size=16)
PHASES = [Phase(0.05, 4), Phase(0.01, 3)]


def test_fit_learns_and_selects_best_on_val():
    train, val = _problem()
    st = fit(_model(), train, val, PHASES, CFG, seed=1)
    vals = [h["val_acc"] for h in st["history"]]
    assert len(st["history"]) == 7
    assert st["best"]["score"] == max(vals)
    assert max(vals) > 0.6  # 3 classes, chance ~0.33-0.5


def test_resume_from_any_epoch_gives_identical_weights():
    train, val = _problem()
    ref = _model()
    fit(ref, train, val, PHASES, CFG, seed=1)
    snaps = []
    fit(_model(), train, val, PHASES, CFG, seed=1, on_epoch=lambda row, snap: snaps.append(snap()))
    for k in (1, 4, 5):  # mid phase 1, phase boundary, mid phase 2
        m = _model()
        st = fit(m, train, val, PHASES, CFG, seed=1, state=snaps[k - 1])
        assert len(st["history"]) == 7
        for a, b in zip(ref.state_dict().values(), m.state_dict().values()):
            assert torch.allclose(a, b, atol=1e-6), f"resume after epoch {k} diverged"


def test_test_selection_requires_test_split():
    train, val = _problem()
    with pytest.raises(ValueError, match="needs a test split"):
        fit(_model(), train, val, PHASES, CFG, seed=1, select_on="test")
    st = fit(_model(), train, val, PHASES, CFG, seed=1, select_on="test", test=val)
    assert "test_acc" in st["history"][0]
