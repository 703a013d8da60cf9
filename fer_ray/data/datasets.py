"""Data set registry: ``data.name`` → a ``Source`` class, and the checked manifest.

The loaders (``fer_ray.data.loaders``) are registered lazily, so listing or validating
names imports none of them; ``create_source`` imports only the one a run uses. Adding a data
set is one loader module plus one ``DATASETS.register`` line below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fer_ray.data.source import MANIFEST_COLUMNS, Source
from fer_ray.errors import ConfigError, DataError
from fer_ray.registry import Registry

if TYPE_CHECKING:
    from fer_ray.config import DataConfig

DATASETS: Registry[type[Source]] = Registry("data set", "data.name")
_L = "fer_ray.data.loaders"
DATASETS.register("synthetic", f"{_L}.synthetic:SyntheticSource", help="embedded AU-driven faces")
DATASETS.register("sfew", f"{_L}.sfew:SFEWSource", help="SFEW 2.0 Train/Val aligned faces")
DATASETS.register("sfew_subset", f"{_L}.sfew:SFEWSubsetSource", help="seed 000's SFEW subset")
DATASETS.register("fer2013", f"{_L}.fer2013:FER2013Source", help="fer2013.csv")
DATASETS.register("ferplus", f"{_L}.fer2013:FERPlusSource", help="fer2013.csv + FER+ votes")
DATASETS.register("ckplus", f"{_L}.ckplus:CKPlusSource", help="CK+ peak frames")
DATASETS.register("jaffe", f"{_L}.jaffe:JAFFESource", help="JAFFE coded TIFFs")
DATASETS.register("ckplus_jaffe", f"{_L}.jaffe:CKPlusJAFFESource", help="seed 002's join")
DATASETS.register(
    "imagefolder", f"{_L}.folder:ImageFolderSource", help="[<split>/]<class>/* (FER2013, CK+48)"
)
DATASETS.register("rafdb", f"{_L}.rafdb:RAFDBSource", help="RAF-DB basic, official or folders")


def create_source(cfg: DataConfig) -> Source:
    return DATASETS.create(cfg.name, cfg)


def select_classes(
    manifest: pd.DataFrame, classes: list[str] | None, all_names: Sequence[str] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Keep ``classes`` (in that order) and renumber labels 0..len-1.

    ``all_names`` is the source's full class list (label order); without it the
    names are read off the manifest, which misses classes that have no rows.
    """
    if all_names:
        names = list(all_names)
    else:
        names = list(dict.fromkeys(manifest.sort_values("label")["label_name"]))
    if classes is None:
        return manifest.reset_index(drop=True), names
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise DataError(f"data.classes: {unknown} not in this data set's classes {names}")
    kept = manifest[manifest["label_name"].isin(classes)].copy()
    kept["label"] = kept["label_name"].map({c: i for i, c in enumerate(classes)}).astype(np.int64)
    return kept.reset_index(drop=True), list(classes)


def read_manifest(cfg: DataConfig, source: Source | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The manifest of ``cfg``'s data set and its class names, checked.

    Pass the ``source`` the caller already made so it lists the files only once.
    """
    source = source or create_source(cfg)
    _check_options(cfg, source)
    m = source.manifest()
    missing = [c for c in MANIFEST_COLUMNS if c not in m.columns]
    if missing:
        raise DataError(f"data set {cfg.name!r} manifest lacks columns {missing}")
    if len(m) == 0:
        raise DataError(f"data set {cfg.name!r} at {cfg.root!r} has no images")
    names = list(source.class_names) or None
    if names:
        _check_labels(m, names, cfg.name)
    m.attrs["groups_note"] = source.groups_note()
    kept, kept_names = select_classes(m, cfg.classes, names)
    present = sorted(set(kept["label_name"]))
    if len(present) < 2:
        raise DataError(
            f"data set {cfg.name!r} at {cfg.root!r} has {len(present)} class with images "
            f"({', '.join(present) or 'none'}); classifying needs at least 2"
        )
    return kept, kept_names


# data.* keys only some sources read (Source.options); set for another source they are refused
SOURCE_OPTIONS = ("class_map", "aligned", "neutral_frames")


def _check_options(cfg: DataConfig, source: Source) -> None:
    default = {f.name: f.default for f in dataclasses.fields(cfg)}
    for key in SOURCE_OPTIONS:
        if getattr(cfg, key) != default[key] and key not in source.options:
            own = ", ".join(f"data.{k}" for k in source.options) or "none"
            raise ConfigError(
                f"data.{key} does not apply to data set {cfg.name!r} (its own options: {own});"
                " unset it"
            )


def _check_labels(m: pd.DataFrame, names: list[str], data_name: str) -> None:
    """A source bug (label outside 0..C-1 or disagreeing with label_name) fails here."""
    labels = m["label"].to_numpy()
    if labels.min() < 0 or labels.max() >= len(names):
        raise DataError(
            f"data set {data_name!r}: labels {labels.min()}..{labels.max()} outside 0..{len(names) - 1}"
        )
    wrong = np.asarray(names, dtype=object)[labels] != m["label_name"].to_numpy(dtype=object)
    if wrong.any():
        raise DataError(
            f"data set {data_name!r}: label_name disagrees with label for item {m['item'].iloc[int(np.argmax(wrong))]!r}"
        )
