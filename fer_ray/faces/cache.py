"""Content-addressed crop cache: same pixels + same detector settings → same key.

Entries are written chunk by chunk (so an interrupted preprocessing resumes) and
marked complete only when every chunk is there; a later run with the same key
reads the crops instead of detecting again. A chunk that no longer loads (truncated, torn)
is moved aside as ``chunk_<i>.npz.damaged``, counted in ``damaged`` and computed again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from fer_ray import files
from fer_ray.errors import StoredFileError

CACHE_VERSION = 2  # 2: chunks carry an 'unreadable' flag per item
CHUNK_ARRAYS = ("crops", "fallback", "boxes", "unreadable")


def cache_key(
    source_identity: dict[str, Any], detector: str, margin: float, size: int,
    fallback: str = "square",
) -> str:  # fmt: skip
    blob = json.dumps(
        {
            "source": source_identity,
            "detector": detector,
            "margin": round(float(margin), 6),
            "size": int(size),
            **({"fallback": fallback} if fallback != "square" else {}),
            "cache_version": CACHE_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class CropCache:
    """``<root>/<key>/chunk_<i>.npz`` (crops, fallback and unreadable flags, boxes) + ``complete.json``."""

    def __init__(self, root: str | Path, key: str):
        self.dir = Path(root) / key
        self.key = key
        self.damaged: list[str] = []  # chunks found damaged and moved aside
        self._loaded: dict[int, tuple[np.ndarray, ...]] = {}

    def chunk_path(self, i: int) -> Path:
        return self.dir / f"chunk_{i:05d}.npz"

    def has_chunk(self, i: int) -> bool:
        """Whether chunk ``i`` is stored and loads; a damaged one is moved aside (so it is
        recomputed) and the answer is False. The loaded arrays are kept for ``get_chunk``."""
        if not self.chunk_path(i).is_file():
            return False
        try:
            self._loaded[i] = self._read(i)
        except StoredFileError as e:
            files.quarantine(e, "crop cache chunk")
            self.damaged.append(self.chunk_path(i).name)
            return False
        return True

    def put_chunk(
        self,
        i: int,
        crops: np.ndarray,
        fallback: np.ndarray,
        boxes: np.ndarray,
        unreadable: np.ndarray,
    ) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        files.savez(
            self.chunk_path(i), crops=crops, fallback=fallback, boxes=boxes, unreadable=unreadable
        )

    def get_chunk(self, i: int) -> tuple[np.ndarray, ...]:
        """(crops, fallback, boxes, unreadable) of chunk ``i``; ``StoredFileError`` if damaged."""
        return self._loaded.pop(i, None) or self._read(i)

    def _read(self, i: int) -> tuple[np.ndarray, ...]:
        z = files.load_npz(self.chunk_path(i), CHUNK_ARRAYS)
        return tuple(z[k] for k in CHUNK_ARRAYS)

    @property
    def complete(self) -> bool:
        return (self.dir / "complete.json").is_file()

    def mark_complete(self, info: dict[str, Any]) -> None:
        files.write_json(self.dir / "complete.json", info)
