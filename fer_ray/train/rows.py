"""Rows of a data set held as shards, read batch by batch.

A data set at scale never exists as one array: its rows live in shards (consecutive row
ranges, one object each in Ray's object store or one file each). ``Sharded`` knows the row
count of every shard and fetches the shards a request needs through a loader the caller
injects (``ray.get`` on the Ray side; this package never imports Ray); ``Rows`` is one split's
view on it, indexed like a tensor, so training and prediction gather each batch's rows
instead of copying the split first. The values are exactly those a copy would hold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

Loader = Callable[[list[Any]], list[np.ndarray]]


class Sharded:
    """Rows split into shards: ``parts`` (arrays, or handles ``loader`` turns into arrays)
    with ``counts`` rows each; every shard has rows of ``row_shape`` and ``dtype``."""

    def __init__(
        self,
        parts: Sequence[Any],
        counts: Sequence[int],
        row_shape: tuple[int, ...],
        dtype: Any,
        loader: Loader | None = None,
    ) -> None:
        if len(parts) != len(counts):
            raise ValueError(f"{len(parts)} shards but {len(counts)} row counts")
        self.parts = list(parts)
        self.counts = [int(c) for c in counts]
        self.offsets = np.concatenate([[0], np.cumsum(self.counts, dtype=np.int64)])
        self.row_shape = tuple(int(d) for d in row_shape)
        self.dtype = np.dtype(dtype)
        self.loader = loader
        self._arrays: dict[int, np.ndarray] = {}

    @classmethod
    def of(cls, array: np.ndarray) -> Sharded:
        """One in-memory array as a single shard."""
        return cls([array], [len(array)], array.shape[1:], array.dtype)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.row_shape)

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": {}}  # shards travel as handles, fetched where read

    def shard(self, i: int) -> np.ndarray:
        """Shard ``i``'s rows (fetched once through the loader, then kept)."""
        return self._fetch([i])[i]

    def _fetch(self, which: Sequence[int]) -> dict[int, np.ndarray]:
        missing = [i for i in which if i not in self._arrays]
        if missing:
            if self.loader is None:
                got = [self.parts[i] for i in missing]
            else:
                got = self.loader([self.parts[i] for i in missing])
            for i, a in zip(missing, got):
                if len(a) != self.counts[i]:
                    raise ValueError(f"shard {i} has {len(a)} rows, expected {self.counts[i]}")
                self._arrays[i] = a
        return {i: self._arrays[i] for i in which}

    def take(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """The rows ``rows`` (global indices, in that order) as a new array; reads only the
        shards they are in."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), *self.row_shape), self.dtype)
        if not len(rows):
            return out
        if rows.min() < 0 or rows.max() >= len(self):
            raise IndexError(f"rows outside 0..{len(self) - 1}")
        part = np.searchsorted(self.offsets, rows, side="right") - 1
        shards = self._fetch(np.unique(part).tolist())
        if len(shards) == 1:
            (i, a), = shards.items()  # fmt: skip
            return a[rows - self.offsets[i]]
        for i, a in shards.items():
            sel = part == i
            out[sel] = a[rows[sel] - self.offsets[i]]
        return out


class Rows:
    """The rows ``index`` of ``source``, indexed like a tensor: ``rows[i]`` (ints, a slice,
    an index tensor or array) gathers just those rows as a tensor, through ``transform``
    when given (a fixed per-batch function, e.g. a recipe's eval transform)."""

    def __init__(
        self,
        source: Sharded,
        index: np.ndarray,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.source = source
        self.index = np.asarray(index, dtype=np.int64)
        self.transform = transform
        self.device = torch.device("cpu")

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        """(rows, *one row's shape after ``transform``)."""
        if not len(self):
            return (0, *self.source.row_shape)
        return (len(self), *self[:1].shape[1:])

    @property
    def nbytes(self) -> int:
        """Bytes of every row as one tensor (float32 after a transform of uint8 pixels)."""
        widen = 4 if self.transform is not None and self.source.dtype == np.uint8 else 1
        return len(self) * self.source.row_bytes * widen

    def __getitem__(self, i: Any) -> torch.Tensor:
        if isinstance(i, torch.Tensor):
            i = i.cpu().numpy()
        x = torch.from_numpy(np.ascontiguousarray(self.source.take(self.index[i])))
        return self.transform(x) if self.transform is not None else x

    def materialize(self) -> torch.Tensor:
        """Every row as one tensor (the copy ``Rows`` otherwise avoids)."""
        return self[:]

    def to(self, device: torch.device | str) -> torch.Tensor:
        """Every row as one tensor on ``device``."""
        return self.materialize().to(device)
