"""Any ``<root>/<class>/*.<image>`` collection."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from fer_ray.data.loaders.base import (
    FileSource,
    images_in,
    manifest_rows,
    no_images,
    subdirs,
    with_labels,
)
from fer_ray.errors import DataError

if TYPE_CHECKING:
    from fer_ray.config import DataConfig


def _folder_group(path: Path, class_name: str) -> str:
    """``<group>_<rest>`` names share a group; otherwise each image is its own group."""
    prefix = path.stem.split("_", 1)[0]
    return prefix if "_" in path.stem and prefix else f"{class_name}/{path.stem}"


class ImageFolderSource(FileSource):
    """Any ``<root>/<class>/*.<image>`` collection; class names are the folder names, sorted."""

    name = "imagefolder"
    layout = "<root>/<class>/*.{png,jpg,jpeg,bmp,tif,tiff}"

    def __init__(self, cfg: DataConfig):
        super().__init__(cfg)
        self.class_names = tuple(d.name for d in subdirs(Path(self.root)))

    def _build_manifest(self) -> pd.DataFrame:
        items, names, groups = [], [], []
        for d in subdirs(Path(self.root)):
            files = images_in(d)
            if not files:
                raise DataError(f"class folder {d} has no images; expected {self.layout}")
            items += [str(p) for p in files]
            names += [d.name] * len(files)
            groups += [_folder_group(p, d.name) for p in files]
        if not items:
            raise no_images(Path(self.root), self.layout)
        return with_labels(manifest_rows(items, names, groups, ""), self.class_names)
