"""One root for every error a user can cause or fix: ``FerRayError``.

``python -m fer_ray.tune`` catches this root, also when it arrives wrapped in a Ray task or
trial error (``unwrap``), and prints its message as one line: the message names the key or
file and what was expected, so no traceback is needed. Code errors (bugs) are not
``FerRayError`` and keep their traceback.

The kinds subclass ``ValueError`` (or ``ImportError``, ``FileNotFoundError``) as well where
Python code around them already expects those.
"""

from __future__ import annotations

from collections.abc import Iterator


class FerRayError(Exception):
    """Root of fer_ray's user-facing errors; ``exit_code`` is what the CLI returns."""

    exit_code = 2
    kind = "error"


class ConfigError(FerRayError, ValueError):
    """A config file, key, value or override is invalid."""

    kind = "config error"


class DataError(FerRayError, ValueError):
    """Bad input data: a missing folder, an unreadable file, a wrong column or label."""

    kind = "data error"


class SplitError(DataError):
    """The data cannot be split as asked (too few groups for the folds, a group on two sides)."""


class ModelError(FerRayError, ValueError):
    """A model setting cannot be honoured (unknown backbone, missing weights file)."""

    kind = "model error"


class DependencyError(FerRayError, ImportError):
    """An optional library is missing; the message names the extra or package to install."""

    kind = "missing dependency"


class ClusterError(FerRayError):
    """The Ray cluster cannot serve a request (unreachable, too small, no shared storage)."""

    kind = "cluster error"


class StageError(FerRayError, RuntimeError):
    """A stage cannot run or did not finish; the message says what to do."""

    exit_code = 1


class StoredFileError(FerRayError, ValueError):
    """A stored file (cache entry, checkpoint, result, model) is damaged: truncated, torn or
    not what its name says. Caches move it aside and recompute; other readers name it."""

    kind = "damaged file"
    path: object = None  # the file (a Path), set by fer_ray.files.damaged
    problem: str = ""  # what is wrong with it, without the path


class StorageError(FerRayError, OSError):
    """The run's own storage refused a write (full disk, quota, read-only or not writable
    folder): the message names the path and what was being written. Nothing half-written is
    marked done, so ``--resume`` finishes once space or permission is back."""

    kind = "storage error"
    exit_code = 1


class ReportError(FerRayError, FileNotFoundError):
    """A run directory lacks what the report needs."""

    kind = "report error"


def unwrap(exc: BaseException) -> FerRayError | None:
    """The ``FerRayError`` behind ``exc``: itself, or the cause of a Ray task/trial error.

    Ray wraps an exception raised in a task as ``RayTaskError`` (``.cause``) and Tune as
    ``TuneError``/``RayTaskError`` chains: ``.cause`` and ``__cause__`` are followed, and
    ``__context__`` only out of Ray's own exceptions. A bug raised while handling a user error
    has that error as its ``__context__``; it is not the user's error, so its traceback stays.
    """
    for e in chain(exc):
        if isinstance(e, FerRayError):  # a Ray dual-class wrapper carries the plain cause
            cause = getattr(e, "cause", None)
            return cause if isinstance(cause, FerRayError) else e
    return None


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it, nearest first, once each: ``.cause`` (Ray's task and trial
    wrappers), ``__cause__``, and ``__context__`` only out of Ray's own exceptions."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [getattr(e, "cause", None), e.__cause__]
        if type(e).__module__.split(".")[0] == "ray":
            todo.append(e.__context__)
