"""Provenance for every run and report: versions, git commit, host, command line."""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import platform
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGES = (
    "fer_ray",
    "ray",
    "torch",
    "torchvision",
    "timm",
    "numpy",
    "pandas",
    "scikit-learn",
    "opencv-python-headless",
    "matplotlib",
    "optuna",
)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def git_commit() -> str:
    """HEAD of the fer_ray checkout, with '+dirty' when it has uncommitted changes."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"


def source_hash(*modules: ModuleType) -> str:
    """A short hash of these modules' source: part of every cache key whose content the code
    computes, so changed code never reuses a stale cache entry."""
    h = hashlib.sha256()
    for m in modules:
        h.update(inspect.getsource(m).encode())
    return h.hexdigest()[:12]


def command_line() -> str:
    """How this run was started, as the user typed it (``python -m fer_ray.tune ...``)."""
    script = Path(sys.argv[0]).resolve()
    package = Path(__file__).resolve().parent
    if script.is_relative_to(package):
        module = ".".join(script.relative_to(package.parent).with_suffix("").parts)
        head = "python -m " + module.removesuffix(".__main__")
    else:
        head = script.name
    return " ".join([head, *sys.argv[1:]])


def provenance() -> dict[str, Any]:
    return {
        "versions": versions(),
        "git_commit": git_commit(),
        "host": platform.node(),
        "platform": platform.platform(),
        "command": command_line(),
    }
