"""The crop every detector shares, and one chunk of the prepare stage: load, detect, crop.

A failed detection (None) falls back to the centre crop and is flagged, never dropped; an
unreadable image gets a black crop and its own flag, so the caller can list every bad file.
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_ray.data.source import Box, Source
from fer_ray.faces import detectors


def square_box(box: Box, margin: float) -> tuple[float, float, float]:
    """Centre and half side of the square around ``box`` enlarged by ``margin``."""
    x0, y0, x1, y1 = box
    half = max(x1 - x0, y1 - y0) * (1 + margin) / 2
    return (x0 + x1) / 2, (y0 + y1) / 2, half


def crop(
    image: np.ndarray, box: Box | None, margin: float, size: int, fallback: str = "square"
) -> np.ndarray:
    """Square crop around ``box``, resized to ``size``.

    With no box (a failed detection) ``fallback`` decides: ``square`` takes the central square
    of side min(h, w) and resizes it; ``native`` cuts the central ``size`` x ``size`` pixels
    unscaled, as seed 000 did ("the central 224x224 area"), or the square when the image is
    smaller than that. Parts of the square outside the image are filled by edge replication,
    so a face at the border keeps its aspect ratio.
    """
    h, w = image.shape[:2]
    if box is None and fallback == "native" and min(h, w) >= size:
        y0, x0 = (h - size) // 2, (w - size) // 2
        return np.ascontiguousarray(image[y0 : y0 + size, x0 : x0 + size])
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


def crop_chunk(
    source: Source, items: list[str], detector: str, margin: float, size: int,
    fallback: str = "square",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Load, detect and crop one chunk.

    Returns (crops, fallback flags, boxes with -1 for none, unreadable flags). An
    unreadable image gets a black crop and its flag; the driver decides whether the
    run may go on without it (``data.skip_unreadable``).
    """
    spec = detectors.get(detector)
    detect = spec.factory()
    crops, fallback, boxes, unreadable = [], [], [], []
    for image, gt in source.load(items):
        if image is None:
            crops.append(np.zeros((size, size, 3), np.uint8))
            fallback.append(False)
            boxes.append((-1, -1, -1, -1))
            unreadable.append(True)
            continue
        box = detect(image, gt)
        crops.append(crop(image, box, margin, size, fallback))
        fallback.append(box is None and spec.counts_fallbacks)
        boxes.append(box if box is not None else (-1, -1, -1, -1))
        unreadable.append(False)
    return (
        np.stack(crops),
        np.array(fallback, bool),
        np.array(boxes, np.int32).reshape(-1, 4),
        np.array(unreadable, bool),
    )
