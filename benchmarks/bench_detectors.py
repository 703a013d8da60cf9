"""Hit rate and per-image time of the real face detectors (haar, dlib, mtcnn).

    python benchmarks/bench_detectors.py [--sizes 96 128] [--n 100] [--astronaut-repeats 10] [--quick]

Two image sets: ``skimage.data.astronaut()`` (512 px, one real face; reference box
(175, 70)-(265, 170) drawn by eye) timed over several repeats, and ``--n`` synthetic faces from
``fer_ray.data.synthetic`` (one subject each, classes in turn, seed 0) at each ``--sizes``, scored
against their ground-truth boxes (bounding box of the drawn face ellipse). A hit is a returned box
with IoU >= 0.3 against the reference; "found" counts any returned box. Each detector is built
once before timing (its build time is printed apart), and torch and OpenCV are held to one thread,
as in a Ray task with num_cpus=1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ASTRONAUT_FACE = (175, 70, 265, 170)
HIT_IOU = 0.3


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def score(
    detect: Callable[[np.ndarray, tuple | None], tuple | None],
    images: list[np.ndarray],
    refs: list[tuple],
) -> tuple[float, float, float, float]:
    """(found rate, hit rate, mean IoU of hits, mean ms per image) of ``detect`` on ``images``."""
    found = hits = 0
    ious = []
    t0 = time.perf_counter()
    boxes = [detect(image, None) for image in images]
    ms = 1e3 * (time.perf_counter() - t0) / len(images)
    for box, ref in zip(boxes, refs):
        if box is None:
            continue
        found += 1
        if iou(box, ref) >= HIT_IOU:
            hits += 1
            ious.append(iou(box, ref))
    n = len(images)
    return found / n, hits / n, float(np.mean(ious)) if ious else float("nan"), ms


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--detectors", nargs="+", default=["haar", "dlib", "mtcnn"])
    p.add_argument("--sizes", type=int, nargs="+", default=[96, 128])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--astronaut-repeats", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="20 faces at 96 px, 2 repeats")
    args = p.parse_args(argv)
    if args.quick:  # smaller defaults; values given on the command line still win
        p.set_defaults(sizes=[96], n=20, astronaut_repeats=2)
        args = p.parse_args(argv)

    import torch
    from skimage import data

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fer_ray.data.synthetic import CLASS_NAMES, render_items
    from fer_ray.faces import detectors

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    sets = {"astronaut 512px": ([data.astronaut()] * args.astronaut_repeats, None)}
    k = len(CLASS_NAMES)
    idx = [i * k + i % k for i in range(args.n)]  # subject i, class i mod 7
    for size in args.sizes:
        images, _, boxes = render_items(
            idx, n_subjects=args.n, per_class=1, image_size=size, seed=0
        )
        sets[f"synthetic {size}px"] = (list(images), [tuple(map(int, b)) for b in boxes])

    print(
        f"torch threads {torch.get_num_threads()}, OpenCV threads {cv2.getNumThreads()} "
        f"(one-CPU Ray task); hit = IoU >= {HIT_IOU} with the reference box; "
        f"astronaut timed over {args.astronaut_repeats} repeats, synthetic n={args.n}, seed 0"
    )
    head = f"{'detector':8} {'images':16} {'n':>4} {'found':>6} {'hit':>6} {'IoU|hit':>7}"
    head += f" {'ms/img':>7}"
    print(head)
    print("-" * len(head))
    for name in args.detectors:
        t0 = time.perf_counter()
        detect = detectors.get(name).factory()
        build = time.perf_counter() - t0
        detect(sets["astronaut 512px"][0][0], None)  # warm-up: first-call allocations
        for label, (images, refs) in sets.items():
            refs = refs or [ASTRONAUT_FACE] * len(images)
            found, hit, mean_iou, ms = score(detect, images, refs)
            print(
                f"{name:8} {label:16} {len(images):4d} {found:6.0%} {hit:6.0%} "
                f"{mean_iou:7.2f} {ms:7.1f}"
            )
        print(f"{name:8} build (first factory call in a process, imports + weights): {build:.2f} s")


if __name__ == "__main__":
    main()
