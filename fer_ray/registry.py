"""The one registry mechanism: name → factory, for every pluggable kind.

Data sets, face detectors, augmentation recipes, backbones, weight sources, per-model analyses
and report sections each have one ``Registry``. An entry is either the object itself or a lazy
``"module:attribute"`` string, so listing names (config validation, ``--help``) never imports
an optional library (facenet-pytorch, dlib, captum) or a heavy one (cv2) that is not used.
Adding a kind of thing is one module plus one ``register`` line.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fer_ray.errors import ConfigError, DependencyError

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry:
    target: Any  # the object, or "module:attribute" until first use
    extra: str | None  # the pip extra / package that a missing import needs
    help: str


class Registry(Generic[T]):
    """Named entries of one kind; ``key`` is the config key that selects one (for errors)."""

    def __init__(self, kind: str, key: str):
        self.kind, self.key = kind, key
        self._entries: dict[str, _Entry] = {}
        self._loaded: dict[str, T] = {}

    def register(
        self,
        name: str,
        target: T | str | None = None,
        *,
        extra: str | None = None,
        help: str = "",
        before: str | None = None,
    ) -> Any:
        """``register(name, obj)``, ``register(name, "pkg.mod:attr")`` or ``@register(name)``;
        ``before`` places the entry ahead of another (where order matters: report sections)."""
        if target is None:

            def deco(obj: T) -> T:
                self.register(name, obj, extra=extra, help=help, before=before)
                return obj

            return deco
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = _Entry(target, extra, help)
        if before is not None and before in self._entries:
            names = list(self._entries)
            names.insert(names.index(before), names.pop())
            self._entries = {n: self._entries[n] for n in names}
        return target

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def help(self, name: str) -> str:
        return self._entries[name].help

    def unknown(self, name: object) -> ConfigError:
        """The error for a name that is not registered: valid names and a did-you-mean."""
        close = difflib.get_close_matches(str(name), self.names(), n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return ConfigError(
            f"{self.key}={name!r} is not a known {self.kind}{hint} "
            f"(known: {', '.join(self.names())})"
        )

    def check(self, name: object) -> None:
        if name not in self._entries:
            raise self.unknown(name)

    def get(self, name: str) -> T:
        """The entry for ``name``, importing it on first use."""
        self.check(name)
        if name not in self._loaded:
            entry = self._entries[name]
            target = entry.target
            if isinstance(target, str):
                target = resolve(target, f"{self.key}={name}", entry.extra)
            self._loaded[name] = target
        return self._loaded[name]

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the factory registered under ``name``."""
        factory: Callable[..., Any] = self.get(name)  # type: ignore[assignment]
        return factory(*args, **kwargs)


def resolve(target: str, what: str = "", extra: str | None = None) -> Any:
    """Import ``"module:attribute"`` (or a module); a missing optional package named by
    ``extra`` becomes a ``DependencyError`` saying what to install for ``what``."""
    module, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        if extra is None or isinstance(e, DependencyError):
            raise
        raise DependencyError(
            f"{what} needs {e.name or 'a missing package'}; install it with `pip install {extra}`"
        ) from e
    return getattr(mod, attr) if attr else mod
