"""Model factory: a registered backbone, its freeze policy, and seed 000's head.

The network is split into a frozen ``trunk`` and a trainable ``tail`` so that the trunk's
activations can be computed once per image and shared by every trial
(fer_ray.train.features). Backbones and their freeze policies are in
``fer_ray.models.backbones``; weight sources in ``fer_ray.models.weights``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from fer_ray.errors import ModelError
from fer_ray.models import weights as weight_sources
from fer_ray.models.backbones import BACKBONES, BackboneSplit
from fer_ray.models.head import Head

if TYPE_CHECKING:
    from fer_ray.config import ModelConfig


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

    def train(self, mode: bool = True) -> Tail:
        """Frozen BatchNorms inside the tail (e.g. ``layer4.0.bn1`` and the downsample's BN
        when ``train_last_convs=3`` on resnet18) stay in eval mode: frozen means frozen
        statistics too, not batch statistics that drift with every batch."""
        super().train(mode)
        for m in self.blocks.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in m.parameters()
            ):
                m.eval()
        return self


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


def load_weights(model: nn.Module, weights: str) -> str:
    """Apply ``model.weights``; returns a description for the report."""
    src = weight_sources.source(weights)
    if src is not None and src.stand_in:
        raise ModelError(
            f"model.weights={weights} needs the pretrained state (fer_ray.models.pretrain); "
            "pass it as create_backbone(..., state=...)"
        )
    if src is not None:
        return src.description
    weight_sources.check(weights)
    path = Path(weights).expanduser()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise ModelError(f"model.weights={weights!r}: cannot read a state dict ({e})") from e
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"model.weights={weights!r}: the file holds no state dict")
    missing, unexpected = model.load_state_dict(state, strict=False)
    head_keys = {k for k in missing if k.startswith(("fc.", "head.", "classifier."))}
    if set(missing) - head_keys:
        raise ModelError(f"{path}: state dict lacks backbone keys, e.g. {sorted(missing)[:3]}")
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
    spec = BACKBONES.get(cfg.backbone)
    src = weight_sources.source(cfg.weights)
    pretrained = bool(src and src.timm_pretrained) and not random_only and state is None
    # the hub gets seconds to answer; then only its local cache is read (weight_sources)
    hub = weight_sources.hub_or_cache(spec.hub) if pretrained else contextlib.nullcontext()
    with torch.random.fork_rng(devices=[]), hub as unreachable:
        torch.manual_seed(cfg.init_seed)
        try:
            model = spec.build(pretrained, in_chans)
        except OSError as e:  # hub unreachable and the weights not in the local cache
            if not pretrained:
                raise
            why = (
                f"; the model hub did not answer within {weight_sources.HUB_TIMEOUT_S:g} s"
                f" ({unreachable}) and they are not in the local cache"
                if unreachable
                else ""
            )
            raise ModelError(
                f"model.weights=imagenet: timm could not fetch {cfg.backbone}'s pretrained weights"
                f" ({type(e).__name__}{why}). Run once where the model hub is reachable (the"
                " weights are then cached under ~/.cache/huggingface), or save a state dict with"
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
    split = split_backbone(create_backbone(cfg, backbone_state), cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(head_seed)
        head = Head(split.n_features, hidden, n_classes, cfg.activation, cfg.head_dropout)
    tail = Tail(split.blocks, split.pool, head)
    return FerNet(split.trunk, tail, split.trained_modules)


def split_backbone(model: nn.Module, cfg: ModelConfig) -> BackboneSplit:
    """The registered freeze policy of ``cfg.backbone`` applied to ``model``."""
    return BACKBONES.get(cfg.backbone).split(model, cfg.train_last_convs)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def check_model(cfg: ModelConfig) -> str:
    """Build the backbone and apply its freeze policy once, in the driver, so that a bad
    ``model.*`` setting fails before any stage instead of inside a Ray task; returns the
    weights' description for the log."""
    src = weight_sources.source(cfg.weights)
    stand_in = src is not None and src.stand_in
    model = create_backbone(cfg, random_only=stand_in)
    split_backbone(model, cfg)
    return src.description if src is not None else f"state dict {cfg.weights}"
