"""The contract every file-based loader shares: image reading, layout checks, manifest rows.

A loader module subclasses ``FileSource`` and uses these helpers; labels use the canonical
vocabulary of ``fer_ray.data.source`` so joined data sets share one label map. Unreadable
images load as ``(None, None)``: the pipeline counts and lists them. That includes images
whose header claims more than ``MAX_PIXELS`` pixels (decoding them would exhaust memory).

File names that are not valid UTF-8 (a Latin-1 ``café.png`` from an old archive) become
items by ``safe_name`` (the undecodable bytes as ``\\xNN``), which every table, log and
report can hold; ``fs_path`` turns such an item back into the file's path for reading.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pandas as pd

from fer_ray.data.source import Box, Source
from fer_ray.errors import DataError

if TYPE_CHECKING:
    from fer_ray.config import DataConfig

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
MAX_PIXELS = 64_000_000  # an 8000 x 8000 photo; a larger header is counted unreadable
_ESCAPED = re.compile(rb"\\x([0-9a-f]{2})")


def safe_name(path: str | Path) -> str:
    """``path`` as a str any table or terminal can hold: bytes that are not valid UTF-8 as
    ``\\xNN`` (a Latin-1 ``caf\\xe9.png``); valid names come back unchanged."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def fs_path(item: str | Path) -> str:
    """The file system path of a ``safe_name`` item (the inverse; plain paths unchanged)."""
    item = str(item)
    if "\\x" not in item or os.path.exists(item):
        return item
    raw = _ESCAPED.sub(lambda m: bytes([int(m[1], 16)]), item.encode("utf-8"))
    return os.fsdecode(raw)


def read_image(path: str | Path) -> np.ndarray | None:
    """RGB uint8 HxWx3, or None when the file is missing, too large or does not decode."""
    return read_image_checked(path)[0]


def read_image_checked(path: str | Path) -> tuple[np.ndarray | None, str | None]:
    """(RGB uint8 HxWx3, None), or (None, what is wrong) for an unreadable file."""
    path = fs_path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None, "missing or not readable"
    if not data.size:
        return None, "empty file"
    too_big = _too_many_pixels(path)
    if too_big:
        return None, too_big
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        img = None
    if img is None:
        return _read_with_pil(path)  # exotic TIFF compressions cv2 lacks
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), None


def _too_many_pixels(path: str) -> str | None:
    """What is wrong when the header claims more than ``MAX_PIXELS`` (read before decoding)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except Image.DecompressionBombError as e:
        claimed = re.search(r"\((\d+) pixels\)", str(e))
        n = f"{int(claimed[1]):,}" if claimed else "too many"
        return f"its header claims {n} pixels, over the limit of {MAX_PIXELS:,}"
    except Exception:  # noqa: BLE001 - not PIL's format: cv2 decides below
        return None
    if w * h > MAX_PIXELS:
        return f"its header claims {w} x {h} pixels, over the limit of {MAX_PIXELS:,}"
    return None


def _read_with_pil(path: str | Path) -> tuple[np.ndarray | None, str | None]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"), dtype=np.uint8), None
    except Exception:  # any decoder failure means "unreadable", never a crash
        return None, "not an image file, or damaged"


def data_root(cfg: DataConfig) -> Path:
    if cfg.root is None:
        raise DataError(f"data.root is not set; data set {cfg.name!r} needs its folder")
    root = Path(cfg.root).expanduser()
    if not root.exists():
        raise DataError(f"data.root {root} does not exist (data set {cfg.name!r})")
    if not root.is_dir():
        raise DataError(f"data.root {root} is not a directory (data set {cfg.name!r})")
    return root.resolve()


def need_dir(path: Path, expected: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{path} not found; expected {expected}")
    return path


def need_file(path: Path, expected: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path} not found; expected {expected}")
    return path


def visible(p: Path) -> bool:
    return not p.name.startswith((".", "__"))  # .DS_Store, .ipynb_checkpoints, __MACOSX


def subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and visible(p))


def images_in(folder: Path, skipped: list[str] | None = None) -> list[Path]:
    """The image files in ``folder``; other visible files are added to ``skipped`` (by
    ``safe_name``) so the data check and the report can count and name them."""
    found = [p for p in folder.iterdir() if p.is_file() and visible(p)]
    if skipped is not None:
        skipped += sorted(safe_name(p) for p in found if p.suffix.lower() not in IMAGE_EXTS)
    return sorted(p for p in found if p.suffix.lower() in IMAGE_EXTS)


SKIPPED_NOTE = f"files fer_ray does not read (extension not one of {' '.join(sorted(IMAGE_EXTS))})"


def no_images(root: Path, layout: str) -> DataError:
    return DataError(f"no images found under {root}; expected {layout}")


def fingerprint(root: Path, paths: Iterable[str | Path]) -> str:
    """sha1 of relative path, size and mtime of every file: changes when any pixel can."""
    h = hashlib.sha1()
    for p in paths:
        p = Path(fs_path(p))
        try:
            st = p.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        rel = p.relative_to(root) if p.is_relative_to(root) else p
        h.update(f"{safe_name(rel.as_posix())}\0{stamp}\n".encode())
    return h.hexdigest()


def with_labels(rows: pd.DataFrame, class_names: Sequence[str]) -> pd.DataFrame:
    """Number ``label_name`` by ``class_names`` and order the manifest columns first."""
    index = {c: i for i, c in enumerate(class_names)}
    out = rows.copy()
    out["label"] = out["label_name"].map(index).astype(np.int64)
    first = ["item", "label", "label_name", "group", "split"]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)


def manifest_rows(
    items: list[str], names: list[str], groups: list[str], split: str | list[str]
) -> pd.DataFrame:
    return pd.DataFrame(
        {"item": items, "label_name": names, "group": groups, "split": split},
        columns=["item", "label_name", "group", "split"],
    )


class FileSource(Source):
    """A data set of image files under ``data.root``; items are absolute paths."""

    name = ""

    def __init__(self, cfg: DataConfig):
        self.root = str(data_root(cfg))
        self.classes = list(cfg.classes) if cfg.classes else None
        self._manifest: pd.DataFrame | None = None

    def _build_manifest(self) -> pd.DataFrame:
        raise NotImplementedError

    def manifest(self) -> pd.DataFrame:
        """Walks the folder once per instance: ``identity`` needs the same file list."""
        if self._manifest is None:
            self._manifest = self._build_manifest()
        return self._manifest.copy()

    def groups_note(self) -> str | None:
        """The loader's note on its groups, kept in ``manifest.attrs["groups_note"]``."""
        if self._manifest is None:
            self.manifest()
        assert self._manifest is not None
        return self._manifest.attrs.get("groups_note")

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_manifest": None}  # Ray tasks get settings, not the table

    def identity(self) -> dict[str, Any]:
        # classes are in it because the crop cache is chunked by manifest position
        items = self.manifest()["item"]
        return {
            "source": self.name,
            "root": self.root,
            "classes": self.classes,
            "files": fingerprint(Path(self.root), items),
        }

    def load(self, items: Sequence[str]) -> list[tuple[np.ndarray | None, Box | None]]:
        return [(read_image(i), None) for i in items]
