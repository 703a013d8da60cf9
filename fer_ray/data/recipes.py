"""Augmentation recipes, selected by name with the config key ``train.recipe``.

Each recipe is named after the seed paper whose preprocessing section it follows (``seed001``
= Liu, ``seed002`` = Orozco et al., ``seed003`` = Zhu et al.), so a run's report names exactly
which published recipe it used, and reproducing another paper adds a name instead of changing
an existing one. ``none`` is ``seed000`` (Dai): no augmentation, ImageNet normalisation only.

A random recipe (``Recipe.random``) gives the trunk different pixels every epoch, so the
frozen-trunk feature cache (fer_ray.train.features) does not apply to it: every step then runs
the whole network from pixels.

Sizes: the papers give pixel numbers for their crop side (224 or 96). Here the crop side is
the model's input ``size`` (the input batch's H == W) and every other pixel number is scaled by
the same ratio, e.g. seed002 resizes to round(size * 256 / 224) before cropping ``size``, so a
recipe works at any size and equals the paper exactly at the paper's size.

Recipes (train; eval is the deterministic part):
  none/seed000  ImageNet mean/std only.
  seed001 Liu   flip, as-is/stretched/widened, random crop; grayscale (3 equal channels, also
                at eval), then ImageNet mean/std.
  seed002 Orozco  resize, random crop, flip, rotate ±1°, 10 % grayscale; ImageNet mean/std.
  seed003 Zhu   rotate ±15°, flip, resize, random crop; per-image standardisation.
Rotations are bilinear with black (0) corners, torchvision's default fill.

All randomness is drawn from the ``torch.Generator`` passed in, through
``Recipe.sample_params``, so the same generator state reproduces a batch exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from fer_ray.registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Train-time steps a recipe may list, applied in the order listed; normalisation comes last.
STEPS = ("flip", "rotate", "resize_crop", "random_gray", "gray")
NORMALIZATIONS = ("imagenet", "per_image")
EVAL_CHUNK = 256


@dataclass(frozen=True)
class Recipe:
    """One paper's preprocessing; ``train_batch`` augments, ``eval_batch`` is deterministic.

    ``steps`` is the paper's train-time order. At eval time only the deterministic part runs:
    resize by ``resize_ratio`` + centre crop, ``grayscale`` if set, then the normalisation.
    """

    name: str
    random: bool
    description: str
    steps: tuple[str, ...] = ()
    resize_ratio: float = 1.0  # resize to round(size * ratio) before cropping ``size``
    stretch_ratio: float = 1.0  # seed001: one axis scaled by this before cropping
    flip_p: float = 0.0
    max_angle: float = 0.0  # degrees; angle ~ U(-max_angle, max_angle)
    gray_p: float = 0.0  # probability of the train-only random grayscale
    grayscale: bool = False  # always grayscale (train and eval)
    normalization: str = "imagenet"

    def __post_init__(self) -> None:
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown or self.normalization not in NORMALIZATIONS:
            raise ValueError(f"recipe {self.name!r}: bad steps {unknown} or {self.normalization}")
        is_random = any(s in self.steps for s in ("flip", "rotate", "random_gray")) or (
            "resize_crop" in self.steps and (self.resize_ratio != 1.0 or self.stretch_ratio != 1.0)
        )
        if is_random != self.random:
            raise ValueError(f"recipe {self.name!r}: random={self.random} but steps say otherwise")

    def sample_params(
        self, n: int, size: int, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Per-image random parameters of ``train_batch`` for ``n`` images of side ``size``.

        Keys: ``flip`` (bool), ``angle`` (degrees), ``gray`` (bool), ``resized_h``/``resized_w``
        (the image's size before the crop; seed001's stretch shows here) and ``top``/``left``
        (crop offsets, within ``0 .. resized - size``). Unused parameters are neutral and draw
        nothing from the generator.
        """
        g = generator
        flip = torch.zeros(n, dtype=torch.bool)
        angle = torch.zeros(n)
        gray = torch.zeros(n, dtype=torch.bool)
        if "flip" in self.steps:
            flip = torch.rand(n, generator=g) < self.flip_p
        if "rotate" in self.steps:
            angle = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * self.max_angle
            angle = angle.float()
        if "random_gray" in self.steps:
            gray = torch.rand(n, generator=g) < self.gray_p
        resized = round(size * self.resize_ratio)
        h = torch.full((n,), resized, dtype=torch.long)
        w = h.clone()
        top = torch.zeros(n, dtype=torch.long)
        left = torch.zeros(n, dtype=torch.long)
        if "resize_crop" in self.steps:
            if self.stretch_ratio != 1.0:
                # 0: as is, 1: stretched (taller), 2: widened, equally likely
                mode = torch.randint(0, 3, (n,), generator=g)
                long = round(resized * self.stretch_ratio)
                h = torch.where(mode == 1, long, h)
                w = torch.where(mode == 2, long, w)
            u = torch.rand(2, n, generator=g, dtype=torch.float64)
            top = (u[0] * (h - size + 1)).long().clamp_(max=h - size)
            left = (u[1] * (w - size + 1)).long().clamp_(max=w - size)
        return {
            "flip": flip,
            "angle": angle,
            "gray": gray,
            "resized_h": h,
            "resized_w": w,
            "top": top,
            "left": left,
        }

    def eval_params(self, n: int, size: int) -> dict[str, torch.Tensor]:
        """The deterministic counterpart of ``sample_params``: resize + centre crop only."""
        resized = round(size * self.resize_ratio)
        full = torch.full((n,), resized, dtype=torch.long)
        # torchvision's CenterCrop offset (round half to even: 99 → 96 starts at 2)
        centre = torch.full((n,), int(round((resized - size) / 2.0)), dtype=torch.long)
        return {
            "flip": torch.zeros(n, dtype=torch.bool),
            "angle": torch.zeros(n),
            "gray": torch.zeros(n, dtype=torch.bool),
            "resized_h": full,
            "resized_w": full.clone(),
            "top": centre,
            "left": centre.clone(),
        }

    def train_batch(self, x: torch.Tensor | np.ndarray, generator: torch.Generator) -> torch.Tensor:
        """uint8 (N, H, W, 3) with H == W → augmented float32 (N, 3, H, W), normalised."""
        img = _to_float(_check(x))
        params = self.sample_params(img.shape[0], img.shape[-1], generator)
        return self._normalize(self.apply(img, params, self.steps))

    def eval_batch(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) with H == W → float32 (N, 3, H, W): no randomness.

        Runs in chunks of ``EVAL_CHUNK`` images: a whole validation/test split goes through in
        one call, and the float intermediates (up to (256/224)² the output) stay chunk-sized.
        """
        x = _check(x)
        n, size = x.shape[0], x.shape[1]
        steps = ("resize_crop", "gray") if self.grayscale else ("resize_crop",)
        out = torch.empty((n, 3, size, size))
        for s in range(0, n, EVAL_CHUNK):
            img = _to_float(x[s : s + EVAL_CHUNK])
            params = self.eval_params(img.shape[0], size)
            out[s : s + EVAL_CHUNK] = self._normalize(self.apply(img, params, steps))
        return out

    def apply(
        self, img: torch.Tensor, params: dict[str, torch.Tensor], steps: tuple[str, ...]
    ) -> torch.Tensor:
        """Run ``steps`` on float (N, 3, S, S) images in [0, 1], before normalisation."""
        size = img.shape[-1]
        if len(img) == 0:
            return img
        for step in steps:
            if step == "flip":
                img = torch.where(params["flip"].view(-1, 1, 1, 1), img.flip(-1), img)
            elif step == "rotate":
                img = torch.stack(
                    [
                        F.rotate(im, float(a), interpolation=InterpolationMode.BILINEAR)
                        for im, a in zip(img, params["angle"].tolist())
                    ]
                )
            elif step == "resize_crop":
                img = _resize_crop(img, params, size)
            elif step == "random_gray":
                mask = params["gray"].view(-1, 1, 1, 1)
                img = torch.where(mask, F.rgb_to_grayscale(img, num_output_channels=3), img)
            elif step == "gray":
                img = F.rgb_to_grayscale(img, num_output_channels=3)
        return img

    def _normalize(self, img: torch.Tensor) -> torch.Tensor:
        if self.normalization == "per_image":
            return per_image_standardization(img)
        # the same operations as fer_ray.train.features.normalize, so ``none`` equals it bitwise
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (img - mean) / std


def per_image_standardization(img: torch.Tensor) -> torch.Tensor:
    """(x - mean) / max(std, 1/sqrt(n)) per image over all C*H*W values (n of them).

    As tf.image.per_image_standardization (population std); the floor keeps a flat image
    finite.
    """
    if img.numel() == 0:
        return img
    flat = img.flatten(1)
    mean = flat.mean(1)
    std = flat.std(1, correction=0).clamp(min=flat.shape[1] ** -0.5)
    return (img - mean.view(-1, 1, 1, 1)) / std.view(-1, 1, 1, 1)


def _check(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(f"expected uint8 (N, S, S, 3) images, got {x.dtype} {tuple(x.shape)}")
    return x


def _to_float(x: torch.Tensor) -> torch.Tensor:
    # contiguous NCHW: elementwise ops on the permuted (channels-last) view are ~4x slower here
    return x.permute(0, 3, 1, 2).contiguous().float().div_(255.0)


def _resize_crop(img: torch.Tensor, params: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """Resize each image to (resized_h, resized_w), then crop ``size`` at (top, left).

    Images sharing a target shape are resized as one batch (one shape for seed002/003, three
    for seed001's as-is/stretched/widened).
    """
    h, w, top, left = (params[k] for k in ("resized_h", "resized_w", "top", "left"))
    if bool((h == size).all() and (w == size).all()):
        return img
    out = torch.empty_like(img)
    shapes = torch.stack([h, w], 1)
    for hw in torch.unique(shapes, dim=0).tolist():
        idx = torch.nonzero((shapes == torch.tensor(hw)).all(1)).flatten()
        big = img[idx] if hw == [size, size] else F.resize(img[idx], hw, antialias=True)
        t0, l0 = top[idx], left[idx]
        if bool((t0 == t0[0]).all() and (l0 == l0[0]).all()):  # eval: one centre crop
            t, ll = int(t0[0]), int(l0[0])
            out[idx] = big[:, :, t : t + size, ll : ll + size]
            continue
        for j, i in enumerate(idx.tolist()):
            t, ll = int(top[i]), int(left[i])
            out[i] = big[j, :, t : t + size, ll : ll + size]
    return out


_SEED000_DESC = "no augmentation; ImageNet mean/std normalisation (seed 000, Dai)"

RECIPES: Registry[Recipe] = Registry("augmentation recipe", "train.recipe")
RECIPES.register("none", Recipe("none", False, _SEED000_DESC))
RECIPES.register("seed000", Recipe("seed000", False, _SEED000_DESC))
# Liu: "I flip all the images, and then both it and its flip version will be stretched or
# widened ... randomly crop a square image with a side length of 224", grayscale input. The
# paper gives no stretch factor and an unclear count ("at most five" per image): we take
# 1.25 (224 → 280) and draw each image uniformly from the six variants it describes,
# {as is, flipped} × {as is, stretched (taller), widened}, then crop
# ``size`` at a random offset (only the stretched axis has room). Grayscale is replicated to
# 3 channels for the ImageNet trunk and applied at eval too; the paper states no
# normalisation, so ImageNet mean/std as seed 000.
RECIPES.register(
    "seed001",
    Recipe(
        "seed001",
        True,
        "seed 001 (Liu): flip p=0.5, as-is/stretched/widened x1.25, random crop; grayscale;"
        " ImageNet normalisation",
        steps=("flip", "resize_crop", "gray"),
        stretch_ratio=1.25,
        flip_p=0.5,
        grayscale=True,
    ),
)
# Orozco et al. §C: resize 256, random crop 224, horizontal flip, rotation ±1°, 10 %
# grayscale, transforms.Normalize(ImageNet), in that order. (Their summary says "240 pixel
# resize" and "+/- 1%"; the detailed section's 256 and 1° are used.)
RECIPES.register(
    "seed002",
    Recipe(
        "seed002",
        True,
        "seed 002 (Orozco et al.): resize 256/224, random crop, flip p=0.5, rotate U(±1°),"
        " grayscale p=0.1; ImageNet normalisation",
        steps=("resize_crop", "flip", "rotate", "random_gray"),
        resize_ratio=256 / 224,
        flip_p=0.5,
        max_angle=1.0,
        gray_p=0.1,
    ),
)
# Zhu et al.: rotate in (-15, 15)°, flip, resize to 99, random crop 96, subtract the
# image's mean and divide by its standard deviation, in that order.
RECIPES.register(
    "seed003",
    Recipe(
        "seed003",
        True,
        "seed 003 (Zhu et al.): rotate U(±15°), flip p=0.5, resize 99/96, random crop;"
        " per-image standardisation",
        steps=("rotate", "flip", "resize_crop"),
        resize_ratio=99 / 96,
        flip_p=0.5,
        max_angle=15.0,
        normalization="per_image",
    ),
)


def get(name: str) -> Recipe:
    """The recipe for ``train.recipe`` = ``name``; a typo gets a did-you-mean."""
    return RECIPES.get(name)
