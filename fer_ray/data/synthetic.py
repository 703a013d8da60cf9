"""Procedural FACS-driven face generator: the embedded synthetic FER data set.

Why: no real FER data can be downloaded here, so the default pipeline trains on faces drawn with
OpenCV from a small parametric identity model, with expressions composed from FACS Action Units
(AUs). Nuisances (pose, lighting, noise, background clutter, weak "distractor" AUs, random class-AU
intensities) keep accuracy well below 100 % while the class AUs keep it well above chance.
Every item has its own RNG, so chunks rendered in any order or process are byte-identical.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import pandas as pd

from fer_ray.data.source import SEVEN
from fer_ray.registry import Registry

CLASS_NAMES: tuple[str, ...] = SEVEN  # label order = alphabetical, the canonical seven
CLASS_AUS: dict[str, tuple[int, ...]] = {
    "angry": (4, 5, 7, 23),
    "disgust": (9, 15, 16),
    "fear": (1, 2, 4, 5, 7, 20, 26),
    "happy": (6, 12),
    "neutral": (),
    "sad": (1, 4, 15),
    "surprise": (1, 2, 5, 26),
}
AU_LIST: tuple[int, ...] = tuple(sorted({au for aus in CLASS_AUS.values() for au in aus}))
GENERATOR_VERSION: str = "2"

#: Class AUs are drawn uniformly from this range, so weak expressions are genuinely ambiguous.
CLASS_AU_RANGE: tuple[float, float] = (0.3, 1.0)
#: Each non-class AU is active with this probability, at intensity uniform in [0, DISTRACTOR_MAX].
DISTRACTOR_PROB: float = 0.3
DISTRACTOR_MAX: float = 0.25
#: ``independent_aus``: each AU is strong (in CLASS_AU_RANGE) with this probability, a fair coin
#: per AU, borrowing nothing from the seven classes' AU sets.
INDEPENDENT_AU_PROB: float = 0.5

_IDENTITY_SALT = 1_000_003


@dataclass(frozen=True)
class Style:
    """A rendering style: the ranges the nuisances are drawn from (skin tone, lighting,
    background clutter, blur, sensor noise). Two styles are two "data sets" of the same
    expressions, for seed 002's cross-data-set test (stage newfaces). Only ranges change, never
    the number or order of draws, so the per-item pose replay of ``au_regions`` holds for
    every style; the default ``Style()`` renders today's bytes exactly."""

    skin: tuple[float, float] = (0.0, 1.0)  # light (0) … dark (1) skin mix, uniform in this
    background: tuple[float, float] = (30.0, 225.0)  # background base colour per channel
    clutter: tuple[int, int] = (4, 12)  # number of background shapes, integers in [lo, hi)
    light: tuple[float, float] = (0.0, 0.5)  # directional light amplitude
    gain: tuple[float, float] = (0.7, 1.2)  # brightness factor
    offset: tuple[float, float] = (-35.0, 35.0)  # brightness offset
    blur: tuple[float, float] = (0.0, 1.0)  # Gaussian blur sigma (applied above 0.3)
    noise: tuple[float, float] = (2.0, 12.0)  # sensor noise standard deviation


DEFAULT_STYLE = Style()
#: Named styles (``newfaces.style``): ``default`` is the embedded data set's own.
STYLES: Registry[Style] = Registry("rendering style", "newfaces.style")
STYLES.register("default", DEFAULT_STYLE, help="the embedded data set's own rendering")
STYLES.register(
    "studio",
    Style(skin=(0.0, 0.4), background=(150.0, 230.0), clutter=(0, 2), light=(0.0, 0.1),
          gain=(0.95, 1.15), offset=(-10.0, 10.0), blur=(0.0, 0.5), noise=(1.0, 4.0)),
    help="even studio light, plain pale background, lighter skin, little noise (JAFFE-like)",
)  # fmt: skip
STYLES.register(
    "dim",
    Style(skin=(0.5, 1.0), background=(10.0, 120.0), clutter=(8, 16), light=(0.4, 0.8),
          gain=(0.5, 0.8), offset=(-35.0, 0.0), blur=(0.3, 1.2), noise=(8.0, 16.0)),
    help="dim directional light, dark busy background, darker skin, strong noise",
)  # fmt: skip
_AA = cv2.LINE_AA
_SHIFT = 4  # sub-pixel bits for cv2 drawing; smooth geometry even at 32 px
_BROW_TAPER = np.linspace(1.0, 0.55, 8)[:, None]  # brows thin towards the temple


@dataclass(frozen=True)
class SyntheticFaces:
    """A rendered data set; row i of every array describes item i of `item_table`."""

    images: np.ndarray  # (N, S, S, 3) uint8 RGB
    labels: np.ndarray  # (N,) int64, index into CLASS_NAMES
    aus: np.ndarray  # (N, len(AU_LIST)) float32 intensities in [0, 1]
    subjects: np.ndarray  # (N,) int64
    boxes: np.ndarray  # (N, 4) int32 x0, y0, x1, y1 (x1/y1 exclusive), face ellipse bbox


def _check(**lower_bounds: tuple[object, int]) -> None:
    """Raise a ValueError naming the first argument that is not an integer >= its bound."""
    for name, (value, low) in lower_bounds.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def item_table(n_subjects: int, per_class: int) -> pd.DataFrame:
    """One row per item (index, label, label_name, subject); deterministic, so splits need no images."""
    _check(n_subjects=(n_subjects, 1), per_class=(per_class, 1))
    block = len(CLASS_NAMES) * per_class
    index = np.arange(n_subjects * block, dtype=np.int64)
    label = (index % block) // per_class
    return pd.DataFrame(
        {
            "index": index,
            "label": label,
            "label_name": np.asarray(CLASS_NAMES, dtype=object)[label],
            "subject": index // block,
        }
    )


@dataclass(frozen=True)
class Identity:
    """Per-subject face geometry and colours, in face units (face half-width = 1)."""

    asp: float  # face half-height / half-width
    es: float  # eye centre |u|
    ey: float  # eye centre v
    ew: float  # eye half-width
    eo: float  # eye half-opening
    bh: float  # brow height above eye
    bt: float  # brow thickness
    ny: float  # nose tip v
    nw: float  # nose half-width
    my: float  # mouth v
    mw: float  # mouth half-width
    lip: float  # lip thickness
    rest: float  # resting mouth-corner offset (+ = down), a per-person confound
    skin: tuple[float, ...]
    lip_rgb: tuple[float, ...]
    hair: tuple[float, ...]
    iris: tuple[float, ...]
    shirt: tuple[float, ...]
    hair_style: int
    fringe: float
    glasses: bool


def identity(seed: int, subject: int, style: Style = DEFAULT_STYLE) -> Identity:
    """A subject's look, from its own RNG stream so it is the same in every chunk."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _IDENTITY_SALT, subject]))
    u = rng.uniform
    t = style.skin[0] + (style.skin[1] - style.skin[0]) * u()  # (0, 1): exactly u()
    skin = (1 - t) * np.array([238, 204, 178]) + t * np.array([100, 66, 46]) + rng.normal(0, 8, 3)
    hair_palette = np.array(
        [[25, 20, 18], [70, 45, 25], [120, 80, 40], [200, 170, 110], [150, 60, 30], [160, 160, 160]]
    )
    lip = skin * np.array([0.85, 0.6, 0.6]) + np.array([20, 0, 0])
    return Identity(
        asp=u(1.15, 1.35), es=u(0.36, 0.46), ey=u(-0.22, -0.08), ew=u(0.15, 0.2), eo=u(0.05, 0.08),
        bh=u(0.17, 0.25), bt=u(0.04, 0.08), ny=u(0.3, 0.42), nw=u(0.13, 0.19), my=u(0.66, 0.8),
        mw=u(0.26, 0.36), lip=u(0.035, 0.065), rest=u(-0.03, 0.03),
        skin=tuple(np.clip(skin, 0, 255)), lip_rgb=tuple(np.clip(lip, 0, 255)),
        hair=tuple(hair_palette[rng.integers(len(hair_palette))] + rng.normal(0, 6, 3)),
        iris=tuple(rng.uniform(20, 140, 3)), shirt=tuple(rng.uniform(20, 235, 3)),
        hair_style=int(rng.integers(4)), fringe=u(0.45, 0.7), glasses=bool(u() < 0.15),
    )  # fmt: skip


def sample_aus(rng: np.random.Generator, label: int) -> np.ndarray:
    """Class AUs uniform in CLASS_AU_RANGE; other AUs occasionally weakly active (distractors)."""
    active = CLASS_AUS[CLASS_NAMES[label]]
    out = np.zeros(len(AU_LIST), np.float32)
    strong = rng.uniform(*CLASS_AU_RANGE, size=len(AU_LIST))
    weak = rng.uniform(0.0, DISTRACTOR_MAX, size=len(AU_LIST))
    on = rng.uniform(size=len(AU_LIST)) < DISTRACTOR_PROB
    for j, au in enumerate(AU_LIST):
        out[j] = strong[j] if au in active else (weak[j] if on[j] else 0.0)
    return out


def sample_independent_aus(rng: np.random.Generator) -> np.ndarray:
    """AUs drawn without a class (a stand-in's pretraining faces, like an AU-coded data set):
    each AU independently strong with INDEPENDENT_AU_PROB, else a distractor as in
    ``sample_aus``. Which AUs appear together says nothing about any of the seven classes."""
    n = len(AU_LIST)
    strong = rng.uniform(*CLASS_AU_RANGE, size=n)
    weak = rng.uniform(0.0, DISTRACTOR_MAX, size=n)
    on = rng.uniform(size=n) < INDEPENDENT_AU_PROB
    weak_on = rng.uniform(size=n) < DISTRACTOR_PROB
    return np.where(on, strong, np.where(weak_on, weak, 0.0)).astype(np.float32)


def prototype_class(aus: np.ndarray) -> np.ndarray:
    """Per row of AU intensities, the class whose AU set is exactly the strong AUs (above the
    gap between DISTRACTOR_MAX and CLASS_AU_RANGE), or -1 when none is: the generator's own
    rule, so it recovers the class of every face drawn by ``sample_aus``."""
    cut = (DISTRACTOR_MAX + CLASS_AU_RANGE[0]) / 2
    strong = np.asarray(aus) > cut
    patterns = np.array([[au in CLASS_AUS[c] for au in AU_LIST] for c in CLASS_NAMES])
    match = (strong[:, None, :] == patterns[None]).all(-1)
    return np.where(match.any(1), match.argmax(1), -1).astype(np.int64)


@cache
def _curve_weights(n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return np.hstack([(1 - t) ** 2 - (1 - t) * t, 4 * (1 - t) * t, t**2 - (1 - t) * t])


def _curve(a: Sequence[float], m: Sequence[float], b: Sequence[float], n: int = 9) -> np.ndarray:
    """Quadratic curve from a to b that passes through m at its midpoint (cached weights: speed)."""
    return _curve_weights(n) @ np.array([a, m, b], np.float64)


@cache
def unit_circle(n: int) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], 1)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 20) -> np.ndarray:
    return unit_circle(n) * (rx, ry) + (cx, cy)


@cache
def _coords(s: int) -> np.ndarray:
    return np.linspace(-0.5, 0.5, s, dtype=np.float32)


def _ramp(s: int, ang: float) -> np.ndarray:
    """Linear (s, s) ramp in [-0.7, 0.7] along direction `ang`: lighting and background gradients."""
    xy = _coords(s)
    return np.float32(np.cos(ang)) * xy[None, :] + np.float32(np.sin(ang)) * xy[:, None]


def _background(rng: np.random.Generator, s: int, style: Style = DEFAULT_STYLE) -> np.ndarray:
    """Coloured gradient + low-frequency texture + random shapes: clutter a crop should remove."""
    base = rng.uniform(*style.background, 3).astype(np.float32)
    grad = rng.uniform(-60, 60, 3).astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    ramp = _ramp(s, ang)
    tex = cv2.resize(
        rng.normal(0, 22, (5, 5, 3)).astype(np.float32), (s, s), interpolation=cv2.INTER_LINEAR
    )
    img = np.clip(base + ramp[..., None] * grad + tex, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(*style.clutter))):
        kind, col = int(rng.integers(4)), tuple(float(c) for c in rng.uniform(0, 255, 3))
        p, q = rng.uniform(-0.1, 1.1, (2, 2)) * s
        th = int(rng.integers(1, 4)) if rng.uniform() < 0.6 else -1
        p, q = (int(p[0]), int(p[1])), (int(q[0]), int(q[1]))
        if kind == 0:
            cv2.circle(img, p, int(rng.uniform(0.04, 0.25) * s), col, th, _AA)
        elif kind == 1:
            cv2.rectangle(img, p, q, col, th, _AA)
        elif kind == 2:
            cv2.line(img, p, q, col, max(th, 1), _AA)
        else:
            ax = (int(rng.uniform(0.03, 0.2) * s), int(rng.uniform(0.03, 0.2) * s))
            cv2.ellipse(img, p, ax, float(rng.uniform(0, 180)), 0, 360, col, th, _AA)
    return img


def _shade(c: tuple[float, ...], k: float) -> tuple[float, ...]:
    return tuple(float(v) * k for v in c)


class _Canvas:
    """One face's image and its face-to-pixel map (fixed-point, as OpenCV's shift argument
    wants); ``feat`` points move with the yaw, head points do not."""

    def __init__(self, img: np.ndarray, m: np.ndarray, centre: np.ndarray, yaw: float,
                 half_w: float, skin: tuple) -> None:  # fmt: skip
        self.img, self.half_w, self.skin = img, half_w, skin
        self.a_fix = (m * (1 << _SHIFT)).T  # face units -> fixed-point pixels
        self.b_head = centre * (1 << _SHIFT)
        self.b_feat = self.b_head + self.a_fix[0] * yaw  # inner features shift with yaw

    def px(self, pts: np.ndarray, feat: bool = True) -> np.ndarray:
        return (pts @ self.a_fix + (self.b_feat if feat else self.b_head)).round().astype(np.int32)

    def fill(self, pts: np.ndarray, col: tuple, feat: bool = True) -> None:
        cv2.fillPoly(self.img, [self.px(pts, feat)], col, _AA, _SHIFT)

    def line(self, pts: np.ndarray, col: tuple, w: float = 0.03) -> None:
        width = max(1, round(w * self.half_w))
        cv2.polylines(self.img, [self.px(pts)], False, col, width, _AA, _SHIFT)

    def crease(self, pts: np.ndarray, strength: float) -> None:
        """A wrinkle whose visibility follows the AU's intensity."""
        if strength > 0.02:
            self.line(pts, _shade(self.skin, 1 - 0.45 * min(strength, 1.0)), 0.025)


def _render_one(
    rng: np.random.Generator,
    idn: Identity,
    label: int,
    s: int,
    style: Style = DEFAULT_STYLE,
    independent_aus: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one face; all randomness comes from `rng` in a fixed order (AUs, pose, background,
    then the photometric nuisance); the drawing in between draws nothing. With
    ``independent_aus`` the AUs ignore ``label`` (``sample_independent_aus``)."""
    aus = sample_independent_aus(rng) if independent_aus else sample_aus(rng, label)
    a = dict(zip(AU_LIST, aus.tolist(), strict=True))
    # Pose: in-plane rotation, scale, position, yaw (horizontal squash + feature shift).
    theta = np.deg2rad(rng.uniform(-10, 10))
    half_w = rng.uniform(0.45, 0.72) * s / 2
    squash = rng.uniform(0.86, 1.0)
    yaw = rng.choice([-1.0, 1.0]) * (1 - squash) * 0.9
    cx = s / 2 + rng.uniform(-1, 1) * max(s / 2 - half_w, 0) * 0.8
    cy = s / 2 + rng.uniform(-0.06, 0.1) * s
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    m = half_w * rot @ np.diag([squash, 1.0])
    centre = np.array([cx, cy])
    cv = _Canvas(_background(rng, s, style), m, centre, yaw, half_w, idn.skin)
    face = _draw_head(cv, idn, a[26])
    _draw_upper_face(cv, idn, a)
    ny, nw = _draw_nose(cv, idn, a)
    _draw_mouth(cv, idn, a, ny, nw)
    # Box: bounding box of the drawn face ellipse, clipped to the image.
    q = face @ m.T + centre
    box = np.clip(np.r_[np.floor(q.min(0)), np.ceil(q.max(0)) + 1], 0, s).astype(np.int32)
    return _photometric(rng, cv.img, s, style), aus, box


def _draw_head(cv: _Canvas, idn: Identity, au26: float) -> np.ndarray:
    """Hair (behind), shoulders, neck, ears, the face and the hair over the forehead; returns
    the face outline (AU26 drops the chin)."""
    skin, asp, jaw = idn.skin, idn.asp, 0.14 * au26
    face = unit_circle(48) * (1.0, asp)
    face[face[:, 1] > 0, 1] *= (asp + jaw) / asp
    if idn.hair_style == 1:
        cv.fill(_ellipse(0, 0.25, 1.28, asp + 0.55, 28), idn.hair, False)
    elif idn.hair_style == 2:
        cv.fill(_ellipse(0, -0.15, 1.12, asp + 0.05, 28), idn.hair, False)
    cv.fill(_ellipse(0, asp + 1.35, 2.3, 0.95, 28), idn.shirt, False)
    neck = np.array([[-0.42, asp * 0.5], [0.42, asp * 0.5], [0.45, asp + 0.8], [-0.45, asp + 0.8]])
    cv.fill(neck, _shade(skin, 0.82), False)
    for sd in (-1, 1):
        cv.fill(_ellipse(sd * 0.98, idn.ey + 0.12, 0.13, 0.23, 12), _shade(skin, 0.9), False)
    cv.fill(face, skin, False)
    cv2.polylines(cv.img, [cv.px(face, False)], True, _shade(skin, 0.8), 1, _AA, _SHIFT)
    if idn.hair_style != 3:  # cap of hair over the forehead
        top = face[face[:, 1] < -asp * idn.fringe]
        edge = _curve(top[-1], [0, -asp * idn.fringe + 0.08], top[0])
        cv.fill(np.vstack([top, edge]), idn.hair, False)
    return face


def _draw_upper_face(cv: _Canvas, idn: Identity, a: dict[int, float]) -> None:
    """Forehead (AU1/AU2) and glabella (AU4) creases, then each eye with its brow."""
    ey = idn.ey
    for k in (0.22, 0.32):
        v = ey - idn.bh - k
        w = 0.12 + 0.3 * a[2]
        cv.crease(_curve([-w, v + 0.02], [0, v - 0.02], [w, v + 0.02]), max(a[1], a[2]))
    for sd in (-1, 1):
        cv.crease(np.array([[sd * 0.06, ey - idn.bh + 0.06], [sd * 0.04, ey - idn.bh - 0.1]]), a[4])
    for sd in (-1, 1):
        _draw_eye(cv, idn, a, sd)
    if idn.glasses:
        es, ew = idn.es, idn.ew
        cv.line(np.array([[-(es - 1.35 * ew), ey], [es - 1.35 * ew, ey]]), (30.0, 30.0, 30.0), 0.03)


def _draw_eye(cv: _Canvas, idn: Identity, a: dict[int, float], sd: int) -> None:
    """One eye (lids by AU5/6/7/9), its brow (AU1, AU2, AU4, AU9), cheek and crow's feet (AU6)."""
    ey, es, ew = idn.ey, idn.es, idn.ew
    au1, au2, au4, au5, au6, au7, au9 = a[1], a[2], a[4], a[5], a[6], a[7], a[9]
    x0, x1 = sd * (es - ew), sd * (es + ew)
    up = ey - idn.eo * (1 + 1.1 * au5 - 0.35 * au7 - 0.3 * au6 - 0.2 * au9)
    lo = ey + 0.8 * idn.eo * max(1 - 0.7 * au6 - 0.55 * au7 - 0.3 * au9 + 0.25 * au5, 0.15)
    upper = _curve([x0, ey], [sd * es, up], [x1, ey - 0.01])
    lower = _curve([x0, ey], [sd * es, lo], [x1, ey - 0.01])
    cv.fill(np.vstack([upper, lower[::-1]]), (238.0, 236.0, 230.0))
    xs = upper[:, 0] if sd > 0 else upper[::-1, 0]
    uy, ly = (upper[:, 1], lower[:, 1]) if sd > 0 else (upper[::-1, 1], lower[::-1, 1])
    for r, col in ((0.075, idn.iris), (0.035, (15.0, 12.0, 12.0))):
        e = _ellipse(sd * es, ey, r, r, 14)
        e[:, 1] = np.clip(e[:, 1], np.interp(e[:, 0], xs, uy), np.interp(e[:, 0], xs, ly))
        cv.fill(e, col)
    cv.line(upper, (35.0, 25.0, 25.0), 0.045)
    fold = _curve([x0, ey - 0.02], [sd * es, up - 0.07], [x1, ey - 0.04])
    cv.line(fold, _shade(idn.skin, 0.8), 0.02)
    b = ey - idn.bh
    bi = [sd * (es - 0.95 * ew - 0.05 * au4), b - 0.16 * au1 + 0.12 * au4 + 0.04 * au9]
    bm = [sd * es, b - 0.05 - 0.07 * au1 - 0.1 * au2 + 0.08 * au4]
    bo = [sd * (es + 1.15 * ew), b + 0.02 - 0.16 * au2 + 0.02 * au4]
    brow = _curve(bi, bm, bo, 8)
    half = _BROW_TAPER * [0, idn.bt / 2]
    cv.fill(np.vstack([brow - half, (brow + half)[::-1]]), _shade(idn.hair, 0.8))
    cheek = [sd * (es - 0.6 * ew), lo + 0.1], [sd * es, lo + 0.14], [sd * (es + ew), lo + 0.06]
    cv.crease(_curve(*cheek), au6)
    cv.crease(np.array([[x1 + sd * 0.03, ey - 0.03], [x1 + sd * 0.12, ey - 0.07]]), au6)
    cv.crease(np.array([[x1 + sd * 0.03, ey + 0.02], [x1 + sd * 0.12, ey + 0.06]]), au6)
    if idn.glasses:
        ring = _ellipse(sd * es, ey, ew * 1.35, ew * 1.1, 16)[list(range(16)) + [0]]
        cv.line(ring, (30.0, 30.0, 30.0), 0.03)


def _draw_nose(cv: _Canvas, idn: Identity, a: dict[int, float]) -> tuple[float, float]:
    """AU9 wrinkles the bridge and lifts/widens the nostrils; returns the nose's y and width."""
    ey, au9, skin = idn.ey, a[9], idn.skin
    ny, nw = idn.ny - 0.05 * au9, idn.nw * (1 + 0.25 * au9)
    for k in (0.0, 0.07):
        cv.crease(_curve([-0.08, ey + 0.02 + k], [0, ey + k], [0.08, ey + 0.02 + k]), au9)
    for sd in (-1, 1):
        side = np.array([[sd * 0.06, ey + 0.12], [sd * nw * 0.85, ny - 0.04]])
        cv.line(side, _shade(skin, 0.88), 0.02)
        cv.fill(_ellipse(sd * nw * 0.5, ny, 0.045, 0.025, 10), _shade(skin, 0.45))
    cv.line(_curve([-nw, ny - 0.02], [0, ny + 0.03], [nw, ny - 0.02]), _shade(skin, 0.75), 0.025)
    return ny, nw


def _draw_mouth(cv: _Canvas, idn: Identity, a: dict[int, float], ny: float, nw: float) -> None:
    """AU12 corners up/out, AU15 down, AU20 wider, AU23 narrower and thinner, AU16/AU26 open;
    the nasolabial folds deepen with AU12 / AU9."""
    au9, au12, au15, au16, au20, au23, au26 = a[9], a[12], a[15], a[16], a[20], a[23], a[26]
    my = idn.my + 0.05 * au26
    cw = idn.mw * (1 + 0.15 * au12 + 0.35 * au20 - 0.22 * au23 - 0.05 * au15)
    cv_ = my + idn.rest - 0.2 * au12 + 0.18 * au15 + 0.03 * au20
    gap = 0.3 * au26 + 0.09 * au16
    thick = idn.lip * (1 - 0.65 * au23)
    ui = my - 0.04 * au9 - 0.03 * au16
    li = ui + gap + 0.01
    cl, cr = [-cw, cv_], [cw, cv_]
    in_up, in_lo = _curve(cl, [0, ui], cr, 11), _curve(cl, [0, li], cr, 11)
    out_up = _curve(cl, [0, ui - thick], cr, 11)
    out_lo = _curve(cl, [0, li + thick * 1.3 + 0.04 * au16], cr, 11)
    for sd in (-1, 1):
        fold = [sd * nw * 1.15, ny - 0.04], [sd * (cw * 0.9 + 0.04), (ny + cv_) / 2]
        cv.crease(_curve(*fold, [sd * (cw + 0.06), cv_ + 0.08]), 0.25 + 0.75 * max(au12, au9))
    cv.fill(np.vstack([out_up, out_lo[::-1]]), idn.lip_rgb)
    if gap > 0.015:
        cv.fill(np.vstack([in_up, in_lo[::-1]]), (45.0, 20.0, 25.0))
        teeth = np.vstack([in_up, _curve(cl, [0, ui + min(gap, 0.07)], cr, 11)[::-1]])
        cv.fill(teeth, (228.0, 225.0, 215.0))
    cv.line(in_up, _shade(idn.lip_rgb, 0.55), 0.025)


def _photometric(rng: np.random.Generator, img: np.ndarray, s: int, style: Style) -> np.ndarray:
    """Directional light, brightness/contrast, blur, sensor noise (the style's ranges)."""
    f = img.astype(np.float32)
    ang, amp = rng.uniform(0, 2 * np.pi), rng.uniform(*style.light)
    light = 1 + amp * _ramp(s, ang)
    f = f * light[..., None] * rng.uniform(*style.gain) + rng.uniform(*style.offset)
    sigma = rng.uniform(*style.blur)
    if sigma > 0.3:
        f = cv2.GaussianBlur(f, (0, 0), sigma)
    f += rng.standard_normal((s, s, 3), dtype=np.float32) * rng.uniform(*style.noise)
    return np.clip(f + 0.5, 0, 255).astype(np.uint8)


def render_items(
    indices: Iterable[int],
    *,
    n_subjects: int,
    per_class: int,
    image_size: int,
    seed: int,
    style: Style = DEFAULT_STYLE,
    independent_aus: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render (images, aus, boxes) for some items; any chunking/order gives identical bytes.

    ``style`` (default: the embedded set's own) changes only the nuisance ranges;
    ``independent_aus`` draws each face's AUs without its class (``sample_independent_aus``):
    the label is then a slot of the item table that the face does not show."""
    sizes = {"n_subjects": (n_subjects, 1), "per_class": (per_class, 1)}
    _check(**sizes, image_size=(image_size, 32), seed=(seed, 0))
    idx = np.asarray(list(indices), dtype=np.int64).reshape(-1)
    n_items, block = n_subjects * len(CLASS_NAMES) * per_class, len(CLASS_NAMES) * per_class
    if idx.size and (idx.min() < 0 or idx.max() >= n_items):
        raise ValueError(
            f"indices must lie in [0, {n_items}), got range [{idx.min()}, {idx.max()}]"
        )
    images = np.empty((idx.size, image_size, image_size, 3), np.uint8)
    aus = np.empty((idx.size, len(AU_LIST)), np.float32)
    boxes = np.empty((idx.size, 4), np.int32)
    identities: dict[int, Identity] = {}
    for k, i in enumerate(idx.tolist()):
        subject, label = i // block, (i % block) // per_class
        if subject not in identities:
            identities[subject] = identity(seed, subject, style)
        rng = np.random.default_rng(np.random.SeedSequence([seed, i]))
        images[k], aus[k], boxes[k] = _render_one(
            rng, identities[subject], label, image_size, style, independent_aus
        )
    return images, aus, boxes


def generate(
    n_subjects: int,
    per_class: int,
    image_size: int = 96,
    seed: int = 0,
    style: Style = DEFAULT_STYLE,
    independent_aus: bool = False,
) -> SyntheticFaces:
    """Render the whole data set in one process (small sets, tests); Ray code uses render_items.
    With ``independent_aus`` no face shows its ``labels`` entry (see ``render_items``)."""
    table = item_table(n_subjects, per_class)
    images, aus, boxes = render_items(
        table["index"].to_numpy(),
        n_subjects=n_subjects,
        per_class=per_class,
        image_size=image_size,
        seed=seed,
        style=style,
        independent_aus=independent_aus,
    )
    return SyntheticFaces(
        images=images,
        labels=table["label"].to_numpy(np.int64),
        aus=aus,
        subjects=table["subject"].to_numpy(np.int64),
        boxes=boxes,
    )
