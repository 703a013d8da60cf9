"""The crops of a prepared data set as shards: one per crop-cache chunk, its readable rows.

The driver never holds every crop: the manifest says which rows exist, each shard is read
from its cache chunk when something needs its pixels (``take``, ``chunk``), and the Ray side
puts one object per shard into the store (``refs``, filled by the stage that needs them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fer_ray.faces.cache import CropCache
from fer_ray.train.rows import Sharded


class CropShards:
    """Crops (uint8 ``size``×``size``×3) of the kept rows, chunk by chunk: ``kept[i]`` are the
    positions of chunk ``i``'s rows that stay (readable ones)."""

    def __init__(self, cache: CropCache, kept: list[np.ndarray], size: int) -> None:
        self.cache = cache
        self.kept = [np.asarray(k, dtype=np.int64) for k in kept]
        self.size = int(size)
        self.counts = [len(k) for k in self.kept]
        self.refs: list[Any] | None = None  # one object-store reference per shard (stage side)

    def __len__(self) -> int:
        return sum(self.counts)

    @property
    def row_shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, 3)

    def chunk(self, i: int) -> np.ndarray:
        """Shard ``i``'s crops, read from its cache chunk."""
        crops = self.cache.get_chunk(i)[0]
        return crops if len(self.kept[i]) == len(crops) else crops[self.kept[i]]

    def on_disk(self) -> CropShards:
        """The same shards with nothing loaded, to send to a task that reads its chunks from
        the (shared) cache itself."""
        return CropShards(CropCache(self.cache.dir.parent, self.cache.key), self.kept, self.size)

    def _load(self, ids: list[int]) -> list[np.ndarray]:
        return [self.chunk(i) for i in ids]

    def sharded(self) -> Sharded:
        """The crops as a ``Sharded`` read from the cache (nothing kept after a read)."""
        n = len(self.kept)
        return Sharded(list(range(n)), self.counts, self.row_shape, np.uint8, self._load)

    def take(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """The crops of ``rows`` (kept-row indices, in that order); reads only their chunks."""
        return self.sharded().take(rows)
