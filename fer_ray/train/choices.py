"""Seed 004's training choices, resolved: class weights, the phases of a fine-tune, the LR test.

The config's ``train.class_weights``, ``train.lr`` and ``train.phases`` are plain values;
this module turns them into what ``fit`` takes (a weight vector, ``Phase`` objects with
parameter groups) and into plain descriptions for the stage's summary. No Ray here.

Layer groups (fastai's "layer groups" for discriminative rates): the trainable parameters of
the trained module in module order, grouped by the top-level child of the tail's ``blocks``
(a residual block, a conv layer), then ``pool`` (AlexNet/VGG's classifier layers, when they
train) and ``head``. Groups hold exact parameter names, so a block that trains only in part
(``model.train_last_convs`` cutting through it) never unfreezes its frozen parameters.

Phase entries (``train.phases``):

* ``train: tail`` (default) without ``lr_low``: every trainable parameter at the phase's lr,
  exactly the ensemble's default phase (``Phase(lr, epochs)``);
* ``train: tail`` with ``lr_low``: ``Phase.discriminative(lr * lr_low, lr, epochs, groups)``:
  the earliest group at ``lr * lr_low``, the head at ``lr``, geometric in between;
* ``train: head``: only the head trains; the tail's convs (and their BatchNorm statistics)
  stay as they are for the phase.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from fer_ray.config_checks import number, relative_lr
from fer_ray.errors import ConfigError
from fer_ray.train.class_weights import balanced_class_weights, named_class_weights
from fer_ray.train.loop import Phase, make_optimizer

if TYPE_CHECKING:
    from fer_ray.config import TrainConfig

__all__ = [
    "class_weight_values",
    "default_phases",
    "describe_phases",
    "is_default",
    "layer_groups",
    "lr_test_optimizer",
    "resolve_phases",
    "training_phases",
]


def layer_groups(module: nn.Module) -> list[tuple[str, tuple[str, ...]]]:
    """(label, parameter names) of the module's trainable parameters, earliest first."""
    groups: dict[str, list[str]] = {}
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        parts = name.split(".")
        at = 1 if parts[0] == "tail" else 0  # the whole net (pixels) or its tail (features)
        depth = 2 if parts[at] == "blocks" and len(parts) > at + 2 else 1
        groups.setdefault(".".join(parts[: at + depth]), []).append(name)
    if not groups:
        raise ConfigError("train.phases: the model has no trainable parameter")
    return [(label, tuple(names)) for label, names in groups.items()]


def _head(groups: list[tuple[str, tuple[str, ...]]]) -> tuple[str, tuple[str, ...]]:
    heads = [g for g in groups if g[0].split(".")[-1] == "head"]
    if not heads:
        raise ConfigError("train.phases: train: head needs a module with a trainable head")
    return heads[0]


def resolve_phases(
    specs: Sequence[dict[str, Any]], base_lr: float, module: nn.Module
) -> list[Phase]:
    """``train.phases`` entries as ``Phase`` objects (see the module docstring)."""
    groups = layer_groups(module)
    out = []
    for spec in specs:
        lr = relative_lr(spec.get("lr", "x1"), base_lr)
        epochs = int(spec["epochs"])
        if spec.get("train", "tail") == "head":
            out.append(Phase(lr, epochs, ((_head(groups)[1], 1.0),)))
        elif "lr_low" in spec:
            low = float(number(spec["lr_low"]))
            out.append(Phase.discriminative(lr * low, lr, epochs, [g for _, g in groups]))
        else:
            out.append(Phase(lr, epochs))
    return out


def default_phases(base_lr: float, epochs: int, lr2: float | None, epochs2: int) -> list[Phase]:
    """The ensemble's two phases: ``epochs`` at ``base_lr``, then ``epochs2`` at ``lr2``."""
    phases = [Phase(base_lr, epochs)]
    if epochs2 > 0:
        phases.append(Phase(float(lr2), epochs2))
    return phases


def training_phases(
    specs: Sequence[dict[str, Any]] | None,
    base_lr: float,
    module: nn.Module | None,
    *,
    epochs: int,
    phase2_lr: float | str,
    phase2_epochs: int,
) -> list[Phase]:
    """``train.phases`` when set, else the ensemble's default two phases (phase 2's lr
    ``phase2_lr``: a number or ``x<f>`` of ``base_lr``)."""
    if specs is not None:
        if module is None:
            raise ConfigError("train.phases needs the model to resolve its layer groups")
        return resolve_phases(specs, base_lr, module)
    lr2 = relative_lr(phase2_lr, base_lr) if phase2_epochs > 0 else None
    return default_phases(base_lr, epochs, lr2, phase2_epochs)


def describe_phases(
    phases: Sequence[Phase], module: nn.Module | None, specs: Sequence[dict] | None = None
) -> list[dict[str, Any]]:
    """Plain (JSON) descriptions: epochs, lr, what trains, per-group multipliers and rates."""
    labels: dict[tuple[str, ...], str] = {}
    if module is not None:
        labels = {names: label for label, names in layer_groups(module)}
    out = []
    for i, ph in enumerate(phases):
        spec = (specs or [{}] * len(phases))[i]
        entry: dict[str, Any] = {"epochs": ph.epochs, "lr": ph.lr}
        if ph.groups is None:
            entry["train"] = "tail"
            entry["groups"] = []
        else:
            entry["train"] = spec.get("train", "tail")
            entry["groups"] = [
                {
                    "layers": labels.get(tuple(g), ", ".join(map(str, g))),
                    "multiplier": m,
                    "lr": ph.lr * m,
                    "n_tensors": len(g),
                }
                for g, m in ph.groups
            ]
        if "lr_low" in spec:
            entry["lr_low"] = float(number(spec["lr_low"]))
        if "lr" in spec:
            entry["lr_from"] = str(spec["lr"])
        out.append(entry)
    return out


def class_weight_values(
    rule: str | Sequence[float],
    class_names: Sequence[str],
    train_labels: np.ndarray | None = None,
) -> np.ndarray | None:
    """``train.class_weights`` as one weight per class of ``class_names`` (None: unweighted).

    ``balanced`` needs ``train_labels``: the labels of the member's TRAINING split only."""
    n = len(class_names)
    if isinstance(rule, str):
        if rule == "none":
            return None
        if rule == "seed004":
            return named_class_weights(class_names)
        if rule == "balanced":
            if train_labels is None:
                raise ConfigError("train.class_weights=balanced needs the training labels")
            return balanced_class_weights(np.asarray(train_labels, dtype=np.int64), n)
        raise ConfigError(f"train.class_weights: unknown rule {rule!r}")
    w = np.asarray(rule, dtype=np.float64)
    if w.shape != (n,):
        raise ConfigError(
            f"train.class_weights has {w.size} weights but the run has {n} classes"
            f" ({', '.join(class_names)}); give one weight per class in that order"
        )
    if not np.all(np.isfinite(w)) or (w <= 0).any():
        raise ConfigError(f"train.class_weights must be finite and > 0, got {w.tolist()}")
    return w


def is_default(train: TrainConfig) -> bool:
    """No training choice set: the ensemble trains exactly as before these keys existed."""
    return train.class_weights == "none" and train.lr is None and train.phases is None


def lr_test_optimizer(
    phase: Phase, module: nn.Module, cfg: TrainConfig
) -> Callable[[nn.Module], torch.optim.Optimizer]:
    """``lr_find``'s optimizer factory for ``phase``'s parameters on the finder's copy: the
    same groups (by name) and multipliers, every other parameter frozen on the copy."""
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    groups = [(tuple(names), 1.0)] if phase.groups is None else list(phase.groups)

    def build(work: nn.Module) -> torch.optim.Optimizer:
        params = dict(work.named_parameters())
        chosen = {n for g, _ in groups for n in g}
        for n, p in params.items():
            p.requires_grad_(n in chosen)
        return make_optimizer(
            [{"params": [params[n] for n in g], "lr": m} for g, m in groups], cfg, 1.0
        )

    return build
