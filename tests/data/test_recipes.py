"""Augmentation recipes: shapes, reproducibility, each paper's numbers, and the registry."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from fer_ray.data import recipes as T
from fer_ray.train.features import IMAGENET_MEAN, IMAGENET_STD, normalize

RANDOM = ("seed001", "seed002", "seed003")
MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, size, size, 3), generator=g, dtype=torch.uint8)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gradient_images(n: int, size: int) -> torch.Tensor:
    """Dark on the left, bright on the right, with colour: a flip swaps which half is bright."""
    ramp = torch.linspace(0, 255, size).round().to(torch.uint8)
    img = torch.stack([ramp, ramp.flip(0) // 2, ramp // 3], -1)  # (size, 3)
    return img.expand(n, size, size, 3).contiguous()


def binomial_bounds(n: int, p: float, sds: float = 4.0) -> tuple[float, float]:
    sd = (n * p * (1 - p)) ** 0.5
    return n * p - sds * sd, n * p + sds * sd


@pytest.mark.parametrize("size", [48, 64, 96])
@pytest.mark.parametrize("name", T.RECIPES.names())
def test_shape_and_dtype(name: str, size: int) -> None:
    recipe = T.get(name)
    x = images(5, size)
    for out in (recipe.train_batch(x, gen(0)), recipe.eval_batch(x)):
        assert out.shape == (5, 3, size, size)
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()


def test_paper_size_224() -> None:
    x = images(2, 224)
    for recipe in map(T.get, T.RECIPES.names()):
        assert recipe.train_batch(x, gen(0)).shape == (2, 3, 224, 224)
        assert recipe.eval_batch(x).shape == (2, 3, 224, 224)


def test_random_flags() -> None:
    assert [n for n in T.RECIPES.names() if T.get(n).random] == list(RANDOM)
    assert T.get("seed000").steps == T.get("none").steps == ()


@pytest.mark.parametrize("name", RANDOM)
def test_same_seed_same_output_other_seed_differs(name: str) -> None:
    recipe, x = T.get(name), images(8, 48)
    a = recipe.train_batch(x, gen(7))
    assert torch.equal(a, recipe.train_batch(x, gen(7)))
    assert not torch.allclose(a, recipe.train_batch(x, gen(8)))
    assert torch.equal(recipe.eval_batch(x), recipe.eval_batch(x))


@pytest.mark.parametrize("name", ["none", "seed000"])
def test_no_augmentation_is_features_normalize(name: str) -> None:
    recipe, x = T.get(name), images(6, 64)
    expected = normalize(x)
    assert torch.equal(recipe.eval_batch(x), expected)
    assert torch.equal(recipe.train_batch(x, gen(3)), expected)
    assert torch.equal(recipe.eval_batch(x.numpy()), expected)


def test_seed003_per_image_standardisation() -> None:
    recipe = T.get("seed003")
    x = images(6, 64)
    x[0] = 17  # a flat image: std floor 1/sqrt(n) keeps it finite (all zeros)
    for out in (recipe.train_batch(x, gen(0)), recipe.eval_batch(x)):
        flat = out[1:].flatten(1)
        assert flat.mean(1).abs().max() < 1e-4
        assert (flat.std(1, correction=0) - 1).abs().max() < 1e-4
    assert recipe.eval_batch(x)[0].abs().max() < 1e-5


def test_seed001_grayscale_three_identical_channels() -> None:
    recipe, x = T.get("seed001"), images(6, 64)
    for out in (recipe.train_batch(x, gen(0)), recipe.eval_batch(x)):
        raw = out * STD + MEAN
        assert (raw[:, 0] - raw[:, 1]).abs().max() < 1e-5
        assert (raw[:, 0] - raw[:, 2]).abs().max() < 1e-5
    # eval: no geometry, only the luma of the input
    luma = F.rgb_to_grayscale(x.permute(0, 3, 1, 2).float() / 255)
    assert torch.allclose(recipe.eval_batch(x)[:, :1] * STD[:, :1] + MEAN[:, :1], luma, atol=1e-5)


@pytest.mark.parametrize("name", RANDOM)
def test_flip_frequency_and_detected_flips_match_params(name: str) -> None:
    recipe, n, size = T.get(name), 400, 48
    params = recipe.sample_params(n, size, gen(11))
    out = recipe.train_batch(gradient_images(n, size), gen(11))
    raw = out.mean(1)  # channel mean; the image is brighter on its right unless flipped
    flipped = raw[:, :, : size // 2].mean((1, 2)) > raw[:, :, size // 2 :].mean((1, 2))
    assert torch.equal(flipped, params["flip"])
    lo, hi = binomial_bounds(n, 0.5)
    assert lo < int(flipped.sum()) < hi


@pytest.mark.parametrize(("name", "limit"), [("seed002", 1.0), ("seed003", 15.0)])
def test_rotation_limits(name: str, limit: float) -> None:
    angle = T.get(name).sample_params(2000, 64, gen(0))["angle"]
    assert angle.abs().max() <= limit
    assert angle.max() > 0.95 * limit and angle.min() < -0.95 * limit
    assert abs(float(angle.std()) - limit / 3**0.5) < 0.05 * limit  # uniform
    assert T.get("seed001").sample_params(50, 64, gen(0))["angle"].eq(0).all()


def test_seed002_grayscale_fraction_and_effect() -> None:
    recipe = T.get("seed002")
    gray = recipe.sample_params(2000, 64, gen(5))["gray"]
    lo, hi = binomial_bounds(2000, 0.1)
    assert lo < int(gray.sum()) < hi
    n = 64
    mask = recipe.sample_params(n, 48, gen(6))["gray"]
    raw = recipe.train_batch(images(n, 48), gen(6)) * STD + MEAN
    equal = (raw[:, 0] - raw[:, 1]).flatten(1).abs().amax(1) < 1e-5
    assert mask.any() and torch.equal(equal, mask)
    eval_raw = recipe.eval_batch(images(n, 48)) * STD + MEAN
    assert (eval_raw[:, 0] - eval_raw[:, 1]).abs().amax() > 0.1  # train only


@pytest.mark.parametrize("name", RANDOM)
@pytest.mark.parametrize("size", [48, 64, 224])
def test_crop_offsets_within_bounds(name: str, size: int) -> None:
    p = T.get(name).sample_params(2000, size, gen(1))
    for off, side in (("top", "resized_h"), ("left", "resized_w")):
        assert (p[off] >= 0).all() and (p[off] <= p[side] - size).all()
        assert p[off].max() == (p[side] - size).max()  # the far edge is reachable


def test_paper_pixel_numbers() -> None:
    p2 = T.get("seed002").sample_params(100, 224, gen(0))
    assert p2["resized_h"].eq(256).all() and p2["resized_w"].eq(256).all()
    p3 = T.get("seed003").sample_params(100, 96, gen(0))
    assert p3["resized_h"].eq(99).all() and p3["resized_w"].eq(99).all()
    assert T.get("seed002").sample_params(1, 64, gen(0))["resized_h"].item() == round(
        64 * 256 / 224
    )
    p1 = T.get("seed001").sample_params(3000, 224, gen(0))
    stretched, widened = p1["resized_h"] == 280, p1["resized_w"] == 280
    assert not (stretched & widened).any()
    assert ((p1["resized_h"] == 224) | stretched).all() and (
        (p1["resized_w"] == 224) | widened
    ).all()
    lo, hi = binomial_bounds(3000, 1 / 3)
    for group in (stretched, widened, ~stretched & ~widened):
        assert lo < int(group.sum()) < hi


def reference(name: str, img: torch.Tensor, p: dict[str, torch.Tensor], i: int) -> torch.Tensor:
    """One image through plain torchvision calls, in the paper's order, from sampled params."""
    s = img.shape[-1]
    im = img[i]

    def crop(im: torch.Tensor) -> torch.Tensor:
        im = F.resize(im, [int(p["resized_h"][i]), int(p["resized_w"][i])], antialias=True)
        return F.crop(im, int(p["top"][i]), int(p["left"][i]), s, s)

    def flip(im: torch.Tensor) -> torch.Tensor:
        return F.horizontal_flip(im) if p["flip"][i] else im

    def rot(im: torch.Tensor) -> torch.Tensor:
        return F.rotate(im, float(p["angle"][i]), interpolation=InterpolationMode.BILINEAR)

    if name == "seed001":
        im = F.rgb_to_grayscale(crop(flip(im)), num_output_channels=3)
    elif name == "seed002":
        im = rot(flip(crop(im)))
        im = F.rgb_to_grayscale(im, num_output_channels=3) if p["gray"][i] else im
    else:
        im = crop(flip(rot(im)))
        return (im - im.mean()) / im.std(correction=0)
    return (im - MEAN[0]) / STD[0]


@pytest.mark.parametrize("name", RANDOM)
def test_train_batch_matches_torchvision_reference(name: str) -> None:
    recipe, x = T.get(name), images(12, 64, seed=2)
    p = recipe.sample_params(12, 64, gen(4))
    out = recipe.train_batch(x, gen(4))
    img = x.permute(0, 3, 1, 2).float() / 255
    for i in range(12):
        assert torch.allclose(out[i], reference(name, img, p, i), atol=1e-4)


@pytest.mark.parametrize(("name", "resized"), [("seed002", 256), ("seed003", 99)])
def test_eval_is_resize_and_centre_crop(name: str, resized: int) -> None:
    size = 224 if name == "seed002" else 96
    x = images(2, size)
    im = F.center_crop(F.resize(x.permute(0, 3, 1, 2).float() / 255, [resized] * 2), [size] * 2)
    out = T.get(name).eval_batch(x)
    if name == "seed002":
        assert torch.allclose(out, (im - MEAN) / STD, atol=1e-5)
    else:
        assert torch.allclose(out, T.per_image_standardization(im), atol=1e-5)


def test_get_unknown_name_suggests() -> None:
    assert T.get("seed002") is T.RECIPES.get("seed002")
    with pytest.raises(ValueError, match="seed002") as err:
        T.get("seed02")
    assert "train.recipe" in str(err.value) and "did you mean 'seed002'" in str(err.value)


def test_rejects_non_uint8_nhwc() -> None:
    with pytest.raises(ValueError, match="uint8"):
        T.get("none").eval_batch(torch.zeros(2, 3, 8, 8))


@pytest.mark.parametrize("name", ["none", "seed002", "seed003"])
def test_eval_chunks_do_not_change_the_result(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    x = images(10, 48)
    whole = T.get(name).eval_batch(x)
    monkeypatch.setattr(T, "EVAL_CHUNK", 4)
    assert torch.equal(T.get(name).eval_batch(x), whole)
    assert T.get(name).eval_batch(x[:0]).shape == (0, 3, 48, 48)


@pytest.mark.parametrize("name", RANDOM)
def test_empty_batch(name: str) -> None:
    assert T.get(name).train_batch(images(0, 48), gen(0)).shape == (0, 3, 48, 48)
