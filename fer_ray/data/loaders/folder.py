"""Any class-folder collection: ``<root>/<class>/*`` or ``<root>/<split>/<class>/*``.

FER2013 as image folders, CK+48, or a lab's own set: class folder names map to the
canonical classes (``anger`` → ``angry``, ``Sadness`` → ``sad``; see ``tree.py``), other
names (numeric ``0``…``6`` folders) through ``data.class_map: {folder: class}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from fer_ray.data.loaders.base import FileSource
from fer_ray.data.loaders.tree import TREE_LAYOUT, read_tree
from fer_ray.data.source import accepted_classes, check_class_map

if TYPE_CHECKING:
    from fer_ray.config import DataConfig


class ImageFolderSource(FileSource):
    """Class folders, optionally under split folders; labels in canonical order of the classes
    present; group = subject id coded in the file name (``S010_…``), else the image itself."""

    name = "imagefolder"
    options = ("class_map",)
    layout = TREE_LAYOUT

    def __init__(self, cfg: DataConfig):
        super().__init__(cfg)
        self.class_map = check_class_map(cfg.class_map)
        self._class_names: tuple[str, ...] | None = None

    @property  # type: ignore[override]
    def class_names(self) -> tuple[str, ...]:
        """The canonical classes found on disk, in canonical order (= label order)."""
        if self._class_names is None:
            self.manifest()
        assert self._class_names is not None
        return self._class_names

    def _build_manifest(self) -> pd.DataFrame:
        rows, self._class_names = read_tree(
            Path(self.root),
            self.class_map,
            unknown_hint=(
                f"accepted (any case): {accepted_classes()};"
                " map other folder names with data.class_map: {<folder>: <class>, ...}"
            ),
        )
        return rows
