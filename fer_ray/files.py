"""Atomic writes and guarded reads of every stored file.

A process killed mid-write leaves the old file or the new one, never half: every stage result,
cache entry and checkpoint is written through these, because a run must resume after being
killed at any moment without mistaking a torn file for a finished one.

Every read goes through the ``read_*``/``load_*`` functions here, which turn a damaged file
(truncated, torn, garbled; a disk fault or a copy cut short) into one ``StoredFileError``
naming the file and what is wrong. A cache that can recompute an entry moves the damaged one
aside with ``quarantine`` (``<name>.damaged``, kept for inspection) and computes it again;
other readers let the error stop the command with that one line. A missing file is not
damage: it raises ``FileNotFoundError`` as usual.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pickle
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from fer_ray.errors import StorageError, StoredFileError, chain

DAMAGED_SUFFIX = ".damaged"


#: OS errors that mean "the storage refused", not "the code is wrong": one line, not a traceback
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def storage_error(e: OSError, path: Path) -> StorageError:
    """One line naming the path, what failed and what to do."""
    why = e.strerror or type(e).__name__
    return StorageError(
        f"cannot write {path}: {why} (errno {e.errno}); free space or make the folder"
        " writable, then rerun with --resume: nothing half-written was kept or marked done"
    )


def as_storage_error(exc: BaseException) -> StorageError | None:
    """The storage fault behind ``exc`` (itself, its causes, inside a Ray wrapper), as one
    ``StorageError``; None when there is none (then ``exc`` is a bug and keeps its traceback)."""
    for e in chain(exc):  # the same links unwrap follows
        if isinstance(e, StorageError):
            return e
        if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
            return storage_error(e, Path(e.filename or "?"))
    return None


def _atomic(path: Path, write: Callable[[str], None], suffix: str) -> None:
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
        os.close(fd)
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if e.errno in STORAGE_ERRNOS:
            raise storage_error(e, path) from e
        raise
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, RuntimeError) and "write failed" in str(e):  # torch.save, disk full
            raise storage_error(OSError(errno.ENOSPC, "write failed (disk full?)"), path) from e
        raise


def mkdir(path: Path) -> None:
    """A folder of the run's own (and its parents): a refusal is a ``StorageError``."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if e.errno in STORAGE_ERRNOS:
            raise storage_error(e, Path(path)) from e
        raise


def write_text(path: Path, text: str) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_text(text), ".tmp")


def write_bytes(path: Path, data: bytes) -> None:
    """Bytes (a PNG, a Parquet table) atomically: a killed stage never leaves a torn file that
    a resumed one would take as done."""
    _atomic(path, lambda tmp: Path(tmp).write_bytes(data), ".tmp")


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, default=str))


def damaged(path: Path, what: str, exc: BaseException | str) -> StoredFileError:
    """The error for a damaged ``path``: ``what`` it should be and the reader's complaint."""
    detail = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    detail = " ".join(str(detail).split())[:200]
    err = StoredFileError(f"{path} is damaged: not a readable {what} ({detail})")
    err.path, err.problem = Path(path), f"not a readable {what}: {detail}"
    return err


def read_text(path: Path) -> str:
    """A stored text file (UTF-8)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise damaged(path, "UTF-8 text file", e) from None


def read_json(path: Path) -> Any:
    """A stored JSON file."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise damaged(path, "JSON file", e) from None


def read_yaml(path: Path) -> Any:
    """A stored YAML file (``None`` when empty)."""
    import yaml

    try:
        return yaml.safe_load(read_text(path))
    except yaml.YAMLError as e:
        raise damaged(path, "YAML file", e) from None


def read_csv(path: Path, **kwargs: Any) -> Any:
    """A stored CSV file as a ``pandas.DataFrame`` (``kwargs`` go to ``pandas.read_csv``)."""
    import pandas as pd

    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise damaged(path, "CSV file", e) from None


def load_npz(path: Path, keys: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Every array of a stored ``.npz`` file, read now (so each member's CRC is checked);
    ``keys`` must all be there."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError) as e:
        raise damaged(path, "numpy .npz archive", e) from None
    missing = [k for k in keys if k not in out]
    if missing:
        raise damaged(path, "numpy .npz archive", f"arrays {missing} are missing")
    return out


def torch_load(path: Path, map_location: str = "cpu") -> Any:
    """A stored ``torch.save`` file, loaded with ``weights_only=True``."""
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, OSError) as e:
        raise damaged(path, "PyTorch file", e) from None


def quarantine(
    err: StoredFileError, what: str = "cache entry", then: str = "recomputing it"
) -> Path:
    """Move the damaged file ``err`` names aside (``<name>.damaged``, replacing an older one)
    so it is never read again; prints one line naming it and saying what happens ``then``."""
    path = Path(str(err.path))
    dst = path.with_name(path.name + DAMAGED_SUFFIX)
    with contextlib.suppress(FileNotFoundError):  # another run sharing the cache moved it
        os.replace(path, dst)
    print(f"[damaged] {what} {path} moved aside to {dst.name} ({err.problem}); {then}", flush=True)
    return dst


def savez(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` atomically (the temporary name ends in .npz so numpy keeps it)."""
    _atomic(path, lambda tmp: np.savez(tmp, **arrays), ".tmp.npz")


def torch_save(path: Path, obj: Any) -> None:
    """``torch.save`` atomically; store plain tensors, numbers and strings only, so the file
    loads with ``torch.load(..., weights_only=True)``."""
    import torch

    _atomic(path, lambda tmp: torch.save(obj, tmp), ".tmp")
