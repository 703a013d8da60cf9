"""One run directory as the report sees it: stored files, read by layout name, nothing else.

Sections get a ``Run`` rather than a path so that every read goes through the same checks: an
optional file is ``None`` when absent, a required one is a ``ReportError`` naming the file,
and a damaged one (torn JSON, empty CSV, garbled YAML) a ``StoredFileError`` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fer_ray import files
from fer_ray.errors import ReportError
from fer_ray.layout import CONFIG, RUN_INFO


@dataclass(frozen=True)
class Run:
    """A run's root plus its parsed ``config.yaml`` and ``run.json`` (provenance)."""

    root: Path
    config: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    #: every stored CSV read through ``csv`` so far, in reading order: the report links them
    read: list[Path] = field(default_factory=list, compare=False)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def json(self, *parts: str) -> Any:
        """A stored JSON file, or ``None`` when it is absent."""
        p = self.path(*parts)
        return files.read_json(p) if p.is_file() else None

    def npz(self, *parts: str, keys: tuple[str, ...] = ()) -> dict[str, Any] | None:
        """A stored ``.npz`` file's arrays (``keys`` must be there), or ``None`` when absent."""
        p = self.path(*parts)
        return files.load_npz(p, keys) if p.is_file() else None

    def text(self, *parts: str) -> str | None:
        """A stored text file, or ``None`` when it is absent."""
        p = self.path(*parts)
        return files.read_text(p) if p.is_file() else None

    def csv(self, *parts: str, **read_csv: Any) -> pd.DataFrame | None:
        """A stored CSV file, or ``None`` when it is absent."""
        p = self.path(*parts)
        if not p.is_file():
            return None
        if p not in self.read:
            self.read.append(p)
        return files.read_csv(p, **read_csv)

    def need_csv(self, *parts: str, **read_csv: Any) -> pd.DataFrame:
        """A CSV its stage must have written: a half-written stage is the user's to rerun."""
        df = self.csv(*parts, **read_csv)
        if df is None:
            raise ReportError(
                f"{self.path(*parts)} is missing, so the {parts[0]!r} stage's results are "
                "incomplete; rerun the run with python -m fer_ray.tune --fresh"
            )
        return df


def open_run(run_dir: str | Path) -> Run:
    """The run at ``run_dir``; a folder without ``config.yaml`` is not a run."""
    root = Path(run_dir)
    cfg_path = root / CONFIG
    if not cfg_path.is_file():
        raise ReportError(f"{root} is not a fer_ray run directory (no {CONFIG})")
    config = files.read_yaml(cfg_path)
    if not isinstance(config, dict):
        raise ReportError(f"{cfg_path} is not a fer_ray config (expected a YAML mapping)")
    info_path = root / RUN_INFO
    info = files.read_json(info_path) if info_path.is_file() else {}
    return Run(root, config, info)
