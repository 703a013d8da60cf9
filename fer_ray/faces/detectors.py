"""Face detector registry and the crop every detector shares.

A detector is ``detect(image_rgb_uint8, gt_box_or_None) -> Box | None``. None means the
detection failed and the caller falls back to a centre crop and counts it; nothing is dropped
silently. Returned boxes are ints (x0, y0, x1, y1), x1/y1 exclusive, clipped to the image, with
positive width and height; a box that is empty after clipping counts as a miss.

Multi-face rule, one per detector (the report and README cite this list):

- ``groundtruth``: the data set's own box (one per image, no choice to make).
- ``center``: no detection; always the central square.
- ``haar``: the largest box by area, ties → first found (`largest`). Margin 0.2 (seed 002).
- ``mtcnn``: the box with the highest detection probability (`most_probable`), as seed 000
  states ("only the face with highest detect probability"); ties → the larger box
  (facenet-pytorch lists boxes largest first). Margin 0.0: seed 000 crops the detected box.
- ``dlib``: the largest box by area; boxes within 10 % of the largest area count as a tie and
  the highest HOG score among them wins (`largest_then_score`). Seed 001's failure is
  background and supporting-character faces being cropped instead of the subject: the subject
  is usually the largest face, and its future work proposes picking "the most accurate faces",
  which settles near-ties (on ``skimage.data.astronaut()`` the real face and a false one differ
  by 1 % in area, scores 1.16 vs 0.12). Margin 0.0: seed 001 says nothing about enlarging
  dlib's box.

The heavy libraries (facenet-pytorch, dlib) are imported only when their detector is built, and
built once per process, because Ray tasks call the factory once per chunk.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from fer_ray.data.source import Box
from fer_ray.errors import DependencyError
from fer_ray.registry import Registry


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


def _area(b: Box) -> int:
    return (b[2] - b[0]) * (b[3] - b[1])


def clip_box(box: Sequence[float], shape: tuple[int, ...]) -> Box | None:
    """``box`` rounded to ints and clipped to an image of ``shape``; None when it is empty.

    Detectors (MTCNN, dlib) may return boxes reaching past the border; an empty box after
    clipping is a miss, not a 0-pixel crop.
    """
    h, w = shape[:2]
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    x0, x1 = min(max(x0, 0), w), min(max(x1, 0), w)
    y0, y1 = min(max(y0, 0), h), min(max(y1, 0), h)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _rgb(image: np.ndarray) -> np.ndarray:
    """Contiguous uint8 RGB (dlib rejects strided views; grey images get three channels)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image


def largest(boxes: list[Box]) -> Box | None:
    """The haar rule for multi-face images: keep the largest box (area), ties → first."""
    if not boxes:
        return None
    return max(boxes, key=_area)


def most_probable(boxes: list[Box], probs: Sequence[float]) -> Box | None:
    """The mtcnn rule (seed 000): the highest detection probability, ties → first listed."""
    if not boxes:
        return None
    return boxes[int(np.argmax(np.asarray(probs, np.float64)))]


def largest_then_score(boxes: list[Box], scores: Sequence[float], tie: float = 0.1) -> Box | None:
    """The dlib rule: the largest box; boxes within ``tie`` of its area → highest score wins.

    Area alone cannot separate a real face from a false detection of the same size (seed 001's
    background faces); the detector's score can.
    """
    if not boxes:
        return None
    top = max(_area(b) for b in boxes)
    near = [i for i, b in enumerate(boxes) if _area(b) >= (1 - tie) * top]
    return boxes[max(near, key=lambda i: float(scores[i]))]  # max keeps the first on a tie


def _haar() -> Callable[[np.ndarray, Box | None], Box | None]:
    """OpenCV's frontal-face Haar cascade (seed 002); the box is enlarged by the margin."""
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise DependencyError(
            f"OpenCV Haar cascade not found at {path}; install opencv-python-headless<5"
        )

    def detect(image: np.ndarray, gt: Box | None) -> Box | None:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        side = min(grey.shape[:2])
        found = cascade.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=4, minSize=(max(12, side // 8),) * 2
        )
        boxes = [clip_box((x, y, x + w, y + h), grey.shape) for x, y, w, h in found]
        return largest([b for b in boxes if b is not None])

    return detect


def _mtcnn_device() -> str:
    """CUDA when this process sees a GPU (a Ray task only does when it reserved one), else cpu."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.lru_cache(maxsize=4)
def _load_mtcnn(device: str) -> Any:
    """One MTCNN per process and device: the factory runs once per chunk in Ray tasks."""
    try:
        from facenet_pytorch import MTCNN
    except ImportError as e:
        raise DependencyError(
            "faces.detector=mtcnn needs facenet-pytorch; install it with "
            "`pip install 'fer_ray[faces]'` (or `pip install facenet-pytorch==2.5.3`)"
        ) from e
    # select_largest=True only orders the boxes largest first: ties on probability → larger.
    return MTCNN(keep_all=True, select_largest=True, device=device)


def _mtcnn() -> Callable[[np.ndarray, Box | None], Box | None]:
    """facenet-pytorch's MTCNN (seed 000): the most probable face."""
    model = _load_mtcnn(_mtcnn_device())

    def detect(image: np.ndarray, gt: Box | None) -> Box | None:
        found, probs = model.detect(_rgb(image))
        if found is None:
            return None
        kept = [(clip_box(b, image.shape), p) for b, p in zip(found, probs) if p is not None]
        kept = [(b, p) for b, p in kept if b is not None]
        return most_probable([b for b, _ in kept], [p for _, p in kept])

    return detect


@functools.lru_cache(maxsize=1)
def _load_dlib() -> Any:
    """dlib's HOG frontal-face detector, once per process."""
    try:
        import dlib
    except ImportError as e:
        raise DependencyError(
            "faces.detector=dlib needs dlib; install it with `pip install 'fer_ray[faces]'`"
            " (or the prebuilt wheel: `pip install dlib-bin`)"
        ) from e
    return dlib.get_frontal_face_detector()


def _dlib() -> Callable[[np.ndarray, Box | None], Box | None]:
    """dlib's HOG detector, upsampled once (finds faces down to ~40 px), seed 001."""
    detector = _load_dlib()

    def detect(image: np.ndarray, gt: Box | None) -> Box | None:
        rects, scores, _ = detector.run(_rgb(image), 1, 0.0)
        kept = [
            (clip_box((r.left(), r.top(), r.right() + 1, r.bottom() + 1), image.shape), s)
            for r, s in zip(rects, scores)
        ]
        kept = [(b, s) for b, s in kept if b is not None]
        return largest_then_score([b for b, _ in kept], [s for _, s in kept])

    return detect


DETECTORS: Registry[DetectorSpec] = Registry("face detector", "faces.detector")
DETECTORS.register("groundtruth", DetectorSpec(_groundtruth, 0.0, True))
DETECTORS.register("center", DetectorSpec(_center, 0.0, False))
DETECTORS.register("haar", DetectorSpec(_haar, 0.2, True))  # seed 002: box enlarged 20 %
DETECTORS.register("mtcnn", DetectorSpec(_mtcnn, 0.0, True))  # seed 000 crops the detected box
DETECTORS.register("dlib", DetectorSpec(_dlib, 0.0, True))  # seed 001 gives no margin, so none


def get(name: str) -> DetectorSpec:
    """The detector for ``faces.detector`` = ``name``; a typo gets a did-you-mean."""
    return DETECTORS.get(name)
