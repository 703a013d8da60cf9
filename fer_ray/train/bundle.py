"""The trial data bundle: what every grid trial and ensemble member reads, built once.

Inputs (cached trunk features, or crops when a random recipe must see pixels), labels, groups,
the shared test holdout and the grid folds. The inputs are sharded (``rows.Sharded``: one
object per shard in Ray's object store, never one whole-data-set array); the stage that builds
the bundle puts it into the store once, every trial reads it by reference and each split
gathers its rows batch by batch from the shards it touches (``rows.Rows``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from fer_ray.data import recipes
from fer_ray.data.splits import member_split
from fer_ray.train.loop import Split
from fer_ray.train.rows import Rows, Sharded


@dataclass
class TrialData:
    x: Sharded | np.ndarray  # cached trunk features (float32 NCHW) or crops (uint8 NHWC)
    kind: str  # "features" | "pixels"
    y: np.ndarray
    groups: np.ndarray
    test: np.ndarray  # bool: the shared grouped holdout, never used by the grid
    folds: np.ndarray  # grid fold per item, -1 on test items
    n_classes: int
    backbone_state: dict | None = None  # a stand-in weight source: the pretrained backbone
    recipe: str = "none"  # train.recipe: how pixels become network input

    def split(self, mask: np.ndarray, train: bool = False) -> Split:
        """Inputs of ``mask``'s items, read batch by batch from the shards (no copy of the
        split); a training split of a random recipe stays uint8 (it is transformed batch by
        batch, see ``train_transform``), every other one goes through the fixed transform."""
        idx = np.flatnonzero(mask)
        source = self.x if isinstance(self.x, Sharded) else Sharded.of(self.x)
        transform = None
        if self.kind == "pixels" and not (train and self.train_transform() is not None):
            transform = recipes.get(self.recipe).eval_batch
        return Split(Rows(source, idx, transform), torch.from_numpy(self.y[idx]).long())

    def train_transform(self) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None:
        """The recipe's per-batch training transform (None on cached features or a fixed one)."""
        recipe = recipes.get(self.recipe)
        return recipe.train_batch if self.kind == "pixels" and recipe.random else None

    def member_split(self, seed: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """Train/val masks of one ensemble member: grouped, drawn from its own seed."""
        return member_split(self.y, self.groups, self.test, val_fraction, seed)
