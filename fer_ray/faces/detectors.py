"""Face detector registry and the crop every detector shares.

A detector returns one box or None. None means the detection failed and the
caller falls back to a centre crop and counts it; nothing is dropped silently.
Multi-face images keep the largest face (seed 001's problem with dlib).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels


@dataclass(frozen=True)
class DetectorSpec:
    factory: Callable[[], Callable[[np.ndarray, Box | None], Box | None]]
    default_margin: float
    counts_fallbacks: bool  # centre crops by design are not failures


def _groundtruth() -> Callable[[np.ndarray, Box | None], Box | None]:
    """The data set's own face box (synthetic faces carry theirs)."""
    return lambda image, gt: gt


def _center() -> Callable[[np.ndarray, Box | None], Box | None]:
    return lambda image, gt: None


def largest(boxes: list[Box]) -> Box | None:
    """The rule for multi-face images: keep the largest box (area), ties → first."""
    if not boxes:
        return None
    return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))


def _haar() -> Callable[[np.ndarray, Box | None], Box | None]:
    """OpenCV's frontal-face Haar cascade (seed 002); the box is enlarged by the margin."""
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(
            f"OpenCV Haar cascade not found at {path}; install opencv-python-headless<5"
        )

    def detect(image: np.ndarray, gt: Box | None) -> Box | None:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        side = min(grey.shape[:2])
        found = cascade.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=4, minSize=(max(12, side // 8),) * 2
        )
        return largest([(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in found])

    return detect


REGISTRY: dict[str, DetectorSpec] = {
    "groundtruth": DetectorSpec(_groundtruth, 0.0, True),
    "center": DetectorSpec(_center, 0.0, False),
    "haar": DetectorSpec(_haar, 0.2, True),
}


def get(name: str) -> DetectorSpec:
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, list(REGISTRY), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"faces.detector={name!r} is not known{hint} ({sorted(REGISTRY)})")
    return REGISTRY[name]


def square_box(box: Box, margin: float) -> tuple[float, float, float]:
    """Centre and half side of the square around ``box`` enlarged by ``margin``."""
    x0, y0, x1, y1 = box
    half = max(x1 - x0, y1 - y0) * (1 + margin) / 2
    return (x0 + x1) / 2, (y0 + y1) / 2, half


def crop(image: np.ndarray, box: Box | None, margin: float, size: int) -> np.ndarray:
    """Square crop around ``box`` (or the central square when None), resized to ``size``.

    Parts of the square outside the image are filled by edge replication, so a face
    at the border keeps its aspect ratio.
    """
    h, w = image.shape[:2]
    if box is None:
        cx, cy, half = w / 2, h / 2, min(h, w) / 2
    else:
        cx, cy, half = square_box(box, margin)
    half = max(half, 1.0)
    x0, y0 = round(cx - half), round(cy - half)
    side = max(1, round(2 * half))
    pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    patch = image[y0 : y0 + side, x0 : x0 + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)
