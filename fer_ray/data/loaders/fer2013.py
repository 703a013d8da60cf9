"""FER2013 (one CSV of 48x48 pixel strings) and FER+'s re-labelling of it.

The CSV is cached per process (module level), never on the source instance, because
sources are pickled into Ray tasks.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fer_ray.data.loaders.base import (
    data_root,
    manifest_rows,
    need_file,
    no_images,
    with_labels,
)
from fer_ray.data.source import EACH_IMAGE_OWN_GROUP, Box, Source
from fer_ray.errors import DataError

if TYPE_CHECKING:
    from fer_ray.config import DataConfig

FER_PIXELS = 48 * 48
FER_COLUMNS = ("emotion", "pixels", "Usage")
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_USAGE = {"Training": "train", "PublicTest": "publictest", "PrivateTest": "privatetest"}
FERPLUS_EMOTIONS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)
FERPLUS_VOTES = (*FERPLUS_EMOTIONS, "unknown", "NF")
FERPLUS_CLASSES = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt")


#: Rows of fer2013.csv read at a time while it is checked: the driver never holds more pixel
#: strings than this, whatever the file's size. pandas' parser and its Arrow string arrays take
#: about 45 KB of the driver's memory per row (five times the text), and Arrow's allocator keeps
#: what it freed: 2,000 rows add about 90 MiB (20,000 added about 600 MiB at 30,000 rows), and
#: small chunks parse faster too (1.5 s against 2.6 s for 30,000 rows)
CSV_CHUNK_ROWS = 2_000


def _read_csv(
    path: Path, required: Sequence[str], str_columns: Sequence[str], chunk: int | None = None
) -> Any:
    """The CSV (or, with ``chunk``, an iterator of DataFrames of that many rows), its columns
    checked first; a file pandas cannot parse is one line naming it."""
    try:
        header = pd.read_csv(path, nrows=0)
        found = [str(c).strip() for c in header.columns]
        missing = [c for c in required if c not in found]
        if missing:
            raise DataError(
                f"{path}: missing columns {missing}; expected columns {','.join(required)}"
                f" (found {','.join(found)})"
            )
        df = pd.read_csv(path, dtype={c: str for c in str_columns}, chunksize=chunk)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot parse as CSV ({e})") from None
    if chunk is None:
        df.columns = found
        return df
    return _chunks(df, path, found)


def _chunks(reader: Any, path: Path, columns: list[str]) -> Iterator[pd.DataFrame]:
    try:
        for df in reader:
            df.columns = columns
            yield df
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot parse as CSV ({e})") from None


def _pixel_count(text: str) -> int:
    """Number of pixel values; the single-space fast path covers the real file."""
    n = text.count(" ") + 1
    if n != FER_PIXELS or "  " in text or "\t" in text or text[:1].isspace() or text[-1:].isspace():
        n = len(text.split())
    return n


def _check_pixel_rows(pixels: pd.Series, path: Path, start: int = 0) -> None:
    for row, text in enumerate(pixels.fillna("").tolist(), start):
        n = _pixel_count(text)
        if n != FER_PIXELS:
            raise DataError(
                f"{path}: row {row} (line {row + 2}) has {n} pixel values, expected {FER_PIXELS}"
                " (48x48 grey)"
            )


def _fer_rows(path: Path) -> pd.DataFrame:
    """fer2013.csv checked row by row: label range, Usage values, pixel-string length; read in
    chunks of ``CSV_CHUNK_ROWS``, keeping only labels and Usage."""
    parts, start = [], 0
    for df in _read_csv(path, FER_COLUMNS, ("pixels", "Usage"), chunk=CSV_CHUNK_ROWS):
        emotion = pd.to_numeric(df["emotion"], errors="coerce")
        bad = ~emotion.isin(range(len(FER_CLASSES)))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            row = start + i
            raise DataError(
                f"{path}: row {row} (line {row + 2}) has emotion"
                f" {str(df['emotion'].iloc[i])!r}; expected 0..6 ({', '.join(FER_CLASSES)})"
            )
        usage = _usage(df["Usage"], path, start)
        _check_pixel_rows(df["pixels"], path, start)
        parts.append(pd.DataFrame({"emotion": emotion.astype(np.int64), "split": usage}))
        start += len(df)
    if not parts:
        return pd.DataFrame({"emotion": pd.Series([], dtype=np.int64), "split": []})
    return pd.concat(parts, ignore_index=True)


def _usage(column: pd.Series, path: Path, start: int = 0) -> pd.Series:
    split = column.map(FER_USAGE)
    if split.isna().any():
        i = int(np.flatnonzero(split.isna().to_numpy())[0])
        row = start + i
        raise DataError(
            f"{path}: row {row} (line {row + 2}) has Usage {column.iloc[i]!r};"
            f" expected one of {', '.join(FER_USAGE)}"
        )
    return split


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


@lru_cache(maxsize=2)
def _pixel_strings(path: str, size: int, mtime_ns: int) -> list[str]:
    """The pixel column of one CSV, read once per process (keyed by size and mtime)."""
    df = pd.read_csv(path, usecols=["pixels"], dtype={"pixels": str})
    return df["pixels"].fillna("").tolist()


def decode_pixels(text: str) -> np.ndarray | None:
    """48x48 RGB uint8 from a FER2013 pixel string; None unless 2304 ints in 0..255."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns (not raises) on a partial parse
        try:
            values = np.fromstring(text, dtype=np.int64, sep=" ")
        except (ValueError, DeprecationWarning):
            return None
    if values.size != FER_PIXELS or values.min() < 0 or values.max() > 255:
        return None
    grey = values.astype(np.uint8).reshape(48, 48)
    return np.repeat(grey[:, :, None], 3, axis=2)


class _CsvSource(Source):
    """Rows of fer2013.csv; items are ``<abs path to fer2013.csv>#<row index>``."""

    name = ""
    csv_files: tuple[str, ...] = ("fer2013.csv",)

    def __init__(self, cfg: DataConfig):
        self.root = str(data_root(cfg))
        self.classes = list(cfg.classes) if cfg.classes else None

    def _path(self, name: str) -> Path:
        return need_file(
            Path(self.root) / name,
            f"{name} in data.root (FER2013 columns {','.join(FER_COLUMNS)};"
            f" FER+ fer2013new.csv next to it)",
        )

    def groups_note(self) -> str | None:
        return EACH_IMAGE_OWN_GROUP  # FER2013 has no subject ids: every row is its own group

    def _items(self, rows: np.ndarray) -> list[str]:
        csv = self._path("fer2013.csv")
        return [f"{csv}#{i}" for i in rows]

    def identity(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "root": self.root,
            "classes": self.classes,
            "files": {f: _stamp(self._path(f)) for f in self.csv_files},
        }

    def load(self, items: Sequence[str]) -> list[tuple[np.ndarray | None, Box | None]]:
        out: list[tuple[np.ndarray | None, Box | None]] = []
        for item in items:
            path, _, row = str(item).rpartition("#")
            try:
                pixels = _pixel_strings(path, *_stamp(Path(path)))
                out.append((decode_pixels(pixels[int(row)]), None))
            except (OSError, ValueError, IndexError, KeyError):
                out.append((None, None))
        return out


class FER2013Source(_CsvSource):
    """FER2013 in its own label order; no subjects, so every row is its own group."""

    name = "fer2013"
    class_names = FER_CLASSES

    def manifest(self) -> pd.DataFrame:
        fer = _fer_rows(self._path("fer2013.csv"))
        rows = np.arange(len(fer))
        out = manifest_rows(
            self._items(rows),
            [FER_CLASSES[e] for e in fer["emotion"]],
            [f"row{i:05d}" for i in rows],
            fer["split"].tolist(),
        )
        if out.empty:
            raise no_images(Path(self.root), "fer2013.csv with at least one row")
        return with_labels(out, self.class_names)


def ferplus_majority(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FER+ "majority" mode: (label 0..7 or -1, reason) per row of 10 vote counts.

    As Microsoft's ferplus.py: single votes are dropped as outliers, then a row keeps
    the emotion holding more than half of the remaining votes; no such emotion
    (a tie included) → "no_majority"; unknown or NF winning → "unknown" / "not_face".
    """
    v = np.where(votes <= 1, 0.0, votes.astype(np.float64))
    top, peak, total = v.argmax(1), v.max(1), v.sum(1)
    majority = peak * 2 > total
    reason = np.full(len(v), "", dtype=object)
    reason[~majority] = "no_majority"
    reason[majority & (top == 8)] = "unknown"
    reason[majority & (top == 9)] = "not_face"
    label = np.where(reason == "", top, -1)
    return label.astype(np.int64), reason


class FERPlusSource(_CsvSource):
    """FER2013 images with FER+'s re-annotation (8 classes); excluded rows are counted."""

    name = "ferplus"
    class_names = FERPLUS_CLASSES
    csv_files = ("fer2013.csv", "fer2013new.csv")

    def manifest(self) -> pd.DataFrame:
        fer_path, new_path = self._path("fer2013.csv"), self._path("fer2013new.csv")
        fer = _fer_rows(fer_path)
        new = _read_csv(new_path, ("Usage", "Image name", *FERPLUS_VOTES), ("Usage", "Image name"))
        if len(new) != len(fer):
            raise DataError(
                f"{new_path} has {len(new)} rows but {fer_path} has {len(fer)};"
                " expected one FER+ row per FER2013 row, in the same order"
            )
        label, reason = ferplus_majority(_votes(new, new_path))
        no_name = new["Image name"].fillna("").str.strip().to_numpy() == ""
        reason[no_name] = "no_image"
        keep = reason == ""
        rows = np.flatnonzero(keep)
        out = manifest_rows(
            self._items(rows),
            [FERPLUS_CLASSES[i] for i in label[keep]],
            [f"row{i:05d}" for i in rows],
            _usage(new["Usage"], new_path).to_numpy()[keep].tolist(),
        )
        if out.empty:
            raise no_images(Path(self.root), "FER+ rows with a majority emotion")
        out = with_labels(out, self.class_names)
        out.attrs["excluded"] = int((~keep).sum())
        out.attrs["excluded_by_reason"] = {
            r: int((reason == r).sum()) for r in ("no_image", "not_face", "unknown", "no_majority")
        }
        return out


def _votes(df: pd.DataFrame, path: Path) -> np.ndarray:
    votes = df[list(FERPLUS_VOTES)].apply(pd.to_numeric, errors="coerce")
    bad = votes.isna().to_numpy() | (votes.to_numpy() < 0)
    if bad.any():
        row, col = (int(x[0]) for x in np.nonzero(bad))
        raise DataError(
            f"{path}: row {row} (line {row + 2}) column {FERPLUS_VOTES[col]!r} is"
            f" {df[FERPLUS_VOTES[col]].iloc[row]!r}; expected a vote count >= 0"
        )
    return votes.to_numpy(dtype=np.float64)
