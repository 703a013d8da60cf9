"""Content-addressed crop cache: same pixels + same detector settings → same key.

Entries are written chunk by chunk (so an interrupted preprocessing resumes) and
marked complete only when every chunk is there; a later run with the same key
reads the crops instead of detecting again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from fer_ray import files

CACHE_VERSION = 2  # 2: chunks carry an 'unreadable' flag per item


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

    def chunk_path(self, i: int) -> Path:
        return self.dir / f"chunk_{i:05d}.npz"

    def has_chunk(self, i: int) -> bool:
        return self.chunk_path(i).is_file()

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

    def get_chunk(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        with np.load(self.chunk_path(i)) as z:
            return z["crops"], z["fallback"], z["boxes"], z["unreadable"]

    @property
    def complete(self) -> bool:
        return (self.dir / "complete.json").is_file()

    def mark_complete(self, info: dict[str, Any]) -> None:
        files.write_json(self.dir / "complete.json", info)
