"""The trial data bundle: what every grid trial and ensemble member reads, built once.

Inputs (cached trunk features, or crops when a random recipe must see pixels), labels, groups,
the shared test holdout and the grid folds. The stage that builds it puts it into Ray's object
store once; every trial reads it by reference, never from a driver-local path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from fer_ray.data import recipes
from fer_ray.data.splits import member_split
from fer_ray.train.loop import Split


@dataclass
class TrialData:
    x: np.ndarray  # cached trunk features (float32 NCHW) or crops (uint8 NHWC)
    kind: str  # "features" | "pixels"
    y: np.ndarray
    groups: np.ndarray
    test: np.ndarray  # bool: the shared grouped holdout, never used by the grid
    folds: np.ndarray  # grid fold per item, -1 on test items
    n_classes: int
    backbone_state: dict | None = None  # a stand-in weight source: the pretrained backbone
    recipe: str = "none"  # train.recipe: how pixels become network input

    def split(self, mask: np.ndarray, train: bool = False) -> Split:
        """Inputs of ``mask``'s items; a training split of a random recipe stays uint8
        (it is transformed batch by batch, see ``train_transform``), every other one is final."""
        idx = np.flatnonzero(mask)
        x = torch.from_numpy(self.x[idx])
        if self.kind == "pixels" and not (train and self.train_transform() is not None):
            x = recipes.get(self.recipe).eval_batch(x)
        return Split(x, torch.from_numpy(self.y[idx]).long())

    def train_transform(self) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None:
        """The recipe's per-batch training transform (None on cached features or a fixed one)."""
        recipe = recipes.get(self.recipe)
        return recipe.train_batch if self.kind == "pixels" and recipe.random else None

    def member_split(self, seed: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """Train/val masks of one ensemble member: grouped, drawn from its own seed."""
        return member_split(self.y, self.groups, self.test, val_fraction, seed)
