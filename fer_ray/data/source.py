"""What a data set is to fer_ray: a ``Source`` that lists a manifest and loads images.

A manifest is a DataFrame with one row per image: ``item`` (path or reference), ``label``
(0..C-1 in the order of the source's ``class_names``), ``label_name``, ``group`` (subject or
movie: the unit that splits keep on one side) and ``split`` (the data set's own split, or ""),
plus optional extra columns (CK+ AUs). Sources are pickled into Ray tasks, so they hold only
plain settings.

Class names: every loader speaks the one vocabulary ``CANONICAL``; the names circulating copies
use for folders (``anger``, ``Sadness``, ``joy`` ...) map to it through ``CLASS_SYNONYMS``
(``canonical_class``), anything else needs ``data.class_map``. Where a loader finds its classes
on disk, label order is the canonical order of the classes present.

Groups: ``Source.groups_note()`` says, in one line, when groups are not subjects (or movies),
e.g. ``EACH_IMAGE_OWN_GROUP`` for data sets without subject ids (FER2013, RAF-DB, most image
folders), so a run summary and the report can state that subject independence is unchecked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fer_ray.errors import ConfigError

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive
MANIFEST_COLUMNS = ("item", "label", "label_name", "group", "split")

# One lower-case label vocabulary for every loader, so joined data sets share a label map and
# data.classes means the same everywhere.
CANONICAL: tuple[str, ...] = (
    "angry",
    "contempt",
    "disgust",
    "fear",
    "happy",
    "neutral",
    "sad",
    "surprise",
)
SEVEN: tuple[str, ...] = tuple(c for c in CANONICAL if c != "contempt")  # the basic seven

# The names data set copies give their class folders (matched case-insensitively).
CLASS_SYNONYMS: dict[str, tuple[str, ...]] = {
    "angry": ("anger", "angry"),
    "contempt": ("contempt",),
    "disgust": ("disgust", "disgusted"),
    "fear": ("fear", "fearful", "afraid"),
    "happy": ("happy", "happiness", "joy"),
    "neutral": ("neutral", "calm"),
    "sad": ("sad", "sadness"),
    "surprise": ("surprise", "surprised"),
}
_SYNONYM_OF = {alias: c for c, aliases in CLASS_SYNONYMS.items() for alias in aliases}

EACH_IMAGE_OWN_GROUP = (
    "each image is its own group: subject independence cannot be checked for this data set"
)


def canonical_class(name: str, class_map: Mapping[str, str] | None = None) -> str | None:
    """The canonical class a folder or label called ``name`` stands for, or None if unknown.

    ``class_map`` (``data.class_map``: ``{folder: class}``) is looked up first, exactly and
    then ignoring case; then the accepted synonyms (``CLASS_SYNONYMS``), ignoring case. A
    ``class_map`` value may itself be any accepted name (``sadness`` → ``sad``).
    """
    if class_map:
        value = class_map.get(name)
        if value is None:
            folded = {str(k).lower(): v for k, v in class_map.items()}
            value = folded.get(name.lower())
        if value is not None:
            return _SYNONYM_OF.get(str(value).strip().lower())
    return _SYNONYM_OF.get(name.strip().lower())


def accepted_classes() -> str:
    """The accepted class names, for error messages: ``anger/angry, ...``."""
    return ", ".join("/".join(dict.fromkeys((*a, c))) for c, a in CLASS_SYNONYMS.items())


def check_class_map(class_map: Mapping[str, str] | None) -> dict[str, str]:
    """``data.class_map`` with every value checked against the vocabulary (one line if not)."""
    out: dict[str, str] = {}
    for key, value in (class_map or {}).items():
        if _SYNONYM_OF.get(str(value).strip().lower()) is None:
            raise ConfigError(
                f"data.class_map: {key!r} maps to {value!r}, which is not a class;"
                f" expected one of {', '.join(CANONICAL)} (or {accepted_classes()})"
            )
        out[str(key)] = str(value)
    return out


def in_canonical_order(names: Iterable[str]) -> tuple[str, ...]:
    """The canonical classes among ``names``, in canonical (label) order."""
    present = set(names)
    return tuple(c for c in CANONICAL if c in present)


def own_groups_note(own: int, total: int) -> str | None:
    """The groups note when ``own`` of ``total`` images had no subject id (own group)."""
    if own == 0:
        return None
    if own >= total:
        return EACH_IMAGE_OWN_GROUP
    return (
        f"{own} of {total} images have no subject id in their file name and are each their own"
        " group: subject independence cannot be checked for them"
    )


class Source(ABC):
    """One data set: where its images are, their labels and groups, and how to read them."""

    class_names: tuple[str, ...] = ()
    # data.* keys this source reads beyond name, root, classes, skip_unreadable and test_split;
    # setting another source's key (say data.class_map for sfew) is refused, not ignored
    options: tuple[str, ...] = ()

    @abstractmethod
    def manifest(self) -> pd.DataFrame: ...

    group_noun: str = "subjects"  # what one group is (the unit of the report's intervals)

    def groups_note(self) -> str | None:
        """One line for the run summary and the report when groups are not subjects or movies.

        None where groups are subjects or movies (CK+, JAFFE, SFEW, synthetic);
        ``EACH_IMAGE_OWN_GROUP`` where the data set has no subject ids (FER2013, FER+,
        RAF-DB, image folders without subject-coded names); a partial count where only some
        images lack one. ``read_manifest`` also puts it in ``manifest.attrs["groups_note"]``.
        """
        return None

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What determines the pixels; it keys the crop cache and the stage fingerprints."""

    @abstractmethod
    def load(self, items: Sequence[str]) -> list[tuple[np.ndarray | None, Box | None]]:
        """RGB uint8 images and their ground-truth face boxes (None where unknown).

        An unreadable item gives ``(None, None)`` instead of raising, so the caller
        can count and list every bad file at once.
        """
