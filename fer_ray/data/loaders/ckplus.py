"""CK+: the peak frame of each labelled sequence (+ first frames as neutral), FACS AUs,
and the landmark box as the ground-truth face; group = subject."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fer_ray.data.loaders.base import (
    FileSource,
    images_in,
    need_dir,
    no_images,
    read_image,
    subdirs,
    with_labels,
)
from fer_ray.data.source import CANONICAL, Box
from fer_ray.errors import DataError

if TYPE_CHECKING:
    from fer_ray.config import DataConfig

CK_CODES = {1: "angry", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy", 6: "sad", 7: "surprise"}
CK_LAYOUT = "CK+ layout cohn-kanade-images/Sxxx/nnn/*.png and Emotion/Sxxx/nnn/*_emotion.txt"


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


def ckplus_rows(root: Path, neutral_frames: bool) -> pd.DataFrame:
    """Peak frame of each labelled sequence (+ first frame as neutral), with AU columns."""
    images = need_dir(root / "cohn-kanade-images", CK_LAYOUT)
    emotion = need_dir(root / "Emotion", CK_LAYOUT)
    rows: list[dict[str, Any]] = []
    for subject in subdirs(emotion):
        for seq in subdirs(subject):
            label_file = _one_file(seq, "*_emotion.txt")
            if label_file is None:
                continue  # CK+ ships empty Emotion folders for unlabelled sequences
            rows.extend(_sequence_rows(root, images, subject.name, seq.name, label_file))
    if not rows:
        raise no_images(root, f"{CK_LAYOUT} (no labelled sequence found)")
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
    frames = images_in(images / subject / seq) if (images / subject / seq).is_dir() else []
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


class CKPlusBoxes:
    """CK+ frames carry their landmark box as ground truth (faces.detector: groundtruth)."""

    def load(self, items: Sequence[str]) -> list[tuple[np.ndarray | None, Box | None]]:
        return [(read_image(i), landmark_box(i)) for i in items]


class CKPlusSource(CKPlusBoxes, FileSource):
    """CK+ peak frames (+ first frames as neutral when data.neutral_frames); group = subject."""

    name = "ckplus"
    options = ("neutral_frames",)

    def __init__(self, cfg: DataConfig):
        super().__init__(cfg)
        self.neutral_frames = bool(cfg.neutral_frames)
        self.class_names = (
            CANONICAL if self.neutral_frames else tuple(c for c in CANONICAL if c != "neutral")
        )

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "neutral_frames": self.neutral_frames}

    def _build_manifest(self) -> pd.DataFrame:
        return with_labels(ckplus_rows(Path(self.root), self.neutral_frames), self.class_names)
