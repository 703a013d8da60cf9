"""SFEW 2.0 (Train/Val aligned faces) and the course subset seed 000 uses; group = movie."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fer_ray.data.datasets import DataError, register
from fer_ray.data.loaders.files import (
    SEVEN,
    _FileSource,
    _images_in,
    _need_dir,
    _no_images,
    _rows,
    _subdirs,
    _with_labels,
)

SFEW_FOLDERS = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
SFEW_LAYOUT = "SFEW 2.0 layout Train/Train_Aligned_Faces/<Class>/*.png and Val/Val_Aligned_Faces/<Class>/*.png"
SFEW_SUBSET_LAYOUT = f"SFEW subset layout <root>/<{'|'.join(SFEW_FOLDERS)}>/*.png"


def _movie(path: Path) -> str:
    return path.stem.split("_", 1)[0]


def _sfew_rows(parent: Path, split: str, layout: str) -> pd.DataFrame:
    """One row per image in ``parent/<Class>/``; an unknown class folder is an error."""
    items, names, groups = [], [], []
    for d in _subdirs(parent):
        label = d.name.lower()
        if label not in SEVEN:
            raise DataError(
                f"{d}: unknown class folder {d.name!r}; expected one of "
                f"{', '.join(SFEW_FOLDERS)} ({layout})"
            )
        for p in _images_in(d):
            items.append(str(p))
            names.append(label)
            groups.append(_movie(p))
    return _rows(items, names, groups, split)


@register("sfew")
class SFEWSource(_FileSource):
    """SFEW 2.0 aligned faces; group = movie (the file-name prefix), split = its train/val."""

    name = "sfew"
    class_names = SEVEN
    parts = (("train", "Train/Train_Aligned_Faces"), ("val", "Val/Val_Aligned_Faces"))

    def _build_manifest(self) -> pd.DataFrame:
        root = Path(self.root)
        frames = [
            _sfew_rows(_need_dir(root / rel, SFEW_LAYOUT), split, SFEW_LAYOUT)
            for split, rel in self.parts
        ]
        rows = pd.concat(frames, ignore_index=True)
        if rows.empty:
            raise _no_images(root, SFEW_LAYOUT)
        return _with_labels(rows, self.class_names)


@register("sfew_subset")
class SFEWSubsetSource(_FileSource):
    """The SFEW course subset (seed 000): class folders only; SFEW.xlsx is read elsewhere."""

    name = "sfew_subset"
    class_names = SEVEN

    def _build_manifest(self) -> pd.DataFrame:
        root = Path(self.root)
        if not _subdirs(root):
            raise DataError(f"{root} has no class folders; expected {SFEW_SUBSET_LAYOUT}")
        rows = _sfew_rows(root, "", SFEW_SUBSET_LAYOUT)
        if rows.empty:
            raise _no_images(root, SFEW_SUBSET_LAYOUT)
        return _with_labels(rows, self.class_names)
