"""Which conv map detects which Action Unit: seed 003's distance (eq. 13) and a region check.

Seed 003 (Zhu et al., section 4.1) ranks the maps of conv3 for an AU by how differently the
maps' strongest responses behave on images with and without the AU: R = the n largest
per-image map maxima among images with the AU, Q = the n largest among images without it,
both sorted descending and paired by rank (eqs. 8-9), and

    D = Σₖ Rₖ log(Rₖ/Qₖ) + Σₖ Qₖ log(Qₖ/Rₖ)      (eq. 13; eq. 12 = eq. 10 + its swap)

with n = 9. The map with the largest D is "the detector" of the AU (eq. 15). The paper then
only looks at the deconvolutions; ``region_agreement`` checks the claim against the truth
where it is known (the synthetic faces, fer_ray.data.au_regions): do the map's top-k
activations sit on the AU's region, more often than for a map picked with shuffled labels?

Coordinates: a box is ``(x0, y0, x1, y1)`` in input pixels, ``x1``/``y1`` exclusive (the
synthetic generator's convention); pixel ``p`` spans ``[p, p + 1)``. A map position is
``(row, col)`` in the map's own grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from torch import nn

from fer_ray.errors import DataError, ModelError

#: Region rules of ``region_agreement``.
RULES = ("centre", "overlap")


def _activations(act: object) -> np.ndarray:
    a = np.asarray(act, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise DataError(f"act must be (n_images, n_maps) with both > 0, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DataError("act holds NaN or infinite activations")
    return a


def _top_desc(x: np.ndarray, m: int) -> np.ndarray:
    """The m largest rows of each column, descending: (m, n_maps)."""
    return -np.sort(-x, axis=0)[:m]


def au_map_distance(
    act: np.ndarray, has_au: np.ndarray, n: int = 9, eps: float = 1e-8
) -> np.ndarray:
    """Seed 003's eq. 13 for every map: (n_maps,) distances, 0 when R and Q coincide.

    ``act`` (n_images, n_maps) holds each map's maximum activation per image. R and Q are
    clipped below at ``eps`` (negative pre-ReLU maxima count as "silent"). When a side has
    fewer than ``n`` images both sides use ``m = min(n, n_with, n_without)`` ranks, so the
    k-th largest is always paired with the k-th largest (padding the short side with ``eps``
    would add terms that measure the sample size, not the map); ranking maps for one AU is
    unaffected because every map gets the same ``m``.
    """
    a = _activations(act)
    mask = np.asarray(has_au)
    if mask.shape != (a.shape[0],):
        raise DataError(f"has_au must have shape ({a.shape[0]},), got {mask.shape}")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise DataError("has_au must be boolean (or 0/1)")
        mask = mask.astype(bool)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"n must be a positive integer, got {n!r}")
    if not eps > 0:
        raise DataError(f"eps must be > 0, got {eps!r}")
    n_with, n_without = int(mask.sum()), int((~mask).sum())
    if n_with == 0 or n_without == 0:
        side = "with" if n_with == 0 else "without"
        raise DataError(f"no image {side} the AU: the distance needs images on both sides")
    m = min(n, n_with, n_without)
    r = np.maximum(_top_desc(a[mask], m), eps)
    q = np.maximum(_top_desc(a[~mask], m), eps)
    return (r * np.log(r / q)).sum(0) + (q * np.log(q / r)).sum(0)


def _au_table(au_matrix: object, n_images: int) -> tuple[list[object], np.ndarray]:
    if isinstance(au_matrix, pd.DataFrame):
        names = list(au_matrix.columns)
        try:
            values = au_matrix.to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(f"au_matrix must be numeric AU intensities: {e}") from e
    else:
        values = np.asarray(au_matrix, dtype=np.float64)
        if values.ndim != 2:
            raise DataError(f"au_matrix must be (n_images, n_aus), got shape {values.shape}")
        names = list(range(values.shape[1]))
    if values.shape[0] != n_images:
        raise DataError(f"au_matrix has {values.shape[0]} rows, act has {n_images} images")
    if np.isnan(values).any():
        raise DataError("au_matrix holds NaN: code a missing AU label as 0 (absent)")
    return names, values


def best_maps(act: np.ndarray, au_matrix: np.ndarray | pd.DataFrame, n: int = 9) -> pd.DataFrame:
    """Eq. 15: per AU the map with the largest eq. 13 distance.

    ``au_matrix`` (n_images, n_aus) holds intensities or 0/1; an AU is present where > 0.
    A DataFrame's column labels (e.g. ``'AU1'``) become ``au``; for an array ``au`` is the
    column index. Columns: ``au, map, distance, n_with, n_without``; an AU seen on every
    image or on none gets ``map = -1`` and ``distance = NaN`` (no contrast to measure).
    Ties go to the lowest map index.
    """
    a = _activations(act)
    names, values = _au_table(au_matrix, a.shape[0])
    rows = []
    for name, col in zip(names, values.T):
        has = col > 0
        n_with, n_without = int(has.sum()), int((~has).sum())
        if n_with and n_without:
            d = au_map_distance(a, has, n)
            best, dist = int(np.argmax(d)), float(d.max())
        else:
            best, dist = -1, float("nan")
        rows.append((name, best, dist, n_with, n_without))
    return pd.DataFrame(rows, columns=["au", "map", "distance", "n_with", "n_without"])


def top_images(act: np.ndarray, k: int = 9) -> np.ndarray:
    """(n_maps, min(k, n_images)) image indices, strongest first (seed 003's "first nine")."""
    a = _activations(act)
    if k < 1:
        raise DataError(f"k must be >= 1, got {k}")
    return np.argsort(-a, axis=0, kind="stable")[:k].T


@dataclass(frozen=True)
class ReceptiveField:
    """Input box of map position (i, j): rows/cols ``offset + stride·(i|j)`` + ``[0, size)``.

    ``offset`` is negative when padding lets the box start left of/above the image.
    """

    size: int
    stride: int
    offset: int

    def boxes(self, positions: np.ndarray, image_size: int | None = None) -> np.ndarray:
        """(…, 4) int boxes ``x0, y0, x1, y1`` for (…, 2) ``(row, col)`` positions."""
        p = np.asarray(positions, dtype=np.int64)
        if p.shape[-1:] != (2,):
            raise DataError(f"positions must end in (row, col), got shape {p.shape}")
        y0 = self.offset + self.stride * p[..., 0]
        x0 = self.offset + self.stride * p[..., 1]
        b = np.stack([x0, y0, x0 + self.size, y0 + self.size], -1)
        return b if image_size is None else np.clip(b, 0, image_size)

    def centres(self, positions: np.ndarray) -> np.ndarray:
        """(…, 2) float ``(x, y)`` centres of the unclipped boxes."""
        b = self.boxes(positions).astype(np.float64)
        return np.stack([(b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2], -1)


_POINTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
    nn.BatchNorm2d,
    nn.LocalResponseNorm,
)


def _square(v: object, what: str, name: str) -> int:
    t = v if isinstance(v, tuple) else (v, v)
    if len(set(t)) != 1 or not isinstance(t[0], int):
        raise ModelError(f"receptive_field: {name} has a non-square {what} {v!r}")
    return t[0]


def receptive_field(
    units: Sequence[tuple[str, nn.Module]] | nn.Module, unit: str
) -> ReceptiveField:
    """Receptive field of ``unit``'s output: for SmallCNN's conv3 (padding 2) size 32, stride
    4, offset -14, so position (i, j) sees rows ``4i-14 … 4i+17``.

    ``units``: (name, module) pairs in order, an ``nn.Sequential``, or a model with
    ``units()``. Knows Conv2d, MaxPool2d, AvgPool2d and pointwise layers.
    """
    if hasattr(units, "units"):
        units = units.units()  # type: ignore[union-attr]
    elif isinstance(units, nn.Sequential):
        units = list(units.named_children())
    pairs = list(units)  # type: ignore[arg-type]
    names = [name for name, _ in pairs]
    if unit not in names:
        raise ModelError(f"receptive_field: no unit {unit!r}; units are {names}")
    size, stride, offset = 1, 1, 0
    for name, m in pairs[: names.index(unit) + 1]:
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            if isinstance(m.padding, str):
                raise ModelError(f"receptive_field: {name} uses padding={m.padding!r}")
            k = _square(m.kernel_size, "kernel", name)
            s = _square(m.stride, "stride", name)
            p = _square(m.padding, "padding", name)
            d = _square(getattr(m, "dilation", 1), "dilation", name)
            size += (d * (k - 1)) * stride
            offset -= p * stride
            stride *= s
        elif not isinstance(m, _POINTWISE):
            raise ModelError(
                f"receptive_field: unit {name!r} is a {type(m).__name__}, which it cannot "
                "trace (Conv2d, pooling and pointwise layers only)"
            )
    return ReceptiveField(size, stride, offset)


def _hits(rf_boxes: np.ndarray, regions: np.ndarray, rule: str) -> np.ndarray:
    if rule == "centre":
        cx = (rf_boxes[..., 0] + rf_boxes[..., 2]) / 2
        cy = (rf_boxes[..., 1] + rf_boxes[..., 3]) / 2
        return (
            (regions[..., 0] <= cx)
            & (cx < regions[..., 2])
            & (regions[..., 1] <= cy)
            & (cy < regions[..., 3])
        )
    if rule == "overlap":  # IoU > 0: the boxes share at least part of a pixel
        ix = np.minimum(rf_boxes[..., 2], regions[..., 2]) - np.maximum(
            rf_boxes[..., 0], regions[..., 0]
        )
        iy = np.minimum(rf_boxes[..., 3], regions[..., 3]) - np.maximum(
            rf_boxes[..., 1], regions[..., 1]
        )
        return (ix > 0) & (iy > 0)
    raise DataError(f"rule must be one of {RULES}, got {rule!r}")


def region_agreement(
    positions: np.ndarray, regions: np.ndarray, rf: ReceptiveField, rule: str = "centre"
) -> float:
    """Fraction of k activations whose receptive field lands on the AU's true region.

    ``positions`` (k, 2): the map's argmax ``(row, col)`` in each of its top-k images;
    ``regions`` (k, 4): the AU's region box in those same images. ``rule="centre"`` (default)
    counts a hit when the receptive-field centre lies inside the region; ``"overlap"``
    (IoU > 0) is offered too but separates maps badly: conv3's 32 px field is half a
    43-69 px synthetic face wide, so it overlaps neighbouring regions. Measured on 168
    synthetic 96 px faces with an untrained SmallCNN, 18-40 % of all conv3 argmax fields
    overlap a given AU's region against 3-16 % whose centre lies in it. The centre is also
    where a unit's effective receptive field concentrates (weights fall off to the border).
    """
    p = np.asarray(positions)
    r = np.asarray(regions, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) == 0:
        raise DataError(f"positions must be (k, 2) with k > 0, got shape {p.shape}")
    if r.shape != (len(p), 4):
        raise DataError(f"regions must be ({len(p)}, 4), got shape {r.shape}")
    return float(_hits(rf.boxes(p).astype(np.float64), r, rule).mean())


def _check_geometry(a: np.ndarray, positions: object, regions: object, n_aus: int):
    pos = np.asarray(positions)
    reg = np.asarray(regions, dtype=np.float64)
    if pos.shape != (*a.shape, 2):
        raise DataError(f"positions must be {(*a.shape, 2)} (image, map, row/col), got {pos.shape}")
    if reg.shape != (a.shape[0], n_aus, 4):
        raise DataError(
            f"regions must be {(a.shape[0], n_aus, 4)} (image, AU, box), got {reg.shape}"
        )
    return pos, reg


def _agreements(
    a: np.ndarray,
    pos: np.ndarray,
    maps: np.ndarray,
    reg: np.ndarray,
    rf: ReceptiveField,
    k: int,
    rule: str,
) -> np.ndarray:
    out = np.full(len(maps), np.nan)
    top = top_images(a, k)
    for j, mp in enumerate(maps):
        if mp >= 0:
            idx = top[mp]
            out[j] = region_agreement(pos[idx, mp], reg[idx, j], rf, rule)
    return out


def shuffled_agreement(
    act: np.ndarray,
    positions: np.ndarray,
    au_matrix: np.ndarray | pd.DataFrame,
    regions: np.ndarray,
    rf: ReceptiveField,
    *,
    n: int = 9,
    k: int = 9,
    n_shuffles: int = 100,
    seed: int = 0,
    rule: str = "centre",
) -> np.ndarray:
    """(n_shuffles, n_aus) agreements of the map picked with AU labels permuted across images.

    Only the labels move; activations, positions and regions stay with their image, so this is
    what ``region_agreement`` gives when the picked map owes nothing to the AU.
    """
    a = _activations(act)
    names, values = _au_table(au_matrix, a.shape[0])
    pos, reg = _check_geometry(a, positions, regions, len(names))
    rng = np.random.default_rng(seed)
    out = np.empty((n_shuffles, len(names)))
    for s in range(n_shuffles):
        perm = rng.permutation(a.shape[0])
        maps = best_maps(a, values[perm], n)["map"].to_numpy()
        out[s] = _agreements(a, pos, maps, reg, rf, k, rule)
    return out


def au_region_agreement(
    act: np.ndarray,
    positions: np.ndarray,
    au_matrix: np.ndarray | pd.DataFrame,
    regions: np.ndarray,
    rf: ReceptiveField,
    *,
    n: int = 9,
    k: int = 9,
    n_shuffles: int = 100,
    seed: int = 0,
    rule: str = "centre",
) -> pd.DataFrame:
    """``best_maps`` plus the region check of each AU's map against its shuffled baseline.

    ``positions`` (n_images, n_maps, 2) are each map's argmax per image, ``regions``
    (n_images, n_aus, 4) each AU's true box per image (defined for every image, with or
    without the AU). The top-k images are taken over all images, as in seed 003 (3.2 step 3).
    Added columns: ``agreement``, ``shuffled_mean``, ``shuffled_sd`` and ``p_value`` =
    (1 + #shuffles ≥ agreement) / (1 + n_shuffles).
    """
    a = _activations(act)
    names, values = _au_table(au_matrix, a.shape[0])
    pos, reg = _check_geometry(a, positions, regions, len(names))
    table = best_maps(a, values, n)
    table["au"] = names
    table["agreement"] = _agreements(a, pos, table["map"].to_numpy(), reg, rf, k, rule)
    if n_shuffles > 0:
        base = shuffled_agreement(
            a, pos, values, reg, rf, n=n, k=k, n_shuffles=n_shuffles, seed=seed, rule=rule
        )
        agree = table["agreement"].to_numpy()
        mean, sd, p_value = (np.full(len(names), np.nan) for _ in range(3))
        for j in range(len(names)):
            col = base[:, j][np.isfinite(base[:, j])]
            if col.size:
                mean[j], sd[j] = col.mean(), col.std()
            if np.isfinite(agree[j]):  # a shuffle without a map counts as not reaching it
                p_value[j] = (1 + (col >= agree[j] - 1e-12).sum()) / (1 + n_shuffles)
        table["shuffled_mean"], table["shuffled_sd"], table["p_value"] = mean, sd, p_value
    return table
