"""Data sets for fer_ray: the registry (``datasets``), loaders, splits, recipes, synthetic faces.

``load_manifest(name, root, **options)`` is the one-call entry point for notebooks and scripts;
the pipeline itself goes through ``datasets.read_manifest(cfg)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_manifest"]


def load_manifest(name: str, root: str | Path | None = None, **options: Any) -> pd.DataFrame:
    """The checked manifest of data set ``name`` at ``root``, with ``classes`` applied.

    ``options`` are DataConfig fields (classes, neutral_frames, ...). The kept class
    names, in label order, are in ``manifest.attrs["class_names"]``.
    """
    import dataclasses

    from fer_ray.config import DataConfig
    from fer_ray.data.datasets import read_manifest
    from fer_ray.errors import DataError

    fields = {f.name for f in dataclasses.fields(DataConfig)} - {"name", "root"}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise DataError(f"unknown data options {unknown}; valid: {sorted(fields)}")
    cfg = DataConfig(name=name, root=None if root is None else str(root), **options)
    manifest, class_names = read_manifest(cfg)
    manifest.attrs["class_names"] = list(class_names)
    return manifest
