"""Real data set loaders: each data set's own on-disk layout → manifest + RGB images.

Why one source per data set: every collection ships a different layout (CSV rows,
video-sequence folders, coded file names), and a broken input must be reported as
"this file broke this expectation". Labels use one canonical lower-case vocabulary
(``CANONICAL``) so joined data sets (``ckplus_jaffe``) share a label map and
``data.classes`` means the same thing everywhere.

Sources are pickled into Ray tasks, so they hold only the root path and options;
the FER2013 CSV is cached per process (module level), never on the instance.
Unreadable images load as ``(None, None)``: the pipeline counts and lists them.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fer_ray.config import DataConfig
from fer_ray.data.datasets import Box, DataError, Source, register

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
SEVEN: tuple[str, ...] = tuple(c for c in CANONICAL if c != "contempt")
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})

SFEW_FOLDERS = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
SFEW_LAYOUT = "SFEW 2.0 layout Train/Train_Aligned_Faces/<Class>/*.png and Val/Val_Aligned_Faces/<Class>/*.png"
SFEW_SUBSET_LAYOUT = f"SFEW subset layout <root>/<{'|'.join(SFEW_FOLDERS)}>/*.png"

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

CK_CODES = {1: "angry", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy", 6: "sad", 7: "surprise"}
CK_LAYOUT = "CK+ layout cohn-kanade-images/Sxxx/nnn/*.png and Emotion/Sxxx/nnn/*_emotion.txt"

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


# --------------------------------------------------------------------------- helpers


def read_image(path: str | Path) -> np.ndarray | None:
    """RGB uint8 HxWx3, or None when the file is missing or does not decode."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        return _read_with_pil(path)  # exotic TIFF compressions cv2 lacks
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _read_with_pil(path: str | Path) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"), dtype=np.uint8)
    except Exception:  # any decoder failure means "unreadable", never a crash
        return None


def _root(cfg: DataConfig) -> Path:
    if cfg.root is None:
        raise DataError(f"data.root is not set; data set {cfg.name!r} needs its folder")
    root = Path(cfg.root).expanduser()
    if not root.exists():
        raise DataError(f"data.root {root} does not exist (data set {cfg.name!r})")
    if not root.is_dir():
        raise DataError(f"data.root {root} is not a directory (data set {cfg.name!r})")
    return root.resolve()


def _need_dir(path: Path, expected: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{path} not found; expected {expected}")
    return path


def _need_file(path: Path, expected: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path} not found; expected {expected}")
    return path


def _visible(p: Path) -> bool:
    return not p.name.startswith((".", "__"))  # .DS_Store, .ipynb_checkpoints, __MACOSX


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p))


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_EXTS
    )


def _no_images(root: Path, layout: str) -> DataError:
    return DataError(f"no images found under {root}; expected {layout}")


def _fingerprint(root: Path, paths: Iterable[str | Path]) -> str:
    """sha1 of relative path, size and mtime of every file: changes when any pixel can."""
    h = hashlib.sha1()
    for p in paths:
        p = Path(p)
        try:
            st = p.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        rel = p.relative_to(root) if p.is_relative_to(root) else p
        h.update(f"{rel.as_posix()}\0{stamp}\n".encode())
    return h.hexdigest()


def _with_labels(rows: pd.DataFrame, class_names: Sequence[str]) -> pd.DataFrame:
    """Number ``label_name`` by ``class_names`` and order the manifest columns first."""
    index = {c: i for i, c in enumerate(class_names)}
    out = rows.copy()
    out["label"] = out["label_name"].map(index).astype(np.int64)
    first = ["item", "label", "label_name", "group", "split"]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)


def _rows(
    items: list[str], names: list[str], groups: list[str], split: str | list[str]
) -> pd.DataFrame:
    return pd.DataFrame(
        {"item": items, "label_name": names, "group": groups, "split": split},
        columns=["item", "label_name", "group", "split"],
    )


class _FileSource(Source):
    """A data set of image files under ``data.root``; items are absolute paths."""

    name = ""

    def __init__(self, cfg: DataConfig):
        self.root = str(_root(cfg))
        self.classes = list(cfg.classes) if cfg.classes else None

    def identity(self) -> dict[str, Any]:
        # classes are in it because the crop cache is chunked by manifest position
        items = self.manifest()["item"]
        return {
            "source": self.name,
            "root": self.root,
            "classes": self.classes,
            "files": _fingerprint(Path(self.root), items),
        }

    def load(self, items: Sequence[str]) -> list[tuple[np.ndarray | None, Box | None]]:
        return [(read_image(i), None) for i in items]


# --------------------------------------------------------------------------- SFEW


def _movie(path: Path) -> str:
    return path.stem.split("_", 1)[0]


def _sfew_rows(parent: Path, split: str, layout: str) -> pd.DataFrame:
    """One row per image in ``parent/<Class>/``; an unknown class folder is an error."""
    items, names, groups = [], [], []
    for d in _subdirs(parent):
        label = d.name.lower()
        if label not in SEVEN:
            raise DataError(
                f"{d}: unknown class folder {d.name!r}; expected one of "
                f"{', '.join(SFEW_FOLDERS)} ({layout})"
            )
        for p in _images_in(d):
            items.append(str(p))
            names.append(label)
            groups.append(_movie(p))
    return _rows(items, names, groups, split)


@register("sfew")
class SFEWSource(_FileSource):
    """SFEW 2.0 aligned faces; group = movie (the file-name prefix), split = its train/val."""

    name = "sfew"
    class_names = SEVEN
    parts = (("train", "Train/Train_Aligned_Faces"), ("val", "Val/Val_Aligned_Faces"))

    def manifest(self) -> pd.DataFrame:
        root = Path(self.root)
        frames = [
            _sfew_rows(_need_dir(root / rel, SFEW_LAYOUT), split, SFEW_LAYOUT)
            for split, rel in self.parts
        ]
        rows = pd.concat(frames, ignore_index=True)
        if rows.empty:
            raise _no_images(root, SFEW_LAYOUT)
        return _with_labels(rows, self.class_names)


@register("sfew_subset")
class SFEWSubsetSource(_FileSource):
    """The SFEW course subset (seed 000): class folders only; SFEW.xlsx is read elsewhere."""

    name = "sfew_subset"
    class_names = SEVEN

    def manifest(self) -> pd.DataFrame:
        root = Path(self.root)
        if not _subdirs(root):
            raise DataError(f"{root} has no class folders; expected {SFEW_SUBSET_LAYOUT}")
        rows = _sfew_rows(root, "", SFEW_SUBSET_LAYOUT)
        if rows.empty:
            raise _no_images(root, SFEW_SUBSET_LAYOUT)
        return _with_labels(rows, self.class_names)


# --------------------------------------------------------------------------- FER2013 / FER+


def _read_csv(path: Path, required: Sequence[str], str_columns: Sequence[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={c: str for c in str_columns})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot parse as CSV ({e})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing columns {missing}; expected columns {','.join(required)}"
            f" (found {','.join(df.columns)})"
        )
    return df


def _pixel_count(text: str) -> int:
    """Number of pixel values; the single-space fast path covers the real file."""
    n = text.count(" ") + 1
    if n != FER_PIXELS or "  " in text or "\t" in text or text[:1].isspace() or text[-1:].isspace():
        n = len(text.split())
    return n


def _check_pixel_rows(pixels: pd.Series, path: Path) -> None:
    for row, text in enumerate(pixels.fillna("").tolist()):
        n = _pixel_count(text)
        if n != FER_PIXELS:
            raise DataError(
                f"{path}: row {row} (line {row + 2}) has {n} pixel values, expected {FER_PIXELS}"
                " (48x48 grey)"
            )


def _fer_rows(path: Path) -> pd.DataFrame:
    """fer2013.csv checked row by row: label range, Usage values, pixel-string length."""
    df = _read_csv(path, FER_COLUMNS, ("pixels", "Usage"))
    emotion = pd.to_numeric(df["emotion"], errors="coerce")
    bad = ~emotion.isin(range(len(FER_CLASSES)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{path}: row {row} (line {row + 2}) has emotion {str(df['emotion'].iloc[row])!r};"
            f" expected 0..6 ({', '.join(FER_CLASSES)})"
        )
    usage = _usage(df["Usage"], path)
    _check_pixel_rows(df["pixels"], path)
    return pd.DataFrame({"emotion": emotion.astype(np.int64), "split": usage})


def _usage(column: pd.Series, path: Path) -> pd.Series:
    split = column.map(FER_USAGE)
    if split.isna().any():
        row = int(np.flatnonzero(split.isna().to_numpy())[0])
        raise DataError(
            f"{path}: row {row} (line {row + 2}) has Usage {column.iloc[row]!r};"
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
        self.root = str(_root(cfg))
        self.classes = list(cfg.classes) if cfg.classes else None

    def _path(self, name: str) -> Path:
        return _need_file(
            Path(self.root) / name,
            f"{name} in data.root (FER2013 columns {','.join(FER_COLUMNS)};"
            f" FER+ fer2013new.csv next to it)",
        )

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


@register("fer2013")
class FER2013Source(_CsvSource):
    """FER2013 in its own label order; no subjects, so every row is its own group."""

    name = "fer2013"
    class_names = FER_CLASSES

    def manifest(self) -> pd.DataFrame:
        fer = _fer_rows(self._path("fer2013.csv"))
        rows = np.arange(len(fer))
        out = _rows(
            self._items(rows),
            [FER_CLASSES[e] for e in fer["emotion"]],
            [f"row{i:05d}" for i in rows],
            fer["split"].tolist(),
        )
        if out.empty:
            raise _no_images(Path(self.root), "fer2013.csv with at least one row")
        return _with_labels(out, self.class_names)


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


@register("ferplus")
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
        out = _rows(
            self._items(rows),
            [FERPLUS_CLASSES[i] for i in label[keep]],
            [f"row{i:05d}" for i in rows],
            _usage(new["Usage"], new_path).to_numpy()[keep].tolist(),
        )
        if out.empty:
            raise _no_images(Path(self.root), "FER+ rows with a majority emotion")
        out = _with_labels(out, self.class_names)
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


# --------------------------------------------------------------------------- CK+


def _ck_label(path: Path) -> str:
    text = path.read_text(errors="replace").strip()
    try:
        value = float(text)
    except ValueError:
        raise DataError(
            f"{path}: emotion label {text!r} is not a number; expected one of 1..7"
            f" ({', '.join(f'{k} {v}' for k, v in CK_CODES.items())})"
        ) from None
    if not value.is_integer() or int(value) not in CK_CODES:
        raise DataError(
            f"{path}: emotion label {value:g} is out of range; expected one of 1..7"
            f" ({', '.join(f'{k} {v}' for k, v in CK_CODES.items())})"
        )
    return CK_CODES[int(value)]


def _read_facs(path: Path) -> dict[int, float]:
    """``AU intensity`` lines → {AU: intensity} (CK+ writes both as floats)."""
    aus: dict[int, float] = {}
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            au, intensity = (float(x) for x in parts)
        except ValueError:
            au, intensity = float("nan"), float("nan")
        if not au.is_integer() or np.isnan(intensity):
            raise DataError(
                f"{path}: line {n} is {line.strip()!r}; expected 'AU intensity' as two numbers"
            )
        aus[int(au)] = max(intensity, aus.get(int(au), 0.0))
    return aus


def _one_file(folder: Path, pattern: str) -> Path | None:
    found = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if len(found) > 1:
        raise DataError(f"{folder} holds {len(found)} {pattern} files; expected one per sequence")
    return found[0] if found else None


def _ckplus_rows(root: Path, neutral_frames: bool) -> pd.DataFrame:
    """Peak frame of each labelled sequence (+ first frame as neutral), with AU columns."""
    images = _need_dir(root / "cohn-kanade-images", CK_LAYOUT)
    emotion = _need_dir(root / "Emotion", CK_LAYOUT)
    rows: list[dict[str, Any]] = []
    for subject in _subdirs(emotion):
        for seq in _subdirs(subject):
            label_file = _one_file(seq, "*_emotion.txt")
            if label_file is None:
                continue  # CK+ ships empty Emotion folders for unlabelled sequences
            rows.extend(_sequence_rows(root, images, subject.name, seq.name, label_file))
    if not rows:
        raise _no_images(root, f"{CK_LAYOUT} (no labelled sequence found)")
    df = pd.DataFrame(rows)
    au_cols = sorted((c for c in df.columns if c.startswith("AU")), key=lambda c: int(c[2:]))
    scored = df.pop("_facs").to_numpy(dtype=bool)  # peak frames with a FACS file
    df[au_cols] = df[au_cols].fillna(0.0)  # an AU absent from a FACS file: intensity 0
    df.loc[~scored, au_cols] = np.nan
    if not neutral_frames:
        df = df[df["label_name"] != "neutral"]
    return df[["item", "label_name", "group", "split", *au_cols]].reset_index(drop=True)


def _sequence_rows(
    root: Path, images: Path, subject: str, seq: str, label_file: Path
) -> list[dict[str, Any]]:
    label = _ck_label(label_file)
    frames = _images_in(images / subject / seq) if (images / subject / seq).is_dir() else []
    if not frames:
        raise DataError(
            f"{label_file} labels a sequence but {images / subject / seq} has no images;"
            f" expected {CK_LAYOUT}"
        )
    facs_file = _one_file(root / "FACS" / subject / seq, "*_facs.txt")
    aus = _read_facs(facs_file) if facs_file else {}
    peak = {"item": str(frames[-1]), "label_name": label, "group": subject, "split": ""}
    peak.update({f"AU{k}": v for k, v in aus.items()}, _facs=facs_file is not None)
    if len(frames) < 2:
        return [peak]  # a one-frame sequence has no separate neutral frame
    first = {"item": str(frames[0]), "label_name": "neutral", "group": subject, "split": ""}
    return [{**first, "_facs": False}, peak]


def landmark_box(image_path: str | Path) -> Box | None:
    """The box around a CK+ frame's 68 landmarks (seed 003 crops to it), or None without them.

    ``.../cohn-kanade-images/S005/001/S005_001_00000011.png`` has its points in
    ``.../Landmarks/S005/001/S005_001_00000011_landmarks.txt`` (one ``x y`` pair per line).
    """
    p = Path(image_path)
    if "cohn-kanade-images" not in p.parts:
        return None
    k = len(p.parts) - 1 - p.parts[::-1].index("cohn-kanade-images")
    lm = Path(*p.parts[:k], "Landmarks", *p.parts[k + 1 : -1], f"{p.stem}_landmarks.txt")
    try:
        pts = np.loadtxt(lm, ndmin=2)
    except (OSError, ValueError):
        return None
    if pts.shape[1] != 2 or len(pts) == 0:
        return None
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int)
    return (int(x0), int(y0), int(x1), int(y1)) if x1 > x0 and y1 > y0 else None


class _CKBoxes:
    """CK+ frames carry their landmark box as ground truth (faces.detector: groundtruth)."""

    def load(self, items: Sequence[str]) -> list[tuple[np.ndarray | None, Box | None]]:
        return [(read_image(i), landmark_box(i)) for i in items]


@register("ckplus")
class CKPlusSource(_CKBoxes, _FileSource):
    """CK+ peak frames (+ first frames as neutral when data.neutral_frames); group = subject."""

    name = "ckplus"

    def __init__(self, cfg: DataConfig):
        super().__init__(cfg)
        self.neutral_frames = bool(cfg.neutral_frames)
        self.class_names = (
            CANONICAL if self.neutral_frames else tuple(c for c in CANONICAL if c != "neutral")
        )

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "neutral_frames": self.neutral_frames}

    def manifest(self) -> pd.DataFrame:
        return _with_labels(_ckplus_rows(Path(self.root), self.neutral_frames), self.class_names)


# --------------------------------------------------------------------------- JAFFE


def _jaffe_rows(root: Path) -> pd.DataFrame:
    items, names, groups = [], [], []
    for p in sorted(root.iterdir()):
        if not (p.is_file() and _visible(p) and p.suffix.lower() in (".tif", ".tiff")):
            continue
        m = JAFFE_NAME.match(p.name)
        if m is None:
            raise DataError(
                f"{p}: JAFFE file name {p.name!r} does not parse; expected {JAFFE_LAYOUT}"
            )
        code = m["code"].upper()
        if code not in JAFFE_CODES:
            raise DataError(
                f"{p}: unknown JAFFE expression code {code!r}; expected one of"
                f" {' '.join(JAFFE_CODES)}"
            )
        items.append(str(p))
        names.append(JAFFE_CODES[code])
        groups.append(m["subject"].upper())
    if not items:
        raise _no_images(root, JAFFE_LAYOUT)
    return _rows(items, names, groups, "")


@register("jaffe")
class JAFFESource(_FileSource):
    """JAFFE grey 256x256 TIFFs; expression and subject come from the file name."""

    name = "jaffe"
    class_names = SEVEN

    def manifest(self) -> pd.DataFrame:
        return _with_labels(_jaffe_rows(Path(self.root)), self.class_names)


@register("ckplus_jaffe")
class CKPlusJAFFESource(_CKBoxes, _FileSource):
    """Seed 002's join: CK+ and JAFFE under one 8-class label map; groups never collide."""

    name = "ckplus_jaffe"
    class_names = CANONICAL

    def __init__(self, cfg: DataConfig):
        super().__init__(cfg)
        self.neutral_frames = bool(cfg.neutral_frames)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "neutral_frames": self.neutral_frames}

    def manifest(self) -> pd.DataFrame:
        root = Path(self.root)
        layout = "<root>/ckplus/ (CK+ layout) and <root>/jaffe/ (JAFFE .tiff files)"
        ck = _ckplus_rows(_need_dir(root / "ckplus", layout), self.neutral_frames)
        jaffe = _jaffe_rows(_need_dir(root / "jaffe", layout))
        ck["group"] = "ck:" + ck["group"]
        jaffe["group"] = "jaffe:" + jaffe["group"]
        return _with_labels(pd.concat([ck, jaffe], ignore_index=True), self.class_names)


# --------------------------------------------------------------------------- image folder


def _folder_group(path: Path, class_name: str) -> str:
    """``<group>_<rest>`` names share a group; otherwise each image is its own group."""
    prefix = path.stem.split("_", 1)[0]
    return prefix if "_" in path.stem and prefix else f"{class_name}/{path.stem}"


@register("imagefolder")
class ImageFolderSource(_FileSource):
    """Any ``<root>/<class>/*.<image>`` collection; class names are the folder names, sorted."""

    name = "imagefolder"
    layout = "<root>/<class>/*.{png,jpg,jpeg,bmp,tif,tiff}"

    def __init__(self, cfg: DataConfig):
        super().__init__(cfg)
        self.class_names = tuple(d.name for d in _subdirs(Path(self.root)))

    def manifest(self) -> pd.DataFrame:
        items, names, groups = [], [], []
        for d in _subdirs(Path(self.root)):
            files = _images_in(d)
            if not files:
                raise DataError(f"class folder {d} has no images; expected {self.layout}")
            items += [str(p) for p in files]
            names += [d.name] * len(files)
            groups += [_folder_group(p, d.name) for p in files]
        if not items:
            raise _no_images(Path(self.root), self.layout)
        return _with_labels(_rows(items, names, groups, ""), self.class_names)
