"""Data set registry: each source turns ``data.root`` into a manifest and loads images.

A manifest is a DataFrame with one row per image: ``item`` (path or reference),
``label`` (0..C-1 in the order of the source's ``class_names``), ``label_name``,
``group`` (subject or movie: the unit that splits keep on one side) and ``split``
(the data set's own split, or ""), plus optional extra columns (CK+ AUs).
Sources are pickled into Ray tasks, so they hold only plain settings.
The real data sets live in ``fer_ray.data.loaders``, imported at the end of this
module so that importing the registry always sees every source.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fer_ray.config import DataConfig
from fer_ray.data import synthetic

Box = tuple[int, int, int, int]
MANIFEST_COLUMNS = ("item", "label", "label_name", "group", "split")


class DataError(ValueError):
    """Bad input data; the message names the file or key and what was expected."""


class Source(ABC):
    """One data set: where its images are, their labels and groups, and how to read them."""

    class_names: tuple[str, ...] = ()

    @abstractmethod
    def manifest(self) -> pd.DataFrame: ...

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What determines the pixels; it keys the crop cache."""

    @abstractmethod
    def load(self, items: Sequence[str]) -> list[tuple[np.ndarray | None, Box | None]]:
        """RGB uint8 images and their ground-truth face boxes (None where unknown).

        An unreadable item gives ``(None, None)`` instead of raising, so the caller
        can count and list every bad file at once.
        """


REGISTRY: dict[str, Callable[[DataConfig], Source]] = {}


def register(
    name: str,
) -> Callable[[Callable[[DataConfig], Source]], Callable[[DataConfig], Source]]:
    def deco(factory: Callable[[DataConfig], Source]) -> Callable[[DataConfig], Source]:
        REGISTRY[name] = factory
        return factory

    return deco


@register("synthetic")
class SyntheticSource(Source):
    """The embedded AU-driven faces (fer_ray.data.synthetic); items are 'synthetic:<index>'."""

    class_names = tuple(synthetic.CLASS_NAMES)

    def __init__(self, cfg: DataConfig):
        self.n_subjects, self.per_class = cfg.n_subjects, cfg.per_class
        self.image_size, self.seed = cfg.image_size, cfg.seed

    def manifest(self) -> pd.DataFrame:
        t = synthetic.item_table(self.n_subjects, self.per_class)
        return pd.DataFrame(
            {
                "item": [f"synthetic:{i}" for i in t["index"]],
                "label": t["label"].astype(np.int64),
                "label_name": t["label_name"],
                "group": [f"s{s:04d}" for s in t["subject"]],
                "split": "",
            }
        )

    def identity(self) -> dict[str, Any]:
        return {
            "source": "synthetic",
            "version": synthetic.GENERATOR_VERSION,
            "n_subjects": self.n_subjects,
            "per_class": self.per_class,
            "image_size": self.image_size,
            "seed": self.seed,
        }

    def load(self, items: Sequence[str]) -> list[tuple[np.ndarray, Box | None]]:
        idx = [int(str(i).split(":", 1)[1]) for i in items]
        images, _, boxes = synthetic.render_items(
            idx,
            n_subjects=self.n_subjects,
            per_class=self.per_class,
            image_size=self.image_size,
            seed=self.seed,
        )
        return [(images[k], tuple(int(v) for v in boxes[k])) for k in range(len(idx))]


def create_source(cfg: DataConfig) -> Source:
    if cfg.name not in REGISTRY:
        close = difflib.get_close_matches(cfg.name, list(REGISTRY), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise DataError(
            f"data.name={cfg.name!r} is not a known data set{hint} ({sorted(REGISTRY)})"
        )
    return REGISTRY[cfg.name](cfg)


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


def load_manifest(cfg: DataConfig, source: Source | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The manifest of ``cfg``'s data set and its class names, checked.

    Pass the ``source`` the caller already made so it lists the files only once.
    """
    source = source or create_source(cfg)
    m = source.manifest()
    missing = [c for c in MANIFEST_COLUMNS if c not in m.columns]
    if missing:
        raise DataError(f"data set {cfg.name!r} manifest lacks columns {missing}")
    if len(m) == 0:
        raise DataError(f"data set {cfg.name!r} at {cfg.root!r} has no images")
    names = list(source.class_names) or None
    if names:
        _check_labels(m, names, cfg.name)
    return select_classes(m, cfg.classes, names)


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


from fer_ray.data import loaders  # noqa: E402, F401  (registers the real data sets)
