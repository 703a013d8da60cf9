"""JAFFE (coded file names; group = subject) and seed 002's CK+ + JAFFE join."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from fer_ray.data.loaders.base import (
    FileSource,
    manifest_rows,
    need_dir,
    no_images,
    safe_name,
    visible,
    with_labels,
)
from fer_ray.data.loaders.ckplus import CKPlusBoxes, ckplus_rows
from fer_ray.data.source import CANONICAL, SEVEN
from fer_ray.errors import DataError

if TYPE_CHECKING:
    from fer_ray.config import DataConfig

JAFFE_CODES = {
    "AN": "angry",
    "DI": "disgust",
    "FE": "fear",
    "HA": "happy",
    "NE": "neutral",
    "SA": "sad",
    "SU": "surprise",
}
JAFFE_NAME = re.compile(
    r"^(?P<subject>[A-Za-z]{2})\.(?P<code>[A-Za-z]{2})(?P<take>\d+)\.(?P<id>\d+)\.tiff?$",
    re.IGNORECASE,
)
JAFFE_LAYOUT = "JAFFE files <root>/<subject>.<code><n>.<id>.tiff such as KA.AN1.39.tiff"


def _jaffe_rows(root: Path) -> pd.DataFrame:
    items, names, groups = [], [], []
    for p in sorted(root.iterdir()):
        if not (p.is_file() and visible(p) and p.suffix.lower() in (".tif", ".tiff")):
            continue
        m = JAFFE_NAME.match(p.name)
        if m is None:
            raise DataError(
                f"{safe_name(p)}: JAFFE file name {safe_name(p.name)!r} does not parse;"
                f" expected {JAFFE_LAYOUT}"
            )
        code = m["code"].upper()
        if code not in JAFFE_CODES:
            raise DataError(
                f"{p}: unknown JAFFE expression code {code!r}; expected one of"
                f" {' '.join(JAFFE_CODES)}"
            )
        items.append(safe_name(p))
        names.append(JAFFE_CODES[code])
        groups.append(m["subject"].upper())
    if not items:
        raise no_images(root, JAFFE_LAYOUT)
    return manifest_rows(items, names, groups, "")


class JAFFESource(FileSource):
    """JAFFE grey 256x256 TIFFs; expression and subject come from the file name."""

    name = "jaffe"
    class_names = SEVEN

    def _build_manifest(self) -> pd.DataFrame:
        return with_labels(_jaffe_rows(Path(self.root)), self.class_names)


class CKPlusJAFFESource(CKPlusBoxes, FileSource):
    """Seed 002's join: CK+ and JAFFE under one 8-class label map; groups never collide."""

    name = "ckplus_jaffe"
    options = ("neutral_frames",)
    class_names = CANONICAL

    def __init__(self, cfg: DataConfig):
        super().__init__(cfg)
        self.neutral_frames = bool(cfg.neutral_frames)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "neutral_frames": self.neutral_frames}

    def _build_manifest(self) -> pd.DataFrame:
        root = Path(self.root)
        layout = "<root>/ckplus/ (CK+ layout) and <root>/jaffe/ (JAFFE .tiff files)"
        ck = ckplus_rows(need_dir(root / "ckplus", layout), self.neutral_frames)
        jaffe = _jaffe_rows(need_dir(root / "jaffe", layout))
        ck["group"] = "ck:" + ck["group"]
        jaffe["group"] = "jaffe:" + jaffe["group"]
        return with_labels(pd.concat([ck, jaffe], ignore_index=True), self.class_names)
