"""Model factory: a timm backbone, a feature→hidden→output head, and a freeze policy.

The network is split into a frozen ``trunk`` and a trainable ``tail`` so that the
trunk's activations can be computed once per image and shared by every trial
(fer_ray.train.features). For timm ResNets the split is at block granularity:
``train_last_convs=2`` on resnet18 trains ``layer4.1.conv1`` and ``layer4.1.conv2``
(with their BatchNorms ``layer4.1.bn1``/``layer4.1.bn2``) plus the head, which is
seed 000's "last two convolutional layers and the fully connected classifier".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn

from fer_ray.config import ModelConfig

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class Head(nn.Module):
    """Seed 000's 3-layer classifier; ``fc1``/``fc2`` are what the Gedeon analyses read."""

    def __init__(self, n_features: int, hidden: int, n_classes: int, activation: str = "relu"):
        super().__init__()
        self.fc1 = nn.Linear(n_features, hidden)
        self.act = ACTIVATIONS[activation]()
        self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Tail(nn.Module):
    """Trainable part: the unfrozen blocks, global pooling and the head."""

    def __init__(self, blocks: nn.Module, pool: nn.Module, head: Head):
        super().__init__()
        self.blocks = blocks
        self.pool = pool
        self.head = head

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The head's input features (512 for resnet18): what pruning zeroes."""
        return torch.flatten(self.pool(self.blocks(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(x))


class FerNet(nn.Module):
    """``trunk`` (frozen, eval mode) → ``tail`` (blocks + pool + head)."""

    def __init__(self, trunk: nn.Module, tail: Tail, trained_modules: list[str]):
        super().__init__()
        self.trunk = trunk
        self.tail = tail
        self.trained_modules = trained_modules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            z = self.trunk(x)
        return self.tail(z)

    def train(self, mode: bool = True) -> FerNet:
        super().train(mode)
        self.trunk.eval()  # frozen BatchNorm statistics, identical to the cached path
        return self


@dataclass(frozen=True)
class BackboneSplit:
    trunk: nn.Module
    blocks: nn.Module
    pool: nn.Module
    n_features: int
    trained_modules: list[str]


def _resnet_units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    units = [(n, getattr(model, n)) for n in ("conv1", "bn1", "act1", "maxpool")]
    for layer in ("layer1", "layer2", "layer3", "layer4"):
        for i, block in enumerate(getattr(model, layer)):
            units.append((f"{layer}.{i}", block))
    return units


def split_backbone(model: nn.Module, train_last_convs: int) -> BackboneSplit:
    """Cut a timm ResNet after the block holding the first trained conv.

    Convs of the tail that come before the last ``train_last_convs`` ones stay
    frozen (e.g. resnet50's ``layer4.2.conv1`` when two convs are trained).
    """
    if not all(hasattr(model, a) for a in ("conv1", "layer4", "global_pool")):
        raise ValueError(
            f"{type(model).__name__}: the trunk/tail split knows timm ResNet-style models "
            "(conv1, layer1..4, global_pool); set model.train_last_convs: -1 to fine-tune all"
        )
    units = _resnet_units(model)
    convs = [
        (ui, f"{un}.{cn}" if cn else un)
        for ui, (un, unit) in enumerate(units)
        for cn, m in unit.named_modules()
        if isinstance(m, nn.Conv2d) and "downsample" not in cn
    ]
    n = len(convs) if train_last_convs < 0 else train_last_convs
    if not 0 <= n <= len(convs):
        raise ValueError(f"model.train_last_convs={train_last_convs}: backbone has {len(convs)}")
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


def load_weights(model: nn.Module, weights: str) -> str:
    """Apply ``model.weights``; returns a description for the report."""
    if weights == "synthetic":
        raise ValueError(
            "model.weights=synthetic needs the pretrained state (fer_ray.models.pretrain); "
            "pass it as create_backbone(..., state=...)"
        )
    if weights == "none":
        return "none (random init from model.init_seed)"
    if weights == "imagenet":
        return "imagenet (timm pretrained)"
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(
            f"model.weights={weights!r}: expected 'none', 'imagenet' or a state-dict file"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    head_keys = {k for k in missing if k.startswith(("fc.", "head.", "classifier."))}
    if set(missing) - head_keys:
        raise ValueError(f"{path}: state dict lacks backbone keys, e.g. {sorted(missing)[:3]}")
    return f"state dict {path} ({len(unexpected)} unused keys)"


def create_backbone(
    cfg: ModelConfig,
    state: dict[str, torch.Tensor] | None = None,
    random_only: bool = False,
    in_chans: int = 3,
) -> nn.Module:
    """A timm backbone, deterministic for a given ``cfg``.

    ``state`` (e.g. the synthetic-pretrained weights) overrides ``cfg.weights``;
    ``random_only`` skips loading (the start of pretraining).
    """
    if not timm.is_model(cfg.backbone):
        import difflib

        close = difflib.get_close_matches(cfg.backbone, timm.list_models(), n=3)
        raise ValueError(f"model.backbone={cfg.backbone!r} is not a timm model; close: {close}")
    pretrained = cfg.weights == "imagenet" and not random_only and state is None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.init_seed)
        try:
            model = timm.create_model(
                cfg.backbone, pretrained=pretrained, num_classes=0, in_chans=in_chans
            )
        except OSError as e:  # hub unreachable and the weights not in the local cache
            if not pretrained:
                raise
            raise RuntimeError(
                f"model.weights=imagenet: timm could not fetch {cfg.backbone}'s pretrained weights"
                f" ({type(e).__name__}). Run once where the model hub is reachable (the weights"
                " are then cached under ~/.cache/huggingface), or save a state dict with"
                " torch.save(model.state_dict(), path) and set model.weights=<path>."
            ) from e
    if state is not None:
        model.load_state_dict(state)
    elif not random_only:
        load_weights(model, cfg.weights)
    return model


def create_model(
    cfg: ModelConfig,
    n_classes: int,
    hidden: int,
    head_seed: int,
    backbone_state: dict[str, torch.Tensor] | None = None,
) -> FerNet:
    """Backbone + head; the head is initialised from ``head_seed`` (one per trial)."""
    split = split_backbone(create_backbone(cfg, backbone_state), cfg.train_last_convs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(head_seed)
        head = Head(split.n_features, hidden, n_classes, cfg.activation)
    tail = Tail(split.blocks, split.pool, head)
    return FerNet(split.trunk, tail, split.trained_modules)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]
