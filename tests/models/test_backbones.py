"""Every registered non-ResNet backbone (and seed 002's ResNet-152) through the registry:
it builds at its published input size, splits into trunk/tail, trains one step on CPU with
tiny inputs, and exactly the documented parameters train (issue 14).

No weights are downloaded: ``model.weights=none`` everywhere (``imagenet`` is the hub's).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fer_ray.config import ModelConfig
from fer_ray.errors import ModelError
from fer_ray.models import backbones
from fer_ray.models.factory import create_backbone, create_model
from fer_ray.models.head import Head

# backbone → a tiny input side its layers accept (at least its min_input_size)
TINY = {"alexnet": 63, "vgg19": 32, "small_cnn": 16, "resnet152": 32}
# VGG-19 (140 M parameters) and ResNet-152 take 10-15 s each per test on 2 shared cores
HEAVY = ("vgg19", "resnet152")


def _params(*cases: tuple) -> list:
    return [
        pytest.param(*c, marks=pytest.mark.slow) if c[0] in HEAVY else pytest.param(*c)
        for c in cases
    ]


def _trained(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def _with_bias(*names: str) -> set[str]:
    return {f"{n}.{k}" for n in names for k in ("weight", "bias")}


HEAD = _with_bias("tail.head.fc1", "tail.head.fc2")

# (backbone, train_last_convs) → the trainable parameters the freeze policy documents
EXPECTED = {
    ("alexnet", 2): _with_bias(
        "tail.blocks.8", "tail.blocks.10", "tail.pool.classifier.1", "tail.pool.classifier.4"
    ),
    ("alexnet", 0): _with_bias("tail.pool.classifier.1", "tail.pool.classifier.4"),
    ("vgg19", 2): _with_bias(
        "tail.blocks.32", "tail.blocks.34", "tail.pool.pre_logits.fc1", "tail.pool.pre_logits.fc2"
    ),
    ("vgg19", 0): _with_bias("tail.pool.pre_logits.fc1", "tail.pool.pre_logits.fc2"),
    ("small_cnn", 1): _with_bias("tail.blocks.conv3"),
    ("small_cnn", 0): set(),
    ("resnet152", 2): {
        "tail.blocks.0.conv2.weight", "tail.blocks.0.bn2.weight", "tail.blocks.0.bn2.bias",
        "tail.blocks.0.conv3.weight", "tail.blocks.0.bn3.weight", "tail.blocks.0.bn3.bias",
    },
}  # fmt: skip
MODULES = {
    ("alexnet", 2): ["features.8", "features.10", "classifier.1", "classifier.4"],
    ("vgg19", 2): ["features.32", "features.34", "pre_logits.fc1", "pre_logits.fc2"],
    ("small_cnn", 1): ["conv3"],
    ("resnet152", 2): ["layer4.2.conv2", "layer4.2.conv3", "layer4.2.bn2", "layer4.2.bn3"],
}


def _cfg(backbone: str, k: int, dropout: float = 0.0) -> ModelConfig:
    return ModelConfig(backbone=backbone, weights="none", train_last_convs=k, head_dropout=dropout)


def test_registry_lists_the_paper_backbones() -> None:
    names = backbones.BACKBONES.names()
    assert {"alexnet", "vgg19", "resnet152", "small_cnn"} <= set(names)
    spec = {n: backbones.BACKBONES.get(n) for n in TINY}
    assert [spec[n].input_size for n in TINY] == [224, 224, 96, 224]
    assert [spec[n].min_input_size for n in TINY] == [63, 32, 8, 16]
    assert spec["small_cnn"].weights == ("none",)
    assert spec["alexnet"].weights == spec["vgg19"].weights == ("none", "imagenet", "synthetic")
    assert [spec[n].map_unit for n in TINY] == ["7", "6", "relu3", None]
    backbones.check_input_size("alexnet", 63)
    with pytest.raises(ModelError, match=r"model.backbone=alexnet needs faces.size >= 63, got 48"):
        backbones.check_input_size("alexnet", 48)


@pytest.mark.parametrize("backbone", _params(*[(b,) for b in TINY]))
def test_builds_at_its_input_size(backbone: str) -> None:
    spec = backbones.BACKBONES.get(backbone)
    model = create_model(_cfg(backbone, 2), n_classes=8, hidden=16, head_seed=0).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, spec.input_size, spec.input_size))
    assert tuple(out.shape) == (1, 8)
    assert model.tail.head.fc1.in_features == create_backbone(_cfg(backbone, 2)).num_features
    # the published side and a tiny one give the head the same number of features
    with torch.no_grad():
        tiny = torch.randn(2, 3, TINY[backbone], TINY[backbone])
        assert model.tail.pooled(model.trunk(tiny)).shape == (2, model.tail.head.fc1.in_features)


@pytest.mark.parametrize(("backbone", "k"), list(EXPECTED))
def test_exactly_the_documented_parameters_train(backbone: str, k: int) -> None:
    model = create_model(_cfg(backbone, k), n_classes=3, hidden=4, head_seed=0)
    assert _trained(model) == EXPECTED[backbone, k] | HEAD
    if (backbone, k) in MODULES:
        assert model.trained_modules == MODULES[backbone, k]
    assert not any(p.requires_grad for p in model.trunk.parameters())


@pytest.mark.parametrize("backbone", ["alexnet", "vgg19", "small_cnn"])
def test_minus_one_trains_everything_from_an_empty_trunk(backbone: str) -> None:
    model = create_model(_cfg(backbone, -1), n_classes=3, hidden=4, head_seed=0)
    assert len(model.trunk) == 0
    assert all(p.requires_grad for p in model.parameters())
    conv_names = [n for n, m in model.tail.blocks.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(conv_names) == {"alexnet": 5, "vgg19": 16, "small_cnn": 3}[backbone]


@pytest.mark.parametrize(
    ("backbone", "k"), _params(("alexnet", 2), ("vgg19", 1), ("small_cnn", -1), ("resnet152", 2))
)
def test_one_training_step_moves_only_the_trained_parameters(backbone: str, k: int) -> None:
    torch.manual_seed(0)
    model = create_model(_cfg(backbone, k, dropout=0.5), n_classes=3, hidden=8, head_seed=0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x = torch.randn(4, 3, TINY[backbone], TINY[backbone])
    y = torch.tensor([0, 1, 2, 1])
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-4)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trained = _trained(model)
    assert moved <= trained
    assert {"tail.head.fc1.weight", "tail.head.fc2.weight"} <= moved
    assert not any(n.startswith("trunk.") for n in moved)


def test_head_dropout_zero_is_the_old_head_and_half_drops_in_training_only() -> None:
    torch.manual_seed(0)
    old = Head(12, 6, 3)
    torch.manual_seed(0)
    half = Head(12, 6, 3, dropout=0.5)
    assert list(old.state_dict()) == list(half.state_dict()) == [
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"
    ]  # fmt: skip
    assert isinstance(old.drop, nn.Identity) and half.drop.p == 0.5
    x = torch.randn(64, 12)
    with torch.no_grad():
        assert torch.equal(old.eval()(x), half.eval()(x))
        half.train()
        torch.manual_seed(1)
        dropped = half(x)
        hidden = half.act(half.fc1(x))
    assert not torch.equal(dropped, old(x))
    # in training, about half the hidden units of each row are zeroed before fc2
    torch.manual_seed(1)
    mask = torch.nn.functional.dropout(torch.ones_like(hidden), 0.5, True)
    torch.testing.assert_close(dropped, half.fc2(hidden * mask))
    assert 0.35 < (mask == 0).float().mean().item() < 0.65


def test_small_cnn_through_the_registry_is_the_papers_net() -> None:
    """fc1 → ReLU → dropout 0.5 → fc2 with hidden 1024 on 256·12·12 features: seed 003."""
    model = create_model(_cfg("small_cnn", -1, dropout=0.5), n_classes=7, hidden=1024, head_seed=0)
    head = model.tail.head
    assert (head.fc1.in_features, head.fc1.out_features, head.fc2.out_features) == (36864, 1024, 7)
    assert head.drop.p == 0.5 and head.act.name == "relu"
    assert [n for n, _ in model.tail.blocks.named_children()] == [
        f"{kind}{i}" for i in (1, 2, 3) for kind in ("conv", "relu", "pool")
    ]
    with pytest.raises(ModelError, match="no pretrained weights"):
        create_backbone(ModelConfig(backbone="small_cnn", weights="imagenet"))
