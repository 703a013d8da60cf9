"""What a data set is to fer_ray: a ``Source`` that lists a manifest and loads images.

A manifest is a DataFrame with one row per image: ``item`` (path or reference), ``label``
(0..C-1 in the order of the source's ``class_names``), ``label_name``, ``group`` (subject or
movie: the unit that splits keep on one side) and ``split`` (the data set's own split, or ""),
plus optional extra columns (CK+ AUs). Sources are pickled into Ray tasks, so they hold only
plain settings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

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


class Source(ABC):
    """One data set: where its images are, their labels and groups, and how to read them."""

    class_names: tuple[str, ...] = ()

    @abstractmethod
    def manifest(self) -> pd.DataFrame: ...

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What determines the pixels; it keys the crop cache and the stage fingerprints."""

    @abstractmethod
    def load(self, items: Sequence[str]) -> list[tuple[np.ndarray | None, Box | None]]:
        """RGB uint8 images and their ground-truth face boxes (None where unknown).

        An unreadable item gives ``(None, None)`` instead of raising, so the caller
        can count and list every bad file at once.
        """
