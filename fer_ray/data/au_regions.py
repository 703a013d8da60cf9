"""Where the synthetic generator draws each Action Unit: one box per AU in image pixels.

Why: seed 003 claims conv3 maps become AU detectors and shows it only by eye. On the synthetic
faces (fer_ray.data.synthetic) the truth is known, because the generator draws every AU at
fixed places of a parametric face; these boxes let fer_ray.analysis.au_maps count how often a
map's strongest activations sit on its AU.

Each region is the bounding box of what the generator's drawing code moves or recolours for
that AU (``REGION_NAMES``), taken over the AU's whole range 0…1 and over the other AUs
(their actual intensities when known, else 0…1), so it holds for every image with or without
the AU. Secondary effects outside the named region are left out on purpose (AU9 also narrows
the eyes and lowers the inner brows; AU15/16/20/23 move the nasolabial fold, which is anchored
to the mouth corners; AU26 drops the chin outline by at most 0.14·sin(t) face units); the test
measures how many changed pixels they leave outside.

Two ways to place a region:

- ``synthetic_geometry`` + ``region_boxes``: exact per image. The generator keeps no pose or
  identity, so they are replayed from its per-item RNG stream (same draws, same order); a
  generator change that breaks this fails ``test_replayed_geometry_matches_renderer``.
- ``region_boxes_from_face_box``: from the face box alone (any image with a box). Identity
  parameters are unknown, so each bound takes its extreme over the generator's identity
  ranges, and the pose (rotation ±10°, squash 0.86-1, yaw shift, aspect 1.15-1.35) is
  covered by taking the union over a grid of poses consistent with the box. Conservative:
  it contains the exact box (tested), at a cost: measured at 96 px it is ~3× the exact
  box's area for brows, eyes and nose, 6-8× for the mouth AUs (lips are small).

Face units: face half-width = 1, ``u`` to the right, ``v`` down, origin at the face centre.
Boxes are ``(x0, y0, x1, y1)`` int pixels, ``x1``/``y1`` exclusive, clipped to the image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import product

import numpy as np

from fer_ray.data import synthetic as syn
from fer_ray.errors import DataError

#: The generator version whose drawing code and RNG order this module encodes.
KNOWN_GENERATOR = "2"

REGION_NAMES: dict[int, str] = {
    1: "brows and forehead (inner brow raiser)",
    2: "brows and forehead (outer brow raiser)",
    4: "brows and glabella (brow lowerer)",
    5: "eyes (upper lid raiser)",
    6: "eyes, lower lids, cheeks, crow's feet (cheek raiser)",
    7: "eyes (lid tightener)",
    9: "nose, nasolabial folds, upper lip (nose wrinkler)",
    12: "mouth and nasolabial folds (lip corner puller)",
    15: "mouth (lip corner depressor)",
    16: "mouth (lower lip depressor)",
    20: "mouth (lip stretcher)",
    23: "mouth (lip tightener)",
    26: "mouth and jaw (jaw drop)",
}

#: The generator's identity parameter ranges (synthetic.identity), face units.
IDENTITY_RANGES: dict[str, tuple[float, float]] = {
    "asp": (1.15, 1.35),
    "es": (0.36, 0.46),
    "ey": (-0.22, -0.08),
    "ew": (0.15, 0.2),
    "eo": (0.05, 0.08),
    "bh": (0.17, 0.25),
    "bt": (0.04, 0.08),
    "ny": (0.3, 0.42),
    "nw": (0.13, 0.19),
    "my": (0.66, 0.8),
    "mw": (0.26, 0.36),
    "lip": (0.035, 0.065),
    "rest": (-0.03, 0.03),
}
#: The generator's pose ranges (synthetic._render_one).
THETA_DEG, SQUASH, JAW = 10.0, (0.86, 1.0), 0.14
CY_RANGE = (-0.06, 0.1)  # cy = s/2 + U(CY_RANGE)·s

# Quadratic curves through 3 points can bulge past them: by at most 1/8 of the points' spread,
# which is <= 0.3 face units for a brow (so 0.04) and <= 0.08 for lids and nose (so 0.01).
_BROW_SLACK, _SLACK = 0.04, 0.01

#: One part of a region: u0, v0, u1, v1 (face units) and whether it moves with the yaw shift
#: of the inner features (True) or belongs to the head outline (False).
RegionPart = tuple[float, float, float, float, bool]


class _I:
    """A closed interval: bounds of an expression over unknown parameters."""

    __slots__ = ("lo", "hi")

    def __init__(self, lo: float, hi: float | None = None):
        self.lo, self.hi = float(lo), float(lo if hi is None else hi)

    @staticmethod
    def of(x: _I | float) -> _I:
        return x if isinstance(x, _I) else _I(x)

    def __add__(self, o: _I | float) -> _I:
        o = _I.of(o)
        return _I(self.lo + o.lo, self.hi + o.hi)

    __radd__ = __add__

    def __neg__(self) -> _I:
        return _I(-self.hi, -self.lo)

    def __sub__(self, o: _I | float) -> _I:
        return self + (-_I.of(o))

    def __rsub__(self, o: _I | float) -> _I:
        return _I.of(o) - self

    def __mul__(self, o: _I | float) -> _I:
        o = _I.of(o)
        c = (self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi)
        return _I(min(c), max(c))

    __rmul__ = __mul__


def _hull(*xs: _I) -> _I:
    return _I(min(x.lo for x in xs), max(x.hi for x in xs))


def _params(identity: object | None) -> dict[str, _I]:
    if identity is None:
        return {k: _I(*r) for k, r in IDENTITY_RANGES.items()}
    return {k: _I(getattr(identity, k)) for k in IDENTITY_RANGES}


def _au_values(au: int, aus: Sequence[float] | np.ndarray | None) -> dict[int, _I]:
    if aus is not None and len(aus) != len(syn.AU_LIST):
        raise DataError(f"aus must hold {len(syn.AU_LIST)} intensities (AU_LIST order)")
    out = {}
    for j, a in enumerate(syn.AU_LIST):
        out[a] = _I(0.0, 1.0) if (a == au or aus is None) else _I(float(aus[j]))
    return out


def _check_au(au: int) -> None:
    if au not in REGION_NAMES:
        raise DataError(f"AU{au} is not drawn by the synthetic generator (AUs: {syn.AU_LIST})")


def region_face_units(
    au: int, identity: object | None = None, aus: Sequence[float] | np.ndarray | None = None
) -> tuple[RegionPart, ...]:
    """The AU's region in face units, as one or two parts (AU26 adds the chin outline).

    ``identity``: the generator's per-subject parameters, or None for bounds over all
    subjects; ``aus``: the image's intensities in ``AU_LIST`` order (the region's own AU
    always spans 0…1), or None for 0…1 everywhere.
    """
    _check_generator()
    _check_au(au)
    p, a = _params(identity), _au_values(au, aus)
    eye_y, brow_y = p["ey"], p["ey"] - p["bh"]
    if au in (1, 2, 4):  # brows (both sides) + forehead creases or glabella creases
        outer = (p["es"] + 1.15 * p["ew"]).hi
        inner = brow_y - 0.16 * a[1] + 0.12 * a[4] + 0.04 * a[9]
        mid = brow_y - 0.05 - 0.07 * a[1] - 0.1 * a[2] + 0.08 * a[4]
        out = brow_y + 0.02 - 0.16 * a[2] + 0.02 * a[4]
        v = _hull(inner, mid, out)
        half = p["bt"].hi / 2 + _BROW_SLACK
        parts = [(-outer, v.lo - half, outer, v.hi + half, True)]
        if au == 4:
            parts.append((-0.06, (brow_y - 0.1).lo, 0.06, (brow_y + 0.06).hi, True))
        else:
            w = (0.12 + 0.3 * a[2]).hi
            parts.append((-w, (brow_y - 0.34).lo, w, (brow_y - 0.2).hi, True))
        return tuple(parts)
    if au in (5, 6, 7):  # lids, lid fold 0.07 above the upper lid; AU6 adds cheek + crow's feet
        up = eye_y - p["eo"] * (1 + 1.1 * a[5] - 0.35 * a[7] - 0.3 * a[6] - 0.2 * a[9])
        low_k = 1 - 0.7 * a[6] - 0.55 * a[7] - 0.3 * a[9] + 0.25 * a[5]
        low = eye_y + 0.8 * p["eo"] * _I(max(low_k.lo, 0.15), max(low_k.hi, 0.15))
        top, bottom = (up - 0.07).lo - _SLACK, low.hi + _SLACK
        u = (p["es"] + p["ew"]).hi
        if au == 6:
            u, bottom = (p["es"] + p["ew"] + 0.12).hi, (low + 0.14).hi + _SLACK
        return ((-u, top, u, bottom, True),)
    # mouth: corners (cw, cv), upper/lower lip, opening; nose: wings (nw, ny)
    my = p["my"] + 0.05 * a[26]
    cw = p["mw"] * (1 + 0.15 * a[12] + 0.35 * a[20] - 0.22 * a[23] - 0.05 * a[15])
    cv = my + p["rest"] - 0.2 * a[12] + 0.18 * a[15] + 0.03 * a[20]
    thick = p["lip"] * (1 - 0.65 * a[23])
    ui = my - 0.04 * a[9] - 0.03 * a[16]
    li = ui + 0.3 * a[26] + 0.09 * a[16] + 0.01
    nw = p["nw"] * (1 + 0.25 * a[9])
    ny = p["ny"] - 0.05 * a[9]
    if au == 9:  # bridge creases (ey…ey+0.09) to nostrils, nasolabial folds, lifted upper lip
        u = max(nw.hi, (cw + 0.06).hi)
        return ((-u, eye_y.lo - _SLACK, u, ui.hi + _SLACK, True),)
    top = _hull(cv, ui - thick).lo
    bottom = _hull(cv, li + 1.3 * thick + 0.04 * a[16]).hi
    parts = [(-cw.hi, top, cw.hi, bottom, True)]
    if au == 12:  # the nasolabial folds (nose wing to below the corners) deepen with AU12
        u = (cw + 0.06).hi + _SLACK
        parts.append((-u, (ny - 0.04).lo, u, (cv + 0.08).hi + _SLACK, True))
    if au == 26:  # the chin outline drops by up to JAW·sin(t): visible below the mouth top
        parts.append((-1.0, top, 1.0, (p["asp"] + JAW).hi, False))
    return tuple(parts)


@dataclass(frozen=True)
class FacePose:
    """The generator's pose: head centre, half-width (px), rotation, squash, yaw shift."""

    cx: float
    cy: float
    half_w: float
    theta: float  # radians
    squash: float
    yaw: float  # face units the inner features shift sideways

    def matrix(self) -> np.ndarray:
        c, s = np.cos(self.theta), np.sin(self.theta)
        return self.half_w * np.array([[c, -s], [s, c]]) @ np.diag([self.squash, 1.0])


@dataclass(frozen=True)
class FaceGeometry:
    """Everything that places a synthetic image's AU regions."""

    pose: FacePose
    identity: object  # synthetic.Identity
    aus: np.ndarray  # (len(AU_LIST),) intensities
    box: np.ndarray  # (4,) face box, identical to the renderer's
    image_size: int


def _outline(asp: float, jaw: float) -> np.ndarray:
    """The generator's face outline (48 points, chin dropped by ``jaw``), face units."""
    face = syn.unit_circle(48) * (1.0, asp)
    face[face[:, 1] > 0, 1] *= (asp + jaw) / asp
    return face


def _check_generator() -> None:
    if syn.GENERATOR_VERSION != KNOWN_GENERATOR:
        raise RuntimeError(
            f"au_regions encodes synthetic generator version {KNOWN_GENERATOR}, the generator is "
            f"{syn.GENERATOR_VERSION}: update au_regions' geometry and RNG replay"
        )


def synthetic_geometry(
    indices: Iterable[int], *, n_subjects: int, per_class: int, image_size: int, seed: int
) -> list[FaceGeometry]:
    """Replay the renderer's pose and identity draws for some items (no drawing: fast)."""
    _check_generator()
    for name, value, low in (
        ("n_subjects", n_subjects, 1),
        ("per_class", per_class, 1),
        ("image_size", image_size, 32),
        ("seed", seed, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise DataError(f"{name} must be an integer >= {low}, got {value!r}")
    idx = np.asarray(list(indices), dtype=np.int64).reshape(-1)
    block = len(syn.CLASS_NAMES) * per_class
    n_items = n_subjects * block
    if idx.size and (idx.min() < 0 or idx.max() >= n_items):
        raise DataError(f"indices must lie in [0, {n_items}), got [{idx.min()}, {idx.max()}]")
    s, out = image_size, []
    for i in idx.tolist():
        subject, label = i // block, (i % block) // per_class
        identity = syn.identity(seed, subject)
        rng = np.random.default_rng(np.random.SeedSequence([seed, i]))
        aus = syn.sample_aus(rng, label)  # same draws in the same order as _render_one
        theta = np.deg2rad(rng.uniform(-THETA_DEG, THETA_DEG))
        half_w = rng.uniform(0.45, 0.72) * s / 2
        squash = rng.uniform(*SQUASH)
        yaw = rng.choice([-1.0, 1.0]) * (1 - squash) * 0.9
        cx = s / 2 + rng.uniform(-1, 1) * max(s / 2 - half_w, 0) * 0.8
        cy = s / 2 + rng.uniform(*CY_RANGE) * s
        pose = FacePose(cx, cy, half_w, theta, squash, yaw)
        jaw = JAW * float(aus[syn.AU_LIST.index(26)])
        q = _outline(identity.asp, jaw) @ pose.matrix().T + (cx, cy)
        box = np.clip(np.r_[np.floor(q.min(0)), np.ceil(q.max(0)) + 1], 0, s).astype(np.int32)
        out.append(FaceGeometry(pose, identity, aus, box, s))
    return out


def _corners(parts: Sequence[RegionPart], yaw: float) -> np.ndarray:
    """(4·len(parts), 2) face-unit corners, inner features shifted by ``yaw``."""
    pts = []
    for u0, v0, u1, v1, feat in parts:
        shift = yaw if feat else 0.0
        pts += [(u + shift, v) for u in (u0, u1) for v in (v0, v1)]
    return np.asarray(pts)


def _pixel_box(points: np.ndarray, margin: int, size: int) -> np.ndarray:
    """Box of cv2-drawn points (coordinate x = centre of pixel x) plus a margin, clipped."""
    lo = np.floor(points.min(axis=tuple(range(points.ndim - 1))) + 0.5) - margin
    hi = np.floor(points.max(axis=tuple(range(points.ndim - 1))) + 0.5) + 1 + margin
    return np.clip(np.r_[lo, hi], 0, size).astype(np.int32)


def _au_list(aus: Sequence[int]) -> list[int]:
    aus = [int(a) for a in aus]
    for a in aus:
        _check_au(a)
    return aus


def region_boxes(
    geometries: Sequence[FaceGeometry], aus: Sequence[int] = syn.AU_LIST, margin_px: int = 2
) -> np.ndarray:
    """(n_images, n_aus, 4) exact region boxes; ``margin_px`` covers line width and blur."""
    aus = _au_list(aus)
    out = np.empty((len(geometries), len(aus), 4), np.int32)
    for n, g in enumerate(geometries):
        m, c = g.pose.matrix(), np.array([g.pose.cx, g.pose.cy])
        for j, au in enumerate(aus):
            pts = _corners(region_face_units(au, g.identity, g.aus), g.pose.yaw) @ m.T + c
            out[n, j] = _pixel_box(pts, margin_px, g.image_size)
    return out


@lru_cache(maxsize=64)
def _pose_grid(jaw: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The generator's pose ranges at corners and midpoints: per pose the unit-half-width
    matrix (G, 2, 2), the yaw shift (G,) and the face outline's min/max (G, 2) around the
    centre. ``jaw=None`` covers both no chin drop and the full one."""
    thetas = np.deg2rad(np.linspace(-THETA_DEG, THETA_DEG, 5))
    jaws = (0.0, JAW) if jaw is None else (jaw,)
    mats, yaws, lo, hi = [], [], [], []
    for th, sq, sign, asp, jw in product(
        thetas, np.linspace(*SQUASH, 3), (-1.0, 1.0), np.linspace(*IDENTITY_RANGES["asp"], 3), jaws
    ):
        c, si = np.cos(th), np.sin(th)
        unit = np.array([[c, -si], [si, c]]) @ np.diag([sq, 1.0])
        g = _outline(float(asp), float(jw)) @ unit.T
        mats.append(unit)
        yaws.append(sign * (1 - sq) * 0.9)
        lo.append(g.min(0))
        hi.append(g.max(0))
    return np.array(mats), np.array(yaws), np.array(lo), np.array(hi)


def region_boxes_from_face_box(
    face_boxes: np.ndarray,
    image_size: int,
    aus: Sequence[int] = syn.AU_LIST,
    intensities: np.ndarray | None = None,
    margin_px: int = 3,
) -> np.ndarray:
    """(n_images, n_aus, 4) conservative region boxes from face boxes alone.

    Per pose of the grid the box gives the half-width (its width over the outline's) and the
    centre (from the left edge, and from whichever of top/bottom edge is not at the image
    border; a face cut at both is placed at both ends of where the generator's centre range
    and the cuts allow), and the union over poses is taken. ``intensities`` (n_images,
    len(AU_LIST)), when known, tighten the other AUs' bounds and the chin drop. The extra
    pixel of ``margin_px`` over ``region_boxes`` covers the box's own rounding.
    """
    aus = _au_list(aus)
    fb = np.asarray(face_boxes, dtype=np.float64)
    if fb.ndim != 2 or fb.shape[1] != 4:
        raise DataError(f"face_boxes must be (n, 4), got shape {fb.shape}")
    if intensities is not None:
        intensities = np.asarray(intensities, dtype=np.float64)
        if intensities.shape != (len(fb), len(syn.AU_LIST)):
            raise DataError(
                f"intensities must be ({len(fb)}, {len(syn.AU_LIST)}), got {intensities.shape}"
            )
    if ((fb[:, 2] - fb[:, 0]) < 3).any() or ((fb[:, 3] - fb[:, 1]) < 3).any():
        raise DataError("face_boxes must be x0, y0, x1, y1 with x1 > x0 + 2 and y1 > y0 + 2")
    s = float(image_size)
    j26 = syn.AU_LIST.index(26)
    out = np.empty((len(fb), len(aus), 4), np.int32)
    fixed = None if intensities is not None else [_part_arrays(au, None) for au in aus]
    for n, (x0, y0, x1, y1) in enumerate(fb):
        jaw = None if intensities is None else round(JAW * float(intensities[n, j26]), 6)
        mats, yaws, gmin, gmax = _pose_grid(jaw)
        half_w = (x1 - 1 - x0 - 1) / (gmax[:, 0] - gmin[:, 0])  # floor/ceil add ~1 px
        cx = x0 + 0.5 - half_w * gmin[:, 0]
        if y0 > 0:  # top edge not at the border: it fixes the centre
            cys = [y0 + 0.5 - half_w * gmin[:, 1]]
        elif y1 < s:
            cys = [y1 - 1.5 - half_w * gmax[:, 1]]
        else:  # cut at both: top above 0, bottom below s
            lo = np.maximum(s / 2 + CY_RANGE[0] * s, s - 2 - half_w * gmax[:, 1])
            hi = np.minimum(s / 2 + CY_RANGE[1] * s, 1 - half_w * gmin[:, 1])
            cys = [np.minimum(lo, hi), np.maximum(lo, hi)]
        m = mats * half_w[:, None, None]  # (G, 2, 2)
        arrays = fixed or [_part_arrays(au, intensities[n]) for au in aus]
        for j, (corners, feat) in enumerate(arrays):
            uv = corners[None] + yaws[:, None, None] * feat[None, :, None] * [1.0, 0.0]
            xy = np.einsum("gij,gpj->gpi", m, uv)  # (G, P, 2)
            pts = [xy + np.stack([cx, cy], -1)[:, None] for cy in cys]
            out[n, j] = _pixel_box(np.concatenate(pts), margin_px, int(s))
    return out


def _part_arrays(au: int, intensities: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The region's corners (P, 2) and whether each moves with the yaw shift (P,)."""
    parts = region_face_units(au, None, intensities)
    return _corners(parts, 0.0), np.repeat([float(p[4]) for p in parts], 4)


def synthetic_region_boxes(
    indices: Iterable[int],
    *,
    n_subjects: int,
    per_class: int,
    image_size: int,
    seed: int,
    aus: Sequence[int] = syn.AU_LIST,
    margin_px: int = 2,
) -> np.ndarray:
    """``region_boxes`` of some items of a synthetic data set (the arguments of render_items)."""
    geo = synthetic_geometry(
        indices, n_subjects=n_subjects, per_class=per_class, image_size=image_size, seed=seed
    )
    return region_boxes(geo, aus, margin_px)
