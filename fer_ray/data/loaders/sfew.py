"""SFEW 2.0 (Train/Val aligned faces) and the course subset seed 000 uses; group = movie."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fer_ray.data.loaders.base import (
    FileSource,
    images_in,
    manifest_rows,
    need_dir,
    no_images,
    safe_name,
    subdirs,
    with_labels,
)
from fer_ray.data.source import SEVEN
from fer_ray.errors import DataError

SFEW_FOLDERS = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
SFEW_LAYOUT = "SFEW 2.0 layout Train/Train_Aligned_Faces/<Class>/*.png and Val/Val_Aligned_Faces/<Class>/*.png"
SFEW_SUBSET_LAYOUT = f"SFEW subset layout <root>/<{'|'.join(SFEW_FOLDERS)}>/*.png"


def _movie(path: Path) -> str:
    return path.stem.split("_", 1)[0]


def _sfew_rows(parent: Path, split: str, layout: str) -> pd.DataFrame:
    """One row per image in ``parent/<Class>/``; an unknown class folder is an error."""
    items, names, groups = [], [], []
    for d in subdirs(parent):
        label = d.name.lower()
        if label not in SEVEN:
            raise DataError(
                f"{d}: unknown class folder {d.name!r}; expected one of "
                f"{', '.join(SFEW_FOLDERS)} ({layout})"
            )
        for p in images_in(d):
            items.append(safe_name(p))  # a file name that is not UTF-8 by its safe name
            names.append(label)
            groups.append(safe_name(_movie(p)))
    return manifest_rows(items, names, groups, split)


class SFEWSource(FileSource):
    """SFEW 2.0 aligned faces; group = movie (the file-name prefix), split = its train/val."""

    name = "sfew"
    group_noun = "movies"
    class_names = SEVEN
    parts = (("train", "Train/Train_Aligned_Faces"), ("val", "Val/Val_Aligned_Faces"))

    def _build_manifest(self) -> pd.DataFrame:
        root = Path(self.root)
        frames = [
            _sfew_rows(need_dir(root / rel, SFEW_LAYOUT), split, SFEW_LAYOUT)
            for split, rel in self.parts
        ]
        rows = pd.concat(frames, ignore_index=True)
        if rows.empty:
            raise no_images(root, SFEW_LAYOUT)
        return with_labels(rows, self.class_names)


class SFEWSubsetSource(FileSource):
    """The SFEW course subset (seed 000): class folders only; SFEW.xlsx is read elsewhere."""

    name = "sfew_subset"
    group_noun = "movies"
    class_names = SEVEN

    def _build_manifest(self) -> pd.DataFrame:
        root = Path(self.root)
        if not subdirs(root):
            raise DataError(f"{root} has no class folders; expected {SFEW_SUBSET_LAYOUT}")
        rows = _sfew_rows(root, "", SFEW_SUBSET_LAYOUT)
        if rows.empty:
            raise no_images(root, SFEW_SUBSET_LAYOUT)
        return with_labels(rows, self.class_names)
