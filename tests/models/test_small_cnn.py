"""Tests for seed 003's small CNN (fer_ray.models.small_cnn)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fer_ray.errors import ModelError
from fer_ray.models import small_cnn as sc


@pytest.fixture(scope="module")
def net() -> sc.SmallCNN:
    torch.manual_seed(0)
    return sc.SmallCNN(7).eval()


def test_unit_names_and_layer_settings(net: sc.SmallCNN) -> None:
    names = [n for n, _ in net.units()]
    assert names == [f"{kind}{k}" for k in (1, 2, 3) for kind in ("conv", "relu", "pool")]
    convs = [m for _, m in net.units() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256]
    assert all(c.kernel_size == (5, 5) and c.stride == (1, 1) for c in convs)
    pools = [m for _, m in net.units() if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(2, 2)] * 3
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.LocalResponseNorm)) for m in net.modules())


def test_shapes_at_96_px(net: sc.SmallCNN) -> None:
    x = torch.randn(2, 3, 96, 96)
    shapes = {}
    h = x
    with torch.no_grad():
        for name, unit in net.units():
            h = unit(h)
            shapes[name] = tuple(h.shape)
        feats = net.forward_features(x)
        logits = net(x)
    assert shapes["conv1"] == shapes["relu1"] == (2, 64, 96, 96)
    assert shapes["pool1"] == (2, 64, 48, 48)
    assert shapes["conv2"] == (2, 128, 48, 48) and shapes["pool2"] == (2, 128, 24, 24)
    assert shapes["conv3"] == (2, 256, 24, 24) and shapes["pool3"] == (2, 256, 12, 12)
    assert net.num_features == 256 * 12 * 12 == 36864
    assert net.feature_shape == (256, 12, 12)
    assert tuple(feats.shape) == (2, 36864)
    torch.testing.assert_close(feats, net.pool(h))  # pool (flatten) of the last unit's output
    assert tuple(logits.shape) == (2, 7)


def test_conv3_has_256_maps(net: sc.SmallCNN) -> None:
    assert net.features.conv3.out_channels == 256
    with torch.no_grad():
        out = net.features[:7](torch.zeros(1, 3, 96, 96))  # conv1 … conv3
    assert out.shape[1] == 256


def test_valid_padding_shapes() -> None:
    # 96 -5+1=92 /2=46 -4=42 /2=21 -4=17 /2=8 (floor): 256·8·8
    m = sc.SmallCNN(0, padding=0, widths=(2, 2, 256))
    assert m.num_features == 256 * 8 * 8 == 16384
    with torch.no_grad():
        assert tuple(m(torch.zeros(1, 3, 96, 96)).shape) == (1, 16384)


def test_parameter_count_by_hand(net: sc.SmallCNN) -> None:
    conv1 = 3 * 5 * 5 * 64 + 64  # 4,864
    conv2 = 64 * 5 * 5 * 128 + 128  # 204,928
    conv3 = 128 * 5 * 5 * 256 + 256  # 819,456
    fc1 = 36864 * 1024 + 1024  # 37,749,760
    fc2 = 1024 * 7 + 7  # 7,175
    total = sum(p.numel() for p in net.parameters())
    assert conv1 + conv2 + conv3 == 1_029_248
    assert total == conv1 + conv2 + conv3 + fc1 + fc2 == 38_786_183
    backbone = sc.SmallCNN(0)
    assert sum(p.numel() for p in backbone.parameters()) == 1_029_248


def test_dropout_sits_between_hidden_activation_and_output(net: sc.SmallCNN) -> None:
    names = [n for n, _ in net.classifier.named_children()]
    assert names == ["fc1", "relu", "dropout", "fc2"]
    assert net.classifier.dropout.p == 0.5
    assert net.classifier.fc1.out_features == 1024
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        net.eval()
        a, b = net(x), net(x)
        torch.testing.assert_close(a, b)
        net.train()
        torch.manual_seed(1)
        hidden = net.classifier.relu(net.classifier.fc1(net.forward_features(x)))
        dropped = net.classifier.dropout(hidden)
        net.eval()
    on = hidden > 0
    kept = (dropped[on] != 0).float().mean().item()
    assert 0.45 < kept < 0.55  # ~half of the 2×1024 live units survive
    torch.testing.assert_close(dropped[dropped != 0], 2 * hidden[dropped != 0])


def test_init_is_deterministic_under_manual_seed() -> None:
    torch.manual_seed(123)
    a = sc.SmallCNN(0, widths=(8, 8, 8))
    torch.manual_seed(123)
    b = sc.SmallCNN(0, widths=(8, 8, 8))
    torch.manual_seed(124)
    c = sc.SmallCNN(0, widths=(8, 8, 8))
    for (k, va), vb, vc in zip(
        a.state_dict().items(), b.state_dict().values(), c.state_dict().values(), strict=True
    ):
        assert torch.equal(va, vb), k
        if k.endswith("weight"):
            assert not torch.equal(va, vc), k


def test_init_scales(net: sc.SmallCNN) -> None:
    w = net.features.conv2.weight  # fan_in 64·25 = 1600, 204,800 draws
    assert abs(w.std().item() / math.sqrt(2 / 1600) - 1) < 0.02
    assert abs(w.mean().item()) < 0.01 * math.sqrt(2 / 1600)
    assert all(torch.count_nonzero(m.bias) == 0 for m in net.modules() if hasattr(m, "bias"))
    torch.manual_seed(0)
    paper = sc.SmallCNN(0, widths=(64, 128, 8), init="paper")
    assert abs(paper.features.conv2.weight.std().item() - 1) < 0.02  # N(0, 1), seed 003 2.2


def test_wrong_input_is_a_model_error(net: sc.SmallCNN) -> None:
    with pytest.raises(ModelError, match=r"\(N, 3, S, S\).*96"):
        net(torch.zeros(1, 1, 96, 96))
    with pytest.raises(ModelError, match="square"):
        net(torch.zeros(1, 3, 96, 64))
    with pytest.raises(ModelError, match="input side 7 is too small; it needs >= 8"):
        net(torch.zeros(1, 3, 7, 7))
    assert sc.SmallCNN(0, padding=0).min_input() == 36  # 36→32→16→12→6→2→1
    with pytest.raises(ModelError, match="too small"):
        sc.SmallCNN(0, padding=0, image_size=16)  # 16→12→6→2→1→…
    with pytest.raises(ModelError, match="init"):
        sc.SmallCNN(0, init="xavier")


def test_split_trains_everything_by_default() -> None:
    m = sc.SmallCNN(0, widths=(4, 8, 16))
    split = sc.split_small_cnn(m, -1)
    assert len(split.trunk) == 0 and len(split.blocks) == 9
    assert split.trained_modules == ["conv1", "conv2", "conv3"]
    assert split.n_features == m.num_features == 16 * 12 * 12
    assert all(p.requires_grad for p in m.parameters())
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(split.pool(split.blocks(split.trunk(x))), m.forward_features(x))


def test_split_freezes_the_trunk() -> None:
    m = sc.SmallCNN(0, widths=(4, 8, 16))
    split = sc.split_small_cnn(m, 1)
    assert [n for n, _ in split.trunk.named_children()][-1] == "pool2"
    assert [n for n, _ in split.blocks.named_children()] == ["conv3", "relu3", "pool3"]
    assert split.trained_modules == ["conv3"]
    assert not any(p.requires_grad for p in split.trunk.parameters())
    assert all(p.requires_grad for p in split.blocks.parameters())
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(split.pool(split.blocks(split.trunk(x))), m.forward_features(x))
    with pytest.raises(ModelError, match="3 convs"):
        sc.split_small_cnn(m, 4)


def test_no_pretrained_weights_and_state_dict_loading(tmp_path) -> None:
    with pytest.raises(ModelError, match="no pretrained weights"):
        sc.build_small_cnn(True, 3)
    assert sc.SPEC.input_size == 96 and sc.SPEC.weights == ("none",)
    built = sc.build_small_cnn(False, 1)
    assert built.in_chans == 1 and isinstance(built.classifier, nn.Identity)
    torch.manual_seed(0)
    a = sc.SmallCNN(0, widths=(4, 8, 16))
    torch.manual_seed(1)
    b = sc.SmallCNN(0, widths=(4, 8, 16))
    path = tmp_path / "w.pt"
    torch.save(a.state_dict(), path)
    assert "state dict" in sc.load_small_cnn_weights(b, str(path))
    assert torch.equal(a.features.conv1.weight, b.features.conv1.weight)
    assert sc.load_small_cnn_weights(b, "none").startswith("none")
    with pytest.raises(ModelError, match="state-dict file"):
        sc.load_small_cnn_weights(b, str(tmp_path / "missing.pt"))
    torch.save({"other.weight": torch.zeros(1)}, path)
    with pytest.raises(ModelError, match="lacks"):
        sc.load_small_cnn_weights(b, str(path))


def test_other_input_sides_pool_to_the_design_grid(net: sc.SmallCNN) -> None:
    """At 96 px the adaptive pool is the identity; at 48 px each pool3 value fills a 2×2
    block of the 12×12 grid, so the head always sees 36864 features."""
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(net.pool.grid(net.features(x)), net.features(x))
        small = torch.randn(2, 3, 48, 48)
        maps = net.features(small)
        assert tuple(maps.shape) == (2, 256, 6, 6)
        feats = net.forward_features(small)
    assert tuple(feats.shape) == (2, net.num_features)
    grid = feats.view(2, 256, 12, 12)
    torch.testing.assert_close(grid[:, :, ::2, ::2], maps)
    torch.testing.assert_close(grid[:, :, 1::2, 1::2], maps)
    with torch.no_grad():
        assert tuple(net(torch.randn(1, 3, 8, 8)).shape) == (1, 7)
