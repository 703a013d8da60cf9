"""The configs fer_ray ships (``default``, ``smoke`` and one per paper's recipe), found by name.

Why: ``pip install .`` puts them in the package (``fer_ray.configs``, kept in ``tune_configs/``
at the repository root), so ``fer-ray tune -c sfew_paper`` works from any folder, and a name
that is neither a file nor a shipped config lists the names that are.
"""

from __future__ import annotations

import difflib
import importlib.resources
from pathlib import Path

from fer_ray.errors import ConfigError

DEFAULT = "default"


def folder() -> Path:
    """Where the shipped YAML files are: the installed package data, or (a checkout whose
    editable install predates the package) ``tune_configs/`` beside the package."""
    try:
        found = Path(str(importlib.resources.files("fer_ray.configs")))
    except ModuleNotFoundError:
        found = Path(__file__).resolve().parent.parent / "tune_configs"
    return found


def names() -> list[str]:
    """The shipped config names, sorted."""
    return sorted(p.stem for p in folder().glob("*.yaml"))


def find(arg: str | Path | None) -> Path:
    """The config file ``-c``/``--config`` names: an existing file, else a shipped config's name
    (``smoke`` or ``smoke.yaml``); None is the default config."""
    if arg is None:
        return folder() / f"{DEFAULT}.yaml"
    path = Path(arg)
    if path.is_file():
        return path
    stem = path.name[: -len(".yaml")] if path.name.endswith(".yaml") else path.name
    if path.parent == Path(".") and stem in names():
        return folder() / f"{stem}.yaml"
    close = difflib.get_close_matches(stem, names(), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"config file {arg} does not exist and is not a shipped config{hint} "
        f"(shipped: {', '.join(names())})"
    )
