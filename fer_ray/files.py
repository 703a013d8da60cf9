"""Atomic writes: a process killed mid-write leaves the old file or the new one, never half.

Every stage result, cache entry and checkpoint goes through these, because a run must resume
after being killed at any moment without mistaking a torn file for a finished one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _atomic(path: Path, write: Callable[[str], None], suffix: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_text(text), ".tmp")


def write_bytes(path: Path, data: bytes) -> None:
    """Bytes (a PNG, a Parquet table) atomically: a killed stage never leaves a torn file that
    a resumed one would take as done."""
    _atomic(path, lambda tmp: Path(tmp).write_bytes(data), ".tmp")


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, default=str))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def savez(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` atomically (the temporary name ends in .npz so numpy keeps it)."""
    _atomic(path, lambda tmp: np.savez(tmp, **arrays), ".tmp.npz")


def torch_save(path: Path, obj: Any) -> None:
    """``torch.save`` atomically; store plain tensors, numbers and strings only, so the file
    loads with ``torch.load(..., weights_only=True)``."""
    import torch

    _atomic(path, lambda tmp: torch.save(obj, tmp), ".tmp")
