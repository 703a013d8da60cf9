"""A small stand-in for the course's SFEW.xlsx (LPQ/PHOG descriptors), written to a tmp dir.

Two inputs (``SIGNAL_FEATURES``) carry the class: their class means lie on a circle of radius
``3 * signal`` (in noise-std units), so a 10-50-7 net beats chance (1/7) clearly and eliminating
them hurts far more than eliminating two noise inputs. The other eight are noise plus a small
per-movie offset (so leaking a movie across folds would matter). Every column gets its own
offset and scale, as raw descriptors do, so z-scoring is exercised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SIGNAL_FEATURES = ("lpq2", "phog3")
HEADER_FEATURES = [f"{k} feature {i}" for k in ("LPQ", "PHOG") for i in range(1, 6)]


def write_sfew_sheet(
    path: str | Path,
    n_movies: int = 12,
    per_movie: int = 10,
    seed: int = 0,
    signal: float = 1.0,
) -> pd.DataFrame:
    """Write ``Image name | label | LPQ feature 1..5 | PHOG feature 1..5``; return that frame."""
    rng = np.random.default_rng(seed)
    n = n_movies * per_movie
    movie = np.repeat(np.arange(n_movies), per_movie)
    labels = np.concatenate([rng.permutation(np.arange(per_movie) % 7) for _ in range(n_movies)])
    z = rng.normal(size=(n, 10))
    z += 0.3 * rng.normal(size=(n_movies, 10))[movie]  # movie effect
    angle = 2 * np.pi * labels / 7
    cols = [f"{k}{i}" for k in ("lpq", "phog") for i in range(1, 6)]
    a, b = (cols.index(f) for f in SIGNAL_FEATURES)
    z[:, a] += 3 * signal * np.cos(angle)
    z[:, b] += 3 * signal * np.sin(angle)
    scale = rng.uniform(0.01, 5.0, size=10)
    offset = rng.uniform(-2.0, 10.0, size=10)
    x = offset + scale * z
    names = [
        f"Movie{m:02d}_{int(rng.integers(0, 10**9)):09d}_{int(rng.integers(0, 100)):08d}"
        for m in movie
    ]
    df = pd.DataFrame({"Image name": names, "label": labels + 1})
    for j, h in enumerate(HEADER_FEATURES):
        df[h] = x[:, j]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_excel(path, index=False, engine="openpyxl")
    return df
