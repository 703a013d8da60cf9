"""Class-folder trees as data set copies circulate: ``<class>/*`` or ``<split>/<class>/*``.

Researchers mostly hold re-packed copies, not the original archives: FER2013 as
``train/<class>/*.jpg`` + ``test/<class>/*.jpg``, CK+48 as ``anger/ … surprise/``, RAF-DB as
``DATASET/train/1…7/``. ``read_tree`` reads all of them the same way:

* a top level of split folders (``train``/``training``, ``val``/``valid``/``validation``,
  ``test``/``testing``, FER2013's ``PublicTest``/``PrivateTest``; any case) fills the ``split``
  column (train / val / test / publictest / privatetest); otherwise ``split`` is "";
* lone wrapper folders (``DATASET/``, ``archive/``) above the tree are stepped into;
* class folder names map to the canonical vocabulary (``canonical_class``: a class map
  first, then the accepted synonyms); label order is the canonical order of the classes
  present; an unknown name fails naming the folder, what is accepted and how to map it;
* group: a subject id coded as the file-name prefix before the first ``_`` (CK+48's
  ``S010_004_00000017.png`` → ``S010``), unless that prefix is a split or usage word
  (``Training_…``, ``train_…``), a class name (``happy_…``) or a generic word (``img_…``);
  every other image is its own group, named by its path under the tree, and the manifest's
  ``attrs["groups_note"]`` says how many images that is;
* file names that are not valid UTF-8 become items by ``safe_name``; other files in class
  folders (``.gif``, ``.txt``) are listed in ``attrs["skipped_files"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from fer_ray.data.loaders.base import (
    images_in,
    manifest_rows,
    no_images,
    safe_name,
    subdirs,
    with_labels,
)
from fer_ray.data.source import canonical_class, in_canonical_order, own_groups_note
from fer_ray.errors import DataError

SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
    "publictest": "publictest",  # FER2013's usage names, as fer2013.csv's Usage column
    "privatetest": "privatetest",
}
NOT_SUBJECT_PREFIXES = frozenset(
    {*SPLIT_FOLDERS, "img", "image", "images", "im", "pic", "photo", "frame", "face", "file"}
)
TREE_LAYOUT = (
    "<root>/<class>/*.<image> or <root>/<split>/<class>/*.<image>"
    " (split: train, val/valid/validation, test; any case)"
)
WRAPPER_DEPTH = 3  # lone folders stepped into above the tree (DATASET/, archive/, basic/)


def split_of(folder_name: str) -> str | None:
    """The normalised split a folder called ``folder_name`` holds, or None."""
    return SPLIT_FOLDERS.get(folder_name.strip().lower())


def subject_of(stem: str, folder_name: str) -> str | None:
    """The subject id coded in a file name (``S010_004_00000017`` → ``S010``), or None."""
    prefix, sep, _ = stem.partition("_")
    if not sep or not prefix.strip():
        return None
    low = prefix.lower()
    if low in NOT_SUBJECT_PREFIXES or low == folder_name.lower() or canonical_class(prefix):
        return None
    return prefix


def tree_base(root: Path, class_map: Mapping[str, str] | None = None) -> Path:
    """``root``, or the tree under lone wrapper folders (``root/DATASET/train/...``)."""
    base = root
    for _ in range(WRAPPER_DEPTH):
        dirs = subdirs(base)
        if len(dirs) != 1 or images_in(base):
            return base
        (only,) = dirs
        named = split_of(only.name) or canonical_class(only.name, class_map)
        if named or images_in(only) or not subdirs(only):
            return base
        base = only
    return base


def _mapped(name: str, class_map: Mapping[str, str] | None) -> bool:
    keys = {str(k).lower() for k in (class_map or {})}
    return name.lower() in keys


def _class_folders(
    parent: Path, class_map: Mapping[str, str] | None, layout: str, unknown_hint: str
) -> list[tuple[Path, str]]:
    """(folder, canonical class) for each class folder under ``parent``, checked."""
    out: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    for d in subdirs(parent):
        label = canonical_class(d.name, class_map)
        if label is None:
            name = safe_name(d.name)
            hint = unknown_hint.replace("<folder>", name)
            raise DataError(f"{safe_name(d)}: class folder {name!r} is not a known class; {hint}")
        other = seen.get(label)
        if other is not None and not (
            _mapped(d.name, class_map) and _mapped(other.name, class_map)
        ):
            raise DataError(
                f"{parent}: folders {other.name!r} and {d.name!r} both mean {label!r};"
                " keep one, or merge them on purpose by naming both in data.class_map"
            )
        seen[label] = d
        if not images_in(d):
            raise DataError(f"class folder {d} has no images; expected {layout}")
        out.append((d, label))
    return out


def read_tree(
    root: Path,
    class_map: Mapping[str, str] | None,
    *,
    unknown_hint: str,
    layout: str = TREE_LAYOUT,
    subjects: bool = True,
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The manifest of a class-folder tree under ``root`` and its class names (label order).

    ``unknown_hint`` ends the error for an unknown class folder (what is accepted, how to
    map it; ``<folder>`` in it becomes the folder's name); ``subjects=False`` makes every
    image its own group (the data set has no subject ids).
    ``attrs["groups_note"]`` of the manifest says which images are their own group.
    """
    base = tree_base(root, class_map)
    dirs = subdirs(base)
    splits = [d for d in dirs if split_of(d.name)]
    if splits and len(splits) < len(dirs):
        others = [d.name for d in dirs if not split_of(d.name)]
        raise DataError(
            f"{base} mixes split folders {[d.name for d in splits]} with other folders"
            f" {others}; expected {layout}"
        )
    parts: list[tuple[Path, str]] = [(d, split_of(d.name) or "") for d in splits] or [(base, "")]
    items, names, groups, split_col = [], [], [], []
    skipped: list[str] = []
    own = 0
    for parent, split in parts:
        folders = _class_folders(parent, class_map, layout, unknown_hint)
        if split and not folders:
            raise DataError(f"split folder {parent} has no class folders; expected {layout}")
        for d, label in folders:
            for p in images_in(d, skipped):
                subject = subject_of(safe_name(p.stem), d.name) if subjects else None
                if subject is None:
                    own += 1
                    subject = safe_name(p.relative_to(base).with_suffix("").as_posix())
                items.append(safe_name(p))
                names.append(label)
                groups.append(subject)
                split_col.append(split)
    if not items:
        raise no_images(base, layout)
    class_names = in_canonical_order(names)
    out = with_labels(manifest_rows(items, names, groups, split_col), class_names)
    out.attrs["groups_note"] = own_groups_note(own, len(items))
    out.attrs["skipped_files"] = skipped
    return out, class_names
