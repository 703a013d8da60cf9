"""Zeiler–Fergus deconvolution of one conv map, and seed 003's top-9 image panels.

Why: seed 003 (3.1-3.2) projects the strongest activation of each conv3 map back to pixel
space to see what the map detects, and shows it next to the activation's receptive field in
the nine images where the map fires most. Here the projection is the deconvnet of Zeiler &
Fergus (2014), seed 003's eqs. 1-3: all activations of the layer but the chosen one are set
to 0, and the signal runs back through the transposed convolutions (``C^T``, eq. 3), the max
pooling switches recorded in the forward pass, and ReLU applied to the backward signal
itself (not the forward mask, which is what plain gradients would use). It is implemented
with backward hooks on the ``nn.ReLU`` modules (no captum needed; captum's
``Deconvolution`` gives the same numbers, see the test). Other activation modules are
back-propagated as plain gradients.

Models: an ``nn.Sequential`` of named units, a model with ``features`` (SmallCNN), or one
with ``units()``. Images are the model's input tensors (N, C, H, W).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fer_ray.analysis.au_maps import ReceptiveField, receptive_field, top_images
from fer_ray.errors import DataError, ModelError


def _sequence(model: nn.Module) -> nn.Sequential:
    if isinstance(getattr(model, "features", None), nn.Sequential):
        return model.features  # type: ignore[return-value]
    if isinstance(model, nn.Sequential):
        return model
    if hasattr(model, "units"):
        return nn.Sequential(OrderedDict(model.units()))  # type: ignore[operator]
    raise ModelError(
        f"deconv needs an nn.Sequential, a model with .features or .units(), "
        f"got {type(model).__name__}"
    )


def _upto(model: nn.Module, unit: str) -> nn.Sequential:
    seq = _sequence(model)
    names = [n for n, _ in seq.named_children()]
    if unit not in names:
        raise ModelError(f"no unit {unit!r}; units are {names}")
    return nn.Sequential(OrderedDict(list(seq.named_children())[: names.index(unit) + 1]))


@contextmanager
def _evaluating(net: nn.Module) -> Iterator[None]:
    """Eval mode for the call, then each module's own mode back (the units are shared)."""
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _images(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(images)
    if x.ndim != 4 or x.shape[0] == 0:
        raise DataError(f"images must be a non-empty (N, C, H, W) batch, got {tuple(x.shape)}")
    return x.float()


@torch.no_grad()
def map_maxima(
    model: nn.Module, images: torch.Tensor, unit: str = "relu3", batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Each map's maximum per image and where: (N, maps) values, (N, maps, 2) ``(row, col)``.

    This is seed 003's step 2 (3.2) and the ``act`` of ``au_maps.au_map_distance``.
    """
    net, x = _upto(model, unit), _images(images)
    vals, poss = [], []
    with _evaluating(net):
        for start in range(0, len(x), batch_size):
            out = net(x[start : start + batch_size])
            if out.ndim != 4:
                raise ModelError(f"unit {unit!r} gives shape {tuple(out.shape)}, not maps")
            flat = out.flatten(2)
            v, i = flat.max(2)
            w = out.shape[3]
            vals.append(v.numpy())
            poss.append(torch.stack([i // w, i % w], -1).numpy())
    return np.concatenate(vals).astype(np.float64), np.concatenate(poss).astype(np.int64)


def _relu_rule(
    module: nn.Module, grad_input: tuple[torch.Tensor, ...], grad_output: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor]:
    return (torch.relu(grad_output[0]),)


def deconvolve(
    model: nn.Module,
    images: torch.Tensor,
    unit: str,
    channel: int,
    positions: np.ndarray | torch.Tensor | None = None,
) -> torch.Tensor:
    """Project map ``channel`` of ``unit`` back to pixels: (N, C, H, W), like ``images``.

    Per image only the activation at ``positions[n] = (row, col)`` (default: the map's argmax
    in that image) is kept, at its own value; an activation of 0 projects to 0. The result is
    exactly 0 outside that activation's receptive field.
    """
    net, x = _upto(model, unit), _images(images)
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    inplace = [m.inplace for m in relus]
    for m in relus:
        m.inplace = False  # full backward hooks cannot wrap in-place outputs
    hooks = [m.register_full_backward_hook(_relu_rule) for m in relus]
    try:
        with _evaluating(net), torch.enable_grad():
            x = x.detach().clone().requires_grad_(True)
            out = net(x)
            if out.ndim != 4 or not 0 <= channel < out.shape[1]:
                raise ModelError(f"unit {unit!r} output {tuple(out.shape)} has no map {channel}")
            if positions is None:
                flat = out[:, channel].detach().flatten(1).argmax(1)
                rows, cols = flat // out.shape[3], flat % out.shape[3]
            else:
                pos = torch.as_tensor(np.asarray(positions), dtype=torch.long)
                if pos.shape != (len(x), 2):
                    raise DataError(f"positions must be ({len(x)}, 2), got {tuple(pos.shape)}")
                rows, cols = pos[:, 0], pos[:, 1]
                if (
                    (rows < 0).any()
                    or (rows >= out.shape[2]).any()
                    or (cols < 0).any()
                    or (cols >= out.shape[3]).any()
                ):
                    raise DataError(f"positions must lie in the {tuple(out.shape[2:])} map")
            n = torch.arange(len(x))
            seed = torch.zeros_like(out)
            seed[n, channel, rows, cols] = out[n, channel, rows, cols].detach()
            (proj,) = torch.autograd.grad(out, x, seed)
    finally:
        for h in hooks:
            h.remove()
        for m, flag in zip(relus, inplace):
            m.inplace = flag
    return proj.detach()


@dataclass(frozen=True)
class TopActivations:
    """A layer's k strongest images per map: (maps, k) indices and values, (maps, k, 2) where."""

    indices: np.ndarray
    values: np.ndarray
    positions: np.ndarray
    rf: ReceptiveField


def top_activations(
    model: nn.Module, images: torch.Tensor, unit: str = "relu3", k: int = 9, batch_size: int = 64
) -> TopActivations:
    """Seed 003 3.2 steps 1-3: for every map the k images with the largest maximum."""
    act, pos = map_maxima(model, images, unit, batch_size)
    idx = top_images(act, k)
    maps = np.arange(act.shape[1])[:, None]
    return TopActivations(
        idx, act[idx, maps], pos[idx, maps], receptive_field(_sequence(model), unit)
    )


def _to_display(images: torch.Tensor) -> np.ndarray:
    """(N, H, W, 3) uint8, each image min-max scaled (model inputs are standardised)."""
    x = images.detach().float()
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    x = (x - lo) / (hi - lo).clamp_min(1e-12)
    out = (x * 255 + 0.5).clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return np.repeat(out, 3, axis=3) if out.shape[3] == 1 else out[..., :3]


def _projection_display(p: torch.Tensor) -> np.ndarray:
    """Zeiler–Fergus display: 0 → mid grey, scaled by the tile's largest magnitude."""
    p = p.detach().float()
    scale = p.abs().amax().clamp_min(1e-12)
    img = ((p / (2 * scale) + 0.5) * 255 + 0.5).clamp(0, 255).byte().permute(1, 2, 0).numpy()
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., :3]


def _crop(img: np.ndarray, box: np.ndarray, fill: int) -> np.ndarray:
    """The unclipped box of ``img``; parts outside the image are ``fill``."""
    x0, y0, x1, y1 = (int(v) for v in box)
    out = np.full((y1 - y0, x1 - x0, img.shape[2]), fill, np.uint8)
    h, w = img.shape[:2]
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = img[sy0:sy1, sx0:sx1]
    return out


def image_grid(
    tiles: Sequence[np.ndarray], n_cols: int, pad: int = 2, min_side: int = 64
) -> np.ndarray:
    """Tiles (H, W, 3) uint8 of one size in rows of ``n_cols``, enlarged to ``min_side``."""
    import cv2

    if not tiles:
        raise DataError("image_grid needs at least one tile")
    h, w = tiles[0].shape[:2]
    if any(t.shape[:2] != (h, w) for t in tiles):
        raise DataError("image_grid tiles must share one size")
    f = max(1, -(-min_side // max(h, w)))
    th, tw = h * f, w * f
    n_rows = -(-len(tiles) // n_cols)
    grid = np.full((n_rows * (th + pad) + pad, n_cols * (tw + pad) + pad, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, n_cols)
        big = cv2.resize(np.ascontiguousarray(t), (tw, th), interpolation=cv2.INTER_NEAREST)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        grid[y : y + th, x : x + tw] = big.reshape(th, tw, -1)[..., :3]
    return grid


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an (H, W, 3) RGB uint8 image with OpenCV (which wants BGR)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1])):
        raise DataError(f"could not write {path} (OpenCV knows the format by its extension)")
    return path


def map_panel(
    model: nn.Module,
    images: torch.Tensor,
    unit: str,
    channel: int,
    top: TopActivations,
    display: np.ndarray | None = None,
) -> np.ndarray:
    """Seed 003's Table 2 row pair for one map: receptive-field crops of its top-k images
    ("Original", first row) above the deconvolutions of those activations (second row)."""
    x = _images(images)
    idx, pos = top.indices[channel], top.positions[channel]
    proj = deconvolve(model, x[idx], unit, channel, pos)
    shown = _to_display(x[idx]) if display is None else np.asarray(display)[idx]
    if shown.ndim != 4 or shown.shape[1:3] != tuple(x.shape[2:]):
        raise DataError(f"display must be (N, {x.shape[2]}, {x.shape[3]}, 3) uint8")
    if shown.shape[3] == 1:
        shown = np.repeat(shown, 3, axis=3)
    boxes = top.rf.boxes(pos)
    originals = [_crop(shown[i], boxes[i], 0) for i in range(len(idx))]
    deconvs = [_crop(_projection_display(proj[i]), boxes[i], 128) for i in range(len(idx))]
    return image_grid(originals + deconvs, n_cols=len(idx))


def save_map_panel(
    path: str | Path,
    model: nn.Module,
    images: torch.Tensor,
    unit: str,
    channel: int,
    k: int = 9,
    display: np.ndarray | None = None,
    top: TopActivations | None = None,
) -> Path:
    """Write one map's top-k panel (``map_panel``) as a PNG at ``path``."""
    top = top if top is not None else top_activations(model, images, unit, k)
    return save_png(path, map_panel(model, images, unit, channel, top, display))


def save_layer_panels(
    out_dir: str | Path,
    model: nn.Module,
    images: torch.Tensor,
    unit: str = "relu3",
    maps: Sequence[int] | None = None,
    k: int = 9,
    display: np.ndarray | None = None,
) -> list[Path]:
    """One PNG per map of ``unit`` (``{unit}_map{index:03d}.png``); all maps by default."""
    top = top_activations(model, images, unit, k)
    chosen = range(len(top.indices)) if maps is None else maps
    return [
        save_map_panel(
            Path(out_dir) / f"{unit}_map{c:03d}.png", model, images, unit, c, k, display, top
        )
        for c in chosen
    ]
