"""One driver per run folder: an advisory lock held for the whole run.

Two drivers writing one run folder (a scheduler retrying while the first attempt still runs,
or a user starting the same command twice) would interleave stage markers and Tune state and
end with numbers neither run made. The lock is ``flock`` on ``<runs_dir>/.locks/<name>.lock``:
the kernel releases it when the holder exits, however it exits (SIGKILL, OOM, a lost node's
driver), so a killed run never leaves a stale lock behind and ``--resume`` works at once.
The lock file sits beside the run folder, not in it, so ``--fresh`` can delete the run while
holding it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from fer_ray import files
from fer_ray.errors import StageError

LOCKS_DIR = ".locks"


def lock_path(runs_dir: Path, name: str) -> Path:
    """The lock file of run ``name`` (``name`` is already checked to be one safe component)."""
    return runs_dir / LOCKS_DIR / f"{name}.lock"


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "another fer_ray driver"
    return text or "another fer_ray driver"


@contextlib.contextmanager
def held(runs_dir: Path, name: str) -> Iterator[Path]:
    """Hold run ``name``'s lock for the block; stop with one line when a live driver holds it."""
    path = lock_path(runs_dir, name)
    files.mkdir(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise files.storage_error(e, path) from None
    try:
        _lock(fd, path, name)
        yield path
    finally:
        os.close(fd)  # releases the lock


def _lock(fd: int, path: Path, name: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise files.storage_error(e, path) from None
        raise StageError(
            f"run {name!r} is in use: {_holder(path)} holds {path}; wait for it to end or"
            " stop it (the lock goes with its process), or choose another name"
        ) from None
    who = f"pid {os.getpid()} on {os.uname().nodename}, started {time.strftime('%F %T')}"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{who}\n".encode(), 0)
    except OSError as e:
        raise files.storage_error(e, path) from None
