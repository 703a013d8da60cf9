"""RAF-DB (basic): the official layout and the folder form that circulates.

Official: ``Image/aligned/train_00001_aligned.jpg`` (100x100 aligned faces) and/or
``Image/original/train_00001.jpg``, labelled by ``EmoLabel/list_patition_label.txt``
("patition" is RAF-DB's own spelling), one ``train_00001.jpg 5`` line per image; the name's
``train_``/``test_`` prefix is the split. ``data.aligned`` picks the image set (None: aligned
where present, else original). ``root`` may also be the folder holding ``basic/``.

Folder form: ``[DATASET/]train/1…7/*.jpg`` and ``test/1…7/*.jpg``, numeric folders in
RAF-DB's own 1–7 meaning (class-named folders work too).

RAF-DB has no subject ids: each image is its own group (named by its image id).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from fer_ray.data.loaders.base import (
    FileSource,
    manifest_rows,
    need_file,
    no_images,
    subdirs,
    visible,
    with_labels,
)
from fer_ray.data.loaders.tree import read_tree
from fer_ray.data.source import EACH_IMAGE_OWN_GROUP, accepted_classes, in_canonical_order
from fer_ray.errors import ConfigError, DataError

if TYPE_CHECKING:
    from fer_ray.config import DataConfig

RAF_CODES = {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "angry", 7: "neutral"}
RAF_CODES_TEXT = ", ".join(f"{k} {v}" for k, v in RAF_CODES.items())
RAF_LABEL_FILE = ("EmoLabel", "list_patition_label.txt")
RAF_BASIC_LAYOUT = (
    "RAF-DB basic layout Image/aligned/*_aligned.jpg or Image/original/*.jpg"
    " with EmoLabel/list_patition_label.txt"
)
RAF_FOLDER_LAYOUT = "RAF-DB folder form <root>/[DATASET/]{train,test}/{1..7}/*.jpg"
RAF_LINE = re.compile(r"^(?P<name>(?P<split>train|test)_\w+\.\w+)\s+(?P<label>\S+)$")


def basic_root(root: Path) -> Path | None:
    """The folder holding RAF-DB's official ``Image/`` and ``EmoLabel/`` (root or root/basic)."""
    for candidate in (root, root / "basic"):
        if any((candidate / d).is_dir() for d in ("Image", "EmoLabel")):
            return candidate
    return None


def read_partition(path: Path) -> pd.DataFrame:
    """``list_patition_label.txt`` → name, split, label_name; a bad line fails naming it."""
    names, splits, labels = [], [], []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        m = RAF_LINE.match(line.strip())
        code = m["label"] if m else ""
        if m is None or not code.isdigit() or int(code) not in RAF_CODES:
            raise DataError(
                f"{path}: line {n} is {line.strip()!r}; expected '<train|test>_NNNNN.jpg <label>'"
                f" with label 1..7 ({RAF_CODES_TEXT})"
            )
        names.append(m["name"])
        splits.append(m["split"])
        labels.append(RAF_CODES[int(code)])
    if not names:
        raise DataError(f"{path} lists no images; expected {RAF_BASIC_LAYOUT}")
    return pd.DataFrame({"name": names, "split": splits, "label_name": labels})


def image_folder(base: Path, aligned: bool | None) -> tuple[Path, bool]:
    """``Image/aligned`` or ``Image/original`` as ``data.aligned`` asks (None: aligned first)."""
    want = {True: ("aligned",), False: ("original",), None: ("aligned", "original")}[aligned]
    for kind in want:
        if (base / "Image" / kind).is_dir():
            return base / "Image" / kind, kind == "aligned"
    wanted = " or ".join(f"Image/{k}/" for k in want)
    raise DataError(f"{base / 'Image'}: no {wanted} folder; expected {RAF_BASIC_LAYOUT}")


def file_name(name: str, aligned: bool) -> str:
    """The image file of a label-file name: ``train_00001.jpg`` → ``train_00001_aligned.jpg``."""
    if not aligned:
        return name
    stem, dot, ext = name.rpartition(".")
    return f"{stem}_aligned{dot}{ext}"


def basic_rows(base: Path, aligned: bool | None) -> pd.DataFrame:
    labels_path = need_file(base.joinpath(*RAF_LABEL_FILE), RAF_BASIC_LAYOUT)
    part = read_partition(labels_path)
    folder, is_aligned = image_folder(base, aligned)
    on_disk = {p.name for p in folder.iterdir() if p.is_file() and visible(p)}
    files = [file_name(n, is_aligned) for n in part["name"]]
    missing = [f for f in files if f not in on_disk]
    if missing:
        raise DataError(
            f"{folder}: {len(missing)} of {len(files)} images listed in {labels_path} are"
            f" missing, e.g. {missing[0]}; expected {RAF_BASIC_LAYOUT}"
        )
    groups = [n.rpartition(".")[0] for n in part["name"]]
    return manifest_rows(
        [str(folder / f) for f in files],
        part["label_name"].tolist(),
        groups,
        part["split"].tolist(),
    )


class RAFDBSource(FileSource):
    """RAF-DB basic, official layout or folder form; labels in canonical order of the classes
    present; each image is its own group (RAF-DB has no subject ids)."""

    name = "rafdb"
    options = ("aligned",)

    def __init__(self, cfg: DataConfig):
        super().__init__(cfg)
        self.aligned = cfg.aligned
        self._class_names: tuple[str, ...] | None = None

    @property  # type: ignore[override]
    def class_names(self) -> tuple[str, ...]:
        """The canonical classes found, in canonical order (= label order)."""
        if self._class_names is None:
            self.manifest()
        assert self._class_names is not None
        return self._class_names

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "aligned": self.aligned}

    def groups_note(self) -> str | None:
        return EACH_IMAGE_OWN_GROUP

    def _build_manifest(self) -> pd.DataFrame:
        root = Path(self.root)
        base = basic_root(root)
        if base is not None:
            rows = basic_rows(base, self.aligned)
            self._class_names = in_canonical_order(rows["label_name"])
            out = with_labels(rows, self._class_names)
        elif subdirs(root):
            if self.aligned is False:
                raise ConfigError(
                    f"data.aligned=false: {root} is RAF-DB's folder form, which holds one image"
                    f" set; unset data.aligned or point data.root at the {RAF_BASIC_LAYOUT}"
                )
            out, self._class_names = read_tree(
                root,
                {str(k): v for k, v in RAF_CODES.items()},
                layout=RAF_FOLDER_LAYOUT,
                unknown_hint=(
                    f"expected RAF-DB's 1..7 ({RAF_CODES_TEXT}) or a class name"
                    f" ({accepted_classes()})"
                ),
                subjects=False,
            )
        else:
            raise no_images(root, f"{RAF_BASIC_LAYOUT}, or {RAF_FOLDER_LAYOUT}")
        out.attrs["groups_note"] = EACH_IMAGE_OWN_GROUP
        return out
