"""Render speed of the embedded synthetic data set, and the cost of chunked rendering.

    python benchmarks/bench_synthetic.py [--sizes 48 96] [--n-subjects 10] [--per-class 10] [--quick]

Prints milliseconds per image for each image size, and the ratio of rendering the same items
in 8 chunks (as the parallel Ray tasks do, each rebuilding its subjects' identities) to
rendering them in one call; it also checks that both give byte-identical images.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fer_ray.data.synthetic import generate, render_items


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[48, 96])
    p.add_argument("--n-subjects", type=int, default=10)
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="48 px, 3 subjects x 3 per class")
    args = p.parse_args()
    if args.quick:  # smaller defaults; values given on the command line still win
        p.set_defaults(sizes=[48], n_subjects=3, per_class=3)
        args = p.parse_args()
    kw = {"n_subjects": args.n_subjects, "per_class": args.per_class}
    n = args.n_subjects * 7 * args.per_class
    generate(1, 1, image_size=max(args.sizes))  # warm-up (imports, caches)
    for size in args.sizes:
        t0 = time.perf_counter()
        whole = generate(**kw, image_size=size, seed=0)
        t_whole = time.perf_counter() - t0
        t0 = time.perf_counter()
        chunks = [
            render_items(c, **kw, image_size=size, seed=0)[0]
            for c in np.array_split(np.arange(n), 8)
        ]
        t_chunks = time.perf_counter() - t0
        same = np.array_equal(np.concatenate(chunks), whole.images)
        print(
            f"size {size:3d}: {1e3 * t_whole / n:.3f} ms/image over {n} images; "
            f"8 chunks / one call = {t_chunks / t_whole:.2f}; identical={same}"
        )


if __name__ == "__main__":
    main()
