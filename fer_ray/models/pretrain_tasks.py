"""Pretraining objectives of the synthetic stand-in backbone (``fer_ray.models.pretrain``).

An objective says what the backbone learns to predict on the disjoint pretraining set, and
what those targets reveal about the expression class, so the report can state it:

- ``au``: the 13 Action Unit intensities. The generator *composes* each class from its AUs, so
  the targets determine the class (thresholding them recovers it): supervised pretraining on
  the run's task with other people, not an analogue of ImageNet.
- ``free_au``: the 13 Action Unit intensities of faces whose AUs were drawn independently per
  AU (``synthetic.sample_independent_aus``: each a fair coin, no class, no class's AU set), the
  analogue of pretraining on an AU-coded data set: the trunk learns what each AU looks like,
  never which AUs make an expression (only 7 of the 8,192 on/off patterns are a class's).
- ``identity``: which of the pretraining set's subjects is shown (the VGG-Face analogue). Every
  subject is rendered with every class equally often, so the targets carry no class information.
- ``rotation``: by how many quarter turns the image was rotated (self-supervised, RotNet); the
  turn is drawn from a seeded generator, independently of the image.
- ``identity_rotation``: both at once (two heads' logits, summed cross-entropies).

``training_targets`` returns, one row per image, exactly what the loss sees during one epoch
(classes one-hot), so a test can check how much a classifier learns about the expression
class from them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fer_ray.data import synthetic
from fer_ray.data.synthetic import SyntheticFaces
from fer_ray.train.loop import Split

ROTATIONS = 4  # quarter turns: 0, 90, 180, 270 degrees


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror half the batch: faces are left-right symmetric, so are the AU and identity targets."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    x[flip] = x[flip].flip(-1)
    return x


def rotate(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate image i of NCHW ``x`` by ``turns[i]`` quarter turns (counter-clockwise)."""
    out = x.clone()
    for k in range(1, ROTATIONS):
        m = turns == k
        if m.any():
            out[m] = torch.rot90(x[m], k, dims=(2, 3))
    return out


def _rotated(x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror half the images, then rotate each by a random number of quarter turns.

    Mirroring first keeps the label right: a mirrored upright face is an upright face, whereas
    mirroring after a 90-degree turn would show a 270-degree turn of the mirrored face.
    """
    x = random_flip(x.clone(), gen)
    turns = torch.randint(0, ROTATIONS, (len(x),), generator=gen)
    return rotate(x, turns), turns


def _one_hot(y: torch.Tensor, n: int) -> np.ndarray:
    return nn.functional.one_hot(y.long(), n).numpy().astype(np.float32)


@dataclass(frozen=True)
class Objective:
    """How to pretrain on one kind of target.

    ``targets_of`` gives the fixed per-image targets of a rendered set; ``epoch_split`` turns
    the (normalised) images and those targets into what one epoch trains on (drawing any
    self-supervised transformation from ``gen``); ``transform`` is the per-batch augmentation
    handed to ``fer_ray.train.loop.train_epoch``; ``n_outputs`` sizes the linear head.
    """

    targets_of: Callable[[SyntheticFaces, int], torch.Tensor]  # (faces, generator seed)
    n_outputs: Callable[[torch.Tensor], int]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    epoch_split: Callable[[torch.Tensor, torch.Tensor, torch.Generator], Split]
    score: Callable[[torch.Tensor, torch.Tensor], dict[str, float]]
    as_vectors: Callable[[torch.Tensor, torch.Tensor], np.ndarray]  # (epoch y, fixed y) -> rows
    transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = random_flip
    head: Callable[[int, int], nn.Module] = nn.Linear  # (backbone features, n_outputs)
    val_split: Callable[[torch.Tensor, torch.Tensor, torch.Generator], Split] | None = None
    independent_aus: bool = False  # its pretraining faces' AUs are drawn without a class

    def validation(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> Split:
        """The held-out images as scored after each epoch (default: as one epoch sees them)."""
        return (self.val_split or self.epoch_split)(x, y, gen)

    def training_targets(
        self, faces: SyntheticFaces, seed: int, gen: torch.Generator
    ) -> np.ndarray:
        """One row per image of ``faces`` (rendered with generator ``seed``): the targets the
        loss sees in one epoch (classes one-hot)."""
        fixed = self.targets_of(faces, seed)
        dummy = torch.zeros(len(fixed), 1, 2, 2)
        return self.as_vectors(self.epoch_split(dummy, fixed, gen).y, fixed)


# --- au: regress the Action Unit intensities ------------------------------------------------


def _au_score(out: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    return {"val_mse": float(nn.functional.mse_loss(out, y))}


AU = Objective(
    targets_of=lambda f, seed: torch.from_numpy(f.aus.astype(np.float32)),
    n_outputs=lambda y: int(y.shape[1]),
    loss=nn.functional.mse_loss,
    epoch_split=lambda x, y, gen: Split(x, y),
    score=_au_score,
    as_vectors=lambda y, fixed: y.numpy().astype(np.float32),
)


# --- free_au: regress AU intensities drawn independently of any class ----------------------

FREE_AU = dataclasses.replace(AU, independent_aus=True)


# --- identity: classify the pretraining set's subjects --------------------------------------


def _subjects(faces: SyntheticFaces, seed: int) -> torch.Tensor:
    _, ids = np.unique(faces.subjects, return_inverse=True)
    return torch.from_numpy(ids.astype(np.int64))


def _acc(out: torch.Tensor, y: torch.Tensor) -> float:
    return float((out.argmax(1) == y).float().mean())


IDENTITY = Objective(
    targets_of=_subjects,
    n_outputs=lambda y: int(y.max()) + 1,
    loss=nn.functional.cross_entropy,
    epoch_split=lambda x, y, gen: Split(x, y),
    score=lambda out, y: {"val_acc": _acc(out, y), "chance": 1.0 / (int(y.max()) + 1)},
    as_vectors=lambda y, fixed: _one_hot(y, int(fixed.max()) + 1),
)


# --- rotation: predict the quarter turn applied (self-supervised) ----------------------------


def _rotation_split(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> Split:
    xr, turns = _rotated(x, gen)
    return Split(xr, turns)


ROTATION = Objective(
    targets_of=lambda f, seed: torch.zeros(len(f.labels), dtype=torch.int64),
    n_outputs=lambda y: ROTATIONS,
    loss=nn.functional.cross_entropy,
    epoch_split=_rotation_split,
    score=lambda out, y: {"val_acc": _acc(out, y), "chance": 1.0 / ROTATIONS},
    as_vectors=lambda y, fixed: _one_hot(y, ROTATIONS),
    transform=None,  # mirrored inside epoch_split, before the turn
)


# --- face_shape: regress each subject's resting face geometry --------------------------------

#: Per-subject geometry of fer_ray.data.synthetic.Identity (face units): the resting face, the
#: same for every expression of a person. Colours, hair and glasses are left out on purpose:
#: they tell people apart without looking at the eyes, brows or mouth.
SHAPE_FIELDS: tuple[str, ...] = (
    "asp", "es", "ey", "ew", "eo", "bh", "bt", "ny", "nw", "my", "mw", "lip", "rest",
)  # fmt: skip


def _face_shape(faces: SyntheticFaces, seed: int) -> torch.Tensor:
    """Each image's subject's resting geometry, standardised per field over the set."""
    subjects = np.unique(faces.subjects)
    rows = {
        int(s): [getattr(synthetic.identity(seed, int(s)), f) for f in SHAPE_FIELDS]
        for s in subjects
    }
    t = np.array([rows[int(s)] for s in faces.subjects], np.float64)
    t = (t - t.mean(0)) / np.maximum(t.std(0), 1e-12)
    return torch.from_numpy(t.astype(np.float32))


def _mse_score(out: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    return {"val_mse": float(nn.functional.mse_loss(out, y))}


FACE_SHAPE = Objective(
    targets_of=_face_shape,
    n_outputs=lambda y: int(y.shape[1]),
    loss=nn.functional.mse_loss,
    epoch_split=lambda x, y, gen: Split(x, y),
    score=_mse_score,
    as_vectors=lambda y, fixed: y.numpy().astype(np.float32),
)


# --- identity_rotation: both, one head with two blocks of logits ----------------------------


def _id_rot_split(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> Split:
    xr, turns = _rotated(x, gen)
    # float targets: train_epoch then treats the task as regression (no accuracy column)
    return Split(xr, torch.stack([y, turns], 1).float())


def _id_rot_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    ids, turns = y[:, 0].long(), y[:, 1].long()
    return nn.functional.cross_entropy(out[:, :-ROTATIONS], ids) + nn.functional.cross_entropy(
        out[:, -ROTATIONS:], turns
    )


def _id_rot_score(out: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    return {
        "val_acc": _acc(out[:, :-ROTATIONS], y[:, 0].long()),
        "val_rotation_acc": _acc(out[:, -ROTATIONS:], y[:, 1].long()),
    }


IDENTITY_ROTATION = Objective(
    targets_of=_subjects,
    n_outputs=lambda y: int(y.max()) + 1 + ROTATIONS,
    loss=_id_rot_loss,
    epoch_split=_id_rot_split,
    score=_id_rot_score,
    as_vectors=lambda y, fixed: np.hstack(
        [_one_hot(y[:, 0], int(fixed.max()) + 1), _one_hot(y[:, 1], ROTATIONS)]
    ),
    transform=None,
)


# --- contrastive: tell each image's two augmented views apart from the others' (SimCLR) ------

TEMPERATURE = 0.2
PROJECTION = 128


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random view of each normalised NCHW image: zoom, shift, small turn and mirror (one
    affine warp), then brightness, contrast, saturation, channel order and greyscale. Colour is
    scrambled on purpose, so that views of one image match by shape, not by skin or shirt."""
    from fer_ray.data.recipes import IMAGENET_MEAN, IMAGENET_STD

    n = len(x)

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, *shape, generator=gen)

    scale, ang = u(0.75, 1.0), torch.deg2rad(u(-10.0, 10.0))
    shift = u(-0.12, 0.12, 2)
    mirror = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(ang) * scale, torch.sin(ang) * scale
    theta = torch.stack(
        [
            torch.stack([cos * mirror, -sin, shift[:, 0]], 1),
            torch.stack([sin * mirror, cos, shift[:, 1]], 1),
        ],
        1,
    )
    grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    x = nn.functional.grid_sample(x, grid, padding_mode="reflection", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    rgb = x * std + mean
    rgb = rgb * u(0.6, 1.4, 1, 1, 1)  # brightness
    m = rgb.mean((1, 2, 3), keepdim=True)
    rgb = (rgb - m) * u(0.6, 1.4, 1, 1, 1) + m  # contrast
    grey = rgb.mean(1, keepdim=True)
    sat = u(0.0, 1.6, 1, 1, 1)
    sat = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.3, torch.zeros_like(sat), sat)
    rgb = (rgb - grey) * sat + grey  # saturation; 0 = greyscale
    order = torch.argsort(torch.rand(n, 3, generator=gen), 1)  # random channel order
    rgb = torch.gather(rgb, 1, order[:, :, None, None].expand_as(rgb))
    return (rgb.clamp(0, 1) - mean) / std


def two_views(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """[view A of every image; view B of every image]: 2N images for one batch of N."""
    return torch.cat([augment(x, gen), augment(x, gen)])


def _nt_xent(out: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """SimCLR's loss: each view's partner is the other view of its image (rows i and i + N)."""
    z = nn.functional.normalize(out, dim=1)
    n = len(z) // 2
    sim = (z @ z.T) / TEMPERATURE
    sim = sim.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return nn.functional.cross_entropy(sim, partner)


def _retrieval(out: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """How often a held-out view's nearest other view is its partner, and the loss."""
    z = nn.functional.normalize(out, dim=1)
    n = len(z) // 2
    sim = (z @ z.T).fill_diagonal_(float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return {
        "val_acc": float((sim.argmax(1) == partner).float().mean()),
        "chance": 1.0 / max(1, 2 * n - 1),
        "val_loss": float(_nt_xent(out)),
    }


def _projection(n_features: int, n_out: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(n_features, n_features), nn.ReLU(inplace=True), nn.Linear(n_features, n_out)
    )


CONTRASTIVE = Objective(
    # each image is its own class: the target is its index (float: no accuracy in train_epoch)
    targets_of=lambda f, seed: torch.arange(len(f.labels), dtype=torch.float32),
    n_outputs=lambda y: PROJECTION,
    loss=_nt_xent,
    epoch_split=lambda x, y, gen: Split(x, y),
    score=_retrieval,
    as_vectors=lambda y, fixed: _one_hot(y, len(fixed)),
    transform=two_views,
    head=_projection,
    val_split=lambda x, y, gen: Split(two_views(x, gen), y),
)


OBJECTIVES: dict[str, Objective] = {
    "au": AU,
    "free_au": FREE_AU,
    "identity": IDENTITY,
    "rotation": ROTATION,
    "identity_rotation": IDENTITY_ROTATION,
    "face_shape": FACE_SHAPE,
    "contrastive": CONTRASTIVE,
}
