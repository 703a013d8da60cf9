"""Seed 000's classifier head (features → hidden → classes) and its hidden activations.

The activation registry holds each function twice, for torch (training) and for numpy (the
Gedeon and pruning analyses recompute the head's logits on stored weights), so the two can
never disagree on which names exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fer_ray.registry import Registry


@dataclass(frozen=True)
class Activation:
    torch: Callable[[torch.Tensor], torch.Tensor]
    numpy: Callable[[np.ndarray], np.ndarray]


HEAD_ACTIVATIONS: Registry[Activation] = Registry("head activation", "model.activation")
HEAD_ACTIVATIONS.register(
    "relu", Activation(torch.relu, lambda z: np.maximum(z, 0.0)), help="seed 000 (assumed)"
)
HEAD_ACTIVATIONS.register("sigmoid", Activation(torch.sigmoid, lambda z: 1.0 / (1.0 + np.exp(-z))))
HEAD_ACTIVATIONS.register("tanh", Activation(torch.tanh, np.tanh))


class HiddenActivation(nn.Module):
    """A registered activation as a module (no parameters, so state dicts do not change)."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.fn = HEAD_ACTIVATIONS.get(name).torch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


class Head(nn.Module):
    """Seed 000's 3-layer classifier; ``fc1``/``fc2`` are what the Gedeon analyses read.

    ``dropout`` (``model.head_dropout``) drops hidden activations before ``fc2`` in training,
    as seed 003 does on its fully connected layer (p = 0.5). At 0 (the default) the module is
    an ``nn.Identity``: no parameters either way, so state dicts, RNG draws and every number
    are those of the head without it.
    """

    def __init__(
        self,
        n_features: int,
        hidden: int,
        n_classes: int,
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.fc1 = nn.Linear(n_features, hidden)
        self.act = HiddenActivation(activation)
        self.drop: nn.Module = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))
