"""The Ray side of the sharded data path: one object per shard in the store, never one array.

Crop shards are read from their cache chunks by tasks on the nodes where the cache folder is
shared storage, else put one at a time by the driver (which holds one chunk at a time); a
bundle's ``Sharded`` inputs carry the references and ``fetch`` as their loader, so a
trial reads (zero-copy from its node's store) only the shards its rows are in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ray

from fer_ray.faces.shards import CropShards
from fer_ray.stages.cluster import cache_shared
from fer_ray.train.rows import Sharded


def fetch(refs: list[Any]) -> list[np.ndarray]:
    """A ``Sharded`` loader: the arrays of object references (a module function, so it
    travels with the bundle by name)."""
    return ray.get(list(refs))


@ray.remote
def _read_chunk(crops: CropShards, i: int) -> np.ndarray:
    return crops.chunk(i)


def crop_refs(crops: CropShards) -> list[ray.ObjectRef]:
    """One object per crop shard, made once per driver: read by tasks on the nodes where
    every node shares the cache folder (no pixel through the driver), else read and put here
    (each chunk read, put, dropped)."""
    if crops.refs is None:
        if cache_shared(crops.cache.dir.parent):
            on_disk = ray.put(crops.on_disk())
            task = _read_chunk.options(scheduling_strategy="SPREAD")
            crops.refs = [task.remote(on_disk, i) for i in range(len(crops.counts))]
        else:
            crops.refs = [ray.put(crops.chunk(i)) for i in range(len(crops.counts))]
    return crops.refs


def crop_sharded(crops: CropShards) -> Sharded:
    """The crops as a bundle's inputs: object references, fetched where a trial reads them."""
    return Sharded(crop_refs(crops), crops.counts, crops.row_shape, np.uint8, fetch)


def shard_ranges(n: int, rows: int) -> list[tuple[int, int]]:
    """Consecutive row ranges of at most ``rows`` rows covering ``0..n``."""
    return [(a, min(a + rows, n)) for a in range(0, n, rows)]


def covering(counts: list[int], lo: int, hi: int) -> tuple[list[int], int]:
    """The shards (of ``counts`` rows each) that hold rows ``lo..hi``, and the position of
    row ``lo`` in the first of them."""
    offsets = np.concatenate([[0], np.cumsum(counts)])
    first = int(np.searchsorted(offsets, lo, side="right") - 1)
    last = int(np.searchsorted(offsets, hi - 1, side="right") - 1) if hi > lo else first
    return list(range(first, last + 1)), lo - int(offsets[first])
