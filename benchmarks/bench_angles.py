"""Vectorised ``gedeon.mean_angles`` against the direct double loop of eq. (3).

Usage (from the repository root): ``python benchmarks/bench_angles.py [--features 512]
[--hidden 100] [--loop-rows 64] [--quick]``.  The loop computes every (i, j) angle with its own
dot product and norms, as the equation reads; it is run for the first ``--loop-rows``
features only (each against all F - 1 others) and its time scaled by F / loop_rows to
estimate the full 512 x 512 loop.  Both are timed in the same process, one after the
other, best of several repeats for the vectorised version.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _import_gedeon():
    try:
        from fer_ray.analysis import gedeon
    except ImportError:  # running as a script without the package installed
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from fer_ray.analysis import gedeon
    return gedeon


def loop_mean_angles(w_hidden: np.ndarray, rows: int, absolute: bool = True) -> np.ndarray:
    """Mean angle (degrees) of features ``0..rows-1`` to all others, pair by pair."""
    w = np.abs(w_hidden) if absolute else w_hidden
    n = w.shape[1]
    out = np.empty(rows)
    for i in range(rows):
        total = 0.0
        for j in range(n):
            if i != j:
                a, b = w[:, i], w[:, j]
                cos = float(a @ b) / (float(np.linalg.norm(a)) * float(np.linalg.norm(b)))
                total += float(np.degrees(np.arccos(min(1.0, max(-1.0, cos)))))
        out[i] = total / (n - 1)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--loop-rows", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="128 features, 16 loop rows")
    args = parser.parse_args(argv)
    if args.quick:  # smaller defaults; values given on the command line still win
        parser.set_defaults(features=128, loop_rows=16, repeats=5)
        args = parser.parse_args(argv)
    gedeon = _import_gedeon()

    rng = np.random.default_rng(0)
    w = rng.standard_normal((args.hidden, args.features))
    rows = min(args.loop_rows, args.features)

    gedeon.mean_angles(w)  # warm-up (BLAS threads, allocations)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        vec = gedeon.mean_angles(w, absolute=True)
        times.append(time.perf_counter() - t0)
    t_vec = min(times)

    t0 = time.perf_counter()
    loop = loop_mean_angles(w, rows, absolute=True)
    t_loop_part = time.perf_counter() - t0
    t_loop = t_loop_part * args.features / rows

    max_diff = float(np.max(np.abs(vec[:rows] - loop)))
    print(f"shape: {args.features} features x {args.hidden} hidden (absolute weights)")
    print(f"vectorised mean_angles : {t_vec * 1e3:9.3f} ms  (best of {args.repeats})")
    print(
        f"direct double loop     : {t_loop * 1e3:9.1f} ms  (extrapolated from {rows} of "
        f"{args.features} rows: {t_loop_part * 1e3:.1f} ms measured)"
    )
    print(f"speed-up               : {t_loop / t_vec:9.0f}x")
    print(f"max |difference|       : {max_diff:.2e} degrees over the {rows} checked rows")


if __name__ == "__main__":
    main()
