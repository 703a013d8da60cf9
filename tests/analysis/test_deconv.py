"""Tests for Zeiler–Fergus deconvolution and the top-9 panels (fer_ray.analysis.deconv)."""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from fer_ray.analysis import deconv
from fer_ray.analysis.au_maps import receptive_field
from fer_ray.errors import DataError, ModelError
from fer_ray.models.small_cnn import SmallCNN


@pytest.fixture(scope="module")
def small() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN(0, widths=(4, 6, 8)).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(12, 3, 96, 96)


def _one_conv(weight: torch.Tensor, bias: float) -> nn.Conv2d:
    conv = nn.Conv2d(1, 1, weight.shape[-1], padding=weight.shape[-1] // 2)
    with torch.no_grad():
        conv.weight.copy_(weight.view(1, 1, *weight.shape[-2:]))
        conv.bias.fill_(bias)
    return conv


def test_single_conv_projects_the_filter_scaled_by_the_activation() -> None:
    # y = relu(w * x): the projection of activation a at (i, j) is a·w laid on x[i-1:i+2, j-1:j+2]
    w = torch.arange(1.0, 10.0).view(3, 3)
    net = nn.Sequential(OrderedDict(conv=_one_conv(w, 0.0), relu=nn.ReLU()))
    x = torch.rand(1, 1, 10, 10)
    with torch.no_grad():
        a = net(x)[0, 0, 4, 6].item()
    proj = deconv.deconvolve(net, x, "relu", 0, np.array([[4, 6]]))
    want = torch.zeros(1, 1, 10, 10)
    want[0, 0, 3:6, 5:8] = a * w
    torch.testing.assert_close(proj, want)


def test_relu_rule_is_deconvnet_not_gradient() -> None:
    one = torch.ones(1, 1)
    x = torch.rand(1, 1, 6, 6)  # in [0, 1)
    # conv1 bias -10 kills every unit forward, conv2 bias +5 revives them: gradient 0, but the
    # deconvnet rectifies the backward signal only, so the activation 5 comes back at (2, 3).
    net = nn.Sequential(
        OrderedDict(c1=_one_conv(one, -10.0), r1=nn.ReLU(), c2=_one_conv(one, 5.0), r2=nn.ReLU())
    )
    want = torch.zeros(1, 1, 6, 6)
    want[0, 0, 2, 3] = 5.0
    torch.testing.assert_close(deconv.deconvolve(net, x, "r2", 0, np.array([[2, 3]])), want)
    xg = x.clone().requires_grad_(True)
    net(xg)[0, 0, 2, 3].backward()
    assert torch.count_nonzero(xg.grad) == 0
    # a negative backward signal is cut at r1 although r1 passes it forward: deconv 0, grad -1
    net = nn.Sequential(
        OrderedDict(c1=_one_conv(one, 10.0), r1=nn.ReLU(), c2=_one_conv(-one, 20.0), r2=nn.ReLU())
    )
    assert torch.count_nonzero(deconv.deconvolve(net, x, "r2", 0, np.array([[2, 3]]))) == 0
    xg = x.clone().requires_grad_(True)
    net(xg)[0, 0, 2, 3].backward()
    assert xg.grad[0, 0, 2, 3].item() == -1.0


def test_projection_shape_and_support(small: SmallCNN, images: torch.Tensor) -> None:
    act, pos = deconv.map_maxima(small, images, "relu3")
    channel = int(np.argmax(act.min(0)))  # a map that fires in every image
    assert act[:, channel].min() > 0
    proj = deconv.deconvolve(small, images, "relu3", channel)
    assert proj.shape == images.shape
    rf = receptive_field(small, "relu3")
    boxes = rf.boxes(pos[:, channel], 96)
    for n, (x0, y0, x1, y1) in enumerate(boxes):
        inside = torch.zeros(96, 96, dtype=torch.bool)
        inside[y0:y1, x0:x1] = True
        energy = proj[n].abs().sum(0)
        assert energy[inside].sum() > 0  # non-zero where the map fired
        assert torch.count_nonzero(energy[~inside]) == 0  # exactly zero outside its field
    # the default position is the argmax: same as passing map_maxima's positions
    torch.testing.assert_close(
        deconv.deconvolve(small, images, "relu3", channel, pos[:, channel]), proj
    )


def test_projection_is_linear_in_the_activation(small: SmallCNN, images: torch.Tensor) -> None:
    # deconvnet is linear in its seed: doubling the input doubles every activation (no bias
    # in the way when biases are 0, as initialised), hence doubles the projection.
    x = images[:2]
    p1 = deconv.deconvolve(small, x, "conv3", 1)
    p2 = deconv.deconvolve(small, 2 * x, "conv3", 1)
    torch.testing.assert_close(p2, 2 * p1, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_matches_captum_deconvolution(small: SmallCNN, images: torch.Tensor) -> None:
    attr = pytest.importorskip("captum.attr")
    x = images[:3]
    act, pos = deconv.map_maxima(small, x, "relu3")
    upto = small.features[:8]  # conv1 … relu3
    d = attr.Deconvolution(upto)
    for n in range(3):
        i, j = pos[n, 5]
        ref = d.attribute(x[n : n + 1], target=(5, int(i), int(j)))
        ours = deconv.deconvolve(small, x[n : n + 1], "relu3", 5, pos[n : n + 1, 5])
        torch.testing.assert_close(ours, act[n, 5] * ref, rtol=1e-4, atol=1e-6)


def test_map_maxima_values_and_positions(small: SmallCNN, images: torch.Tensor) -> None:
    act, pos = deconv.map_maxima(small, images, "conv3", batch_size=5)
    with torch.no_grad():
        out = small.features[:7](images).numpy()
    assert act.shape == (12, 8) and pos.shape == (12, 8, 2)
    np.testing.assert_allclose(act, out.max(axis=(2, 3)), rtol=1e-6)
    n, c = np.meshgrid(np.arange(12), np.arange(8), indexing="ij")
    np.testing.assert_allclose(out[n, c, pos[..., 0], pos[..., 1]], act, rtol=1e-6)


def test_model_state_is_restored(small: SmallCNN, images: torch.Tensor) -> None:
    small.train()
    try:
        deconv.deconvolve(small, images[:1], "relu2", 0)
        assert all(m.training for m in small.modules())
        assert all(not m._backward_hooks for m in small.modules())
    finally:
        small.eval()


def test_panel_png(tmp_path, small: SmallCNN, images: torch.Tensor) -> None:
    top = deconv.top_activations(small, images, "relu3", k=9)
    assert top.indices.shape == (8, 9) and top.positions.shape == (8, 9, 2)
    assert (np.diff(top.values, axis=1) <= 0).all()  # strongest first
    display = (np.random.default_rng(0).uniform(0, 255, (12, 96, 96, 3))).astype(np.uint8)
    path = deconv.save_map_panel(tmp_path / "p" / "m2.png", small, images, "relu3", 2,
                                 display=display, top=top)  # fmt: skip
    grid = cv2.imread(str(path))[..., ::-1]
    # 2 rows × 9 tiles; conv3's 32 px field enlarged ×2 to 64 px, 2 px gaps
    assert grid.shape == (2 * 66 + 2, 9 * 66 + 2, 3)
    first = top.indices[2, 0]
    x0, y0, x1, y1 = top.rf.boxes(top.positions[2, 0])
    crop = np.zeros((32, 32, 3), np.uint8)  # parts outside the image stay black
    sx0, sy0 = max(x0, 0), max(y0, 0)
    crop[sy0 - y0 : min(y1, 96) - y0, sx0 - x0 : min(x1, 96) - x0] = display[
        first, sy0 : min(y1, 96), sx0 : min(x1, 96)
    ]
    big = cv2.resize(crop, (64, 64), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(grid[2:66, 2:66], big)
    # second row: the projection, 0 at mid grey, ±largest magnitude at 0/255 (Zeiler–Fergus)
    proj = deconv.deconvolve(small, images[[first]], "relu3", 2, top.positions[2, :1])[0]
    shown = ((proj / (2 * proj.abs().max()) + 0.5) * 255 + 0.5).clamp(0, 255).byte()
    shown = shown.permute(1, 2, 0).numpy()
    tile = np.full((32, 32, 3), 128, np.uint8)
    tile[sy0 - y0 : min(y1, 96) - y0, sx0 - x0 : min(x1, 96) - x0] = shown[
        sy0 : min(y1, 96), sx0 : min(x1, 96)
    ]
    big = cv2.resize(tile, (64, 64), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(grid[68:132, 2:66], big)
    assert len(np.unique(big)) > 10  # the projection has structure, not a flat tile
    paths = deconv.save_layer_panels(tmp_path / "layer", small, images, "relu3", maps=[0, 3])
    assert [p.name for p in paths] == ["relu3_map000.png", "relu3_map003.png"]
    assert all(cv2.imread(str(p)) is not None for p in paths)


def test_errors(small: SmallCNN, images: torch.Tensor) -> None:
    with pytest.raises(ModelError, match="no unit"):
        deconv.deconvolve(small, images[:1], "conv9", 0)
    with pytest.raises(ModelError, match="no map 8"):
        deconv.deconvolve(small, images[:1], "conv3", 8)
    with pytest.raises(DataError, match="positions"):
        deconv.deconvolve(small, images[:2], "conv3", 0, np.zeros((1, 2)))
    with pytest.raises(DataError, match="lie in"):
        deconv.deconvolve(small, images[:1], "conv3", 0, np.array([[24, 0]]))
    with pytest.raises(DataError, match="N, C, H, W"):
        deconv.map_maxima(small, images[0], "conv3")
