"""Backbone registry: ``model.backbone`` → how to build the network and its freeze policy.

A freeze policy cuts a backbone into a frozen ``trunk`` (run once per image when the feature
cache applies) and trained ``blocks``, then says which parameters inside those blocks train.
Adding a backbone is one ``BACKBONES.register`` line with a ``BackboneSpec`` (a builder and a
policy), in this module or in a module of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from fer_ray.errors import ModelError
from fer_ray.registry import Registry


@dataclass(frozen=True)
class BackboneSplit:
    trunk: nn.Module
    blocks: nn.Module
    pool: nn.Module
    n_features: int
    trained_modules: list[str]


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone (``build(pretrained, in_chans)``) and cut it (``split``)."""

    build: Callable[[bool, int], nn.Module]
    split: Callable[[nn.Module, int], BackboneSplit]
    input_size: int  # the input side its published weights were trained at
    weights: tuple[str, ...]  # model.weights sources it can load (a state-dict path always)
    description: str = ""


def _resnet_units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    units = [(n, getattr(model, n)) for n in ("conv1", "bn1", "act1", "maxpool")]
    for layer in ("layer1", "layer2", "layer3", "layer4"):
        for i, block in enumerate(getattr(model, layer)):
            units.append((f"{layer}.{i}", block))
    return units


def split_resnet(model: nn.Module, train_last_convs: int) -> BackboneSplit:
    """Cut a timm ResNet after the block holding the first trained conv.

    ``train_last_convs=2`` on resnet18 trains ``layer4.1.conv1`` and ``layer4.1.conv2`` (with
    their BatchNorms ``layer4.1.bn1``/``bn2``) plus the head: seed 000's "last two
    convolutional layers and the fully connected classifier". Convs of the tail that come
    before the last ``train_last_convs`` ones stay frozen (e.g. resnet50's ``layer4.2.conv1``
    when two convs are trained); ``-1`` trains every conv (the whole network).
    """
    units = _resnet_units(model)
    convs = [
        (ui, f"{un}.{cn}" if cn else un)
        for ui, (un, unit) in enumerate(units)
        for cn, m in unit.named_modules()
        if isinstance(m, nn.Conv2d) and "downsample" not in cn
    ]
    n = len(convs) if train_last_convs < 0 else train_last_convs
    if not 0 <= n <= len(convs):
        raise ModelError(
            f"model.train_last_convs={train_last_convs}: this backbone has {len(convs)} convs"
        )
    trained_convs = [name for _, name in convs[len(convs) - n :]] if n else []
    cut = convs[len(convs) - n][0] if n else len(units)
    trunk = nn.Sequential(*[m for _, m in units[:cut]])
    blocks = nn.Sequential(*[m for _, m in units[cut:]])
    for p in model.parameters():
        p.requires_grad_(n == len(convs))  # training every conv trains everything
    trained = set(trained_convs)
    for name, unit in units[cut:]:
        for mname, m in unit.named_modules():
            full = f"{name}.{mname}" if mname else name
            if isinstance(m, nn.Conv2d) and full in trained:
                m.weight.requires_grad_(True)
            if isinstance(m, nn.BatchNorm2d):
                # a BatchNorm trains with the conv it follows: bnN after convN
                base, _, leaf = full.rpartition(".")
                conv = (
                    f"{base}.{leaf.replace('bn', 'conv')}" if base else leaf.replace("bn", "conv")
                )
                if conv in trained:
                    for p in m.parameters():
                        p.requires_grad_(True)
    trained_modules = trained_convs + [
        f"{c.rpartition('.')[0]}.{c.rpartition('.')[2].replace('conv', 'bn')}".lstrip(".")
        for c in trained_convs
    ]
    return BackboneSplit(trunk, blocks, model.global_pool, model.num_features, trained_modules)


def _timm(name: str) -> Callable[[bool, int], nn.Module]:
    def build(pretrained: bool, in_chans: int) -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=pretrained, num_classes=0, in_chans=in_chans)

    return build


BACKBONES: Registry[BackboneSpec] = Registry("backbone", "model.backbone")
for _name, _desc in (
    ("resnet18", "seed 000/001"),
    ("resnet34", "seed 004"),
    ("resnet50", ""),
    ("resnet101", ""),
    ("resnet152", "seed 002"),
):
    BACKBONES.register(
        _name,
        BackboneSpec(
            _timm(_name),
            split_resnet,
            224,
            ("none", "imagenet", "synthetic"),
            f"timm {_name}" + (f" ({_desc})" if _desc else ""),
        ),
    )
