"""Writers of tiny copies of each real data set, in its exact on-disk format.

Why: the real data sets cannot be downloaded here, so loaders are tested against
files laid out byte-for-byte like the originals (names, folders, CSV columns,
label-file float format). Every writer is deterministic and returns what a test
needs to know (counts, paths, expected labels).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

SFEW_CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
SFEW_TRAIN_MOVIES = ("Airheads", "BlackSwan", "Hangover", "Juno", "Serendipity", "TheTerminal")
SFEW_VAL_MOVIES = ("Bridesmaids", "Inception")
FER_CODES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FERPLUS_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
# (Image name, votes, expected canonical label or exclusion reason) per FER+ row
FERPLUS_ROWS: tuple[tuple[str, dict[str, int], str], ...] = (
    ("fer0000000.png", {"happiness": 10}, "happy"),
    ("fer0000001.png", {"neutral": 6, "sadness": 3, "anger": 1}, "neutral"),
    ("fer0000002.png", {"neutral": 5, "happiness": 5}, "no_majority"),  # a tie
    ("fer0000003.png", {"unknown": 7, "neutral": 3}, "unknown"),
    ("fer0000004.png", {"NF": 10}, "not_face"),
    ("", {"surprise": 10}, "no_image"),  # FER+ left this row without a file
    ("fer0000006.png", {"contempt": 8, "anger": 2}, "contempt"),
    ("fer0000007.png", {"fear": 4, "surprise": 3, "sadness": 3}, "no_majority"),  # plurality only
    ("fer0000008.png", {"surprise": 9, "NF": 1}, "surprise"),
    ("fer0000009.png", {"sadness": 7, "neutral": 3}, "sad"),
    ("fer0000010.png", {"anger": 6, "disgust": 2, "fear": 1, "contempt": 1}, "angry"),
    ("fer0000011.png", {"disgust": 5, "anger": 4, "fear": 1}, "disgust"),  # single vote dropped
    ("fer0000012.png", {"fear": 10}, "fear"),
    ("fer0000013.png", {"happiness": 8, "neutral": 2}, "happy"),
)
# (subject, sequence, CK+ emotion code or None, frames, FACS {AU: intensity} or None)
CK_SEQUENCES: tuple[tuple[str, str, int | None, int, dict[int, float] | None], ...] = (
    ("S005", "001", 3, 4, {9: 4.0, 17: 2.0}),
    ("S005", "002", None, 3, None),  # empty Emotion folder: unlabelled
    ("S010", "002", 1, 3, {4: 3.0, 5: 2.0, 7: 1.0, 23: 3.0}),
    ("S010", "004", 2, 5, {14: 2.0}),
    ("S011", "001", 4, 3, {1: 2.0, 2: 2.0, 4: 1.0, 5: 3.0, 20: 2.0}),
    ("S011", "003", 5, 4, {6: 3.0, 12: 4.0}),
    ("S022", "001", 6, 3, None),  # labelled, no FACS file
    ("S022", "002", None, 3, None),  # no Emotion folder at all: unlabelled
    ("S022", "003", 7, 6, {1: 3.0, 2: 3.0, 26: 0.0}),
)
CK_NAMES = {1: "angry", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy", 6: "sad", 7: "surprise"}
JAFFE_CODES = {
    "AN": "angry",
    "DI": "disgust",
    "FE": "fear",
    "HA": "happy",
    "NE": "neutral",
    "SA": "sad",
    "SU": "surprise",
}


def face(h: int, w: int, key: str, color: bool = False) -> np.ndarray:
    """A deterministic face-like drawing on noise (grey HxW, or BGR HxWx3 if ``color``)."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    img = rng.integers(0, 90, (h, w), dtype=np.uint8)
    cx, cy = w // 2, h // 2
    cv2.ellipse(img, (cx, cy), (w // 3, h * 2 // 5), 0, 0, 360, int(rng.integers(150, 230)), -1)
    for dx in (-w // 7, w // 7):
        cv2.circle(img, (cx + dx, cy - h // 8), max(2, w // 20), 30, -1)
    cv2.ellipse(img, (cx, cy + h // 5), (w // 8, h // 16), 0, 0, 180, 40, 2)
    if not color:
        return img
    tint = rng.uniform(0.6, 1.0, 3)
    return np.clip(img[:, :, None] * tint, 0, 255).astype(np.uint8)


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cv2 could not write {path}")
    return path


def write_image(path: Path, size: tuple[int, int] = (30, 30)) -> Path:
    """One face-like PNG/JPEG at ``path`` (its content keyed by the path's name)."""
    return _write(path, face(*size, path.as_posix()))


def _sfew_folder(
    folder: Path, movies: tuple[str, ...], size: tuple[int, int], salt: int
) -> dict[str, int]:
    """1 or 2 images per (movie, class), named like SFEW: <Movie>_<frame>_<index>.png."""
    counts = dict.fromkeys((c.lower() for c in SFEW_CLASSES), 0)
    for m, movie in enumerate(movies):
        for c, cls in enumerate(SFEW_CLASSES):
            for k in range(1 + (m + c + salt) % 2):
                name = f"{movie}_{(m * 7 + c) * 1000 + 519240:09d}_{k + 5:08d}.png"
                _write(folder / cls / name, face(*size, f"{folder.name}/{name}", color=True))
                counts[cls.lower()] += 1
    return counts


def write_sfew(root: Path, size: tuple[int, int] = (56, 64)) -> dict[str, Any]:
    """SFEW 2.0: Train/Train_Aligned_Faces/<Class>/*.png and Val/Val_Aligned_Faces/..."""
    train = _sfew_folder(root / "Train" / "Train_Aligned_Faces", SFEW_TRAIN_MOVIES, size, 0)
    val = _sfew_folder(root / "Val" / "Val_Aligned_Faces", SFEW_VAL_MOVIES, size, 1)
    (root / "Train" / "Train_Aligned_Faces" / "Happy" / "Thumbs.db").write_bytes(b"\0" * 16)
    return {
        "size": size,
        "train": sum(train.values()),
        "val": sum(val.values()),
        "counts": {c: train[c] + val[c] for c in train},
        "movies": {"train": list(SFEW_TRAIN_MOVIES), "val": list(SFEW_VAL_MOVIES)},
    }


def write_sfew_subset(
    root: Path, size: tuple[int, int] = (56, 64), n_movies: int = 5
) -> dict[str, Any]:
    """The course subset: <root>/<Class>/*.png (SFEW.xlsx is written elsewhere)."""
    movies = (SFEW_TRAIN_MOVIES + SFEW_VAL_MOVIES)[:n_movies]
    counts = _sfew_folder(root, movies, size, 0)
    (root / "README.txt").write_text("not an image\n")
    return {"size": size, "n": sum(counts.values()), "counts": counts, "movies": list(movies)}


def write_fer2013(root: Path, n: int = 21, seed: int = 0) -> dict[str, Any]:
    """fer2013.csv: emotion, 2304 space-separated pixels, Usage (60/20/20 %)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
    labels = [i % 7 for i in range(n)]
    usage = [
        "Training" if i < 0.6 * n else "PublicTest" if i < 0.8 * n else "PrivateTest"
        for i in range(n)
    ]
    root.mkdir(parents=True, exist_ok=True)
    path = root / "fer2013.csv"
    pd.DataFrame(
        {
            "emotion": labels,
            "pixels": [" ".join(map(str, p.ravel())) for p in pixels],
            "Usage": usage,
        }
    ).to_csv(path, index=False)
    return {"path": path, "n": n, "labels": labels, "usage": usage, "pixels": pixels}


def write_ferplus(root: Path) -> dict[str, Any]:
    """fer2013.csv plus FER+'s fer2013new.csv with crafted vote rows (see FERPLUS_ROWS)."""
    fer = write_fer2013(root, n=len(FERPLUS_ROWS), seed=1)
    votes = [[v.get(c, 0) for c in FERPLUS_COLUMNS] for _, v, _ in FERPLUS_ROWS]
    table = pd.DataFrame(votes, columns=list(FERPLUS_COLUMNS))
    table.insert(0, "Image name", [name for name, _, _ in FERPLUS_ROWS])
    table.insert(0, "Usage", fer["usage"])
    path = root / "fer2013new.csv"
    table.to_csv(path, index=False)
    outcomes = [o for _, _, o in FERPLUS_ROWS]
    reasons = ("no_image", "not_face", "unknown", "no_majority")
    kept = [i for i, o in enumerate(outcomes) if o not in reasons]
    return {
        **fer,
        "new_path": path,
        "kept_rows": kept,
        "kept_labels": [outcomes[i] for i in kept],
        "excluded": len(outcomes) - len(kept),
        "excluded_by_reason": {r: outcomes.count(r) for r in reasons},
    }


def _ck_float(x: float) -> str:
    return f"   {x:.7e}"


def write_ckplus(
    root: Path, with_facs: bool = True, size: tuple[int, int] = (60, 80), copies: int = 1
) -> dict[str, Any]:
    """CK+: cohn-kanade-images, Emotion, FACS and Landmarks for CK_SEQUENCES.

    ``copies`` > 1 repeats the sequences under new subjects (S105, S205, ...) for tests
    that need enough subjects to split.
    """
    info: dict[str, Any] = {"size": size, "labels": {}, "peak": {}, "first": {}, "aus": {}}
    info["unlabelled"] = []
    sequences = [
        (f"S{int(s[1:]) + 100 * c:03d}", q, code, n, aus)
        for c in range(copies)
        for s, q, code, n, aus in CK_SEQUENCES
    ]
    for s, q, code, n_frames, aus in sequences:
        key = f"{s}/{q}"
        frames = [
            _write(
                root / "cohn-kanade-images" / s / q / f"{s}_{q}_{k:08d}.png",
                face(*size, f"{key}/{k}", color=(s == "S011")),
            )
            for k in range(1, n_frames + 1)
        ]
        stem = f"{s}_{q}_{n_frames:08d}"
        # 68 points on every frame spanning x 9.5..40.5, y 15..60.25: their box is (9, 15, 41, 61)
        pts = [(10 + (i * 13) % 31, 15 + (i * 7) % 46) for i in range(68)]
        pts[0], pts[1] = (9.5, 15.0), (40.5, 60.25)
        for k in range(1, n_frames + 1):
            landmarks = root / "Landmarks" / s / q / f"{s}_{q}_{k:08d}_landmarks.txt"
            landmarks.parent.mkdir(parents=True, exist_ok=True)
            landmarks.write_text("".join(f"{_ck_float(x)}{_ck_float(y)}\n" for x, y in pts))
        info["landmark_box"] = (9, 15, 41, 61)
        if code is None:
            info["unlabelled"].append(key)
            if s == "S005":
                (root / "Emotion" / s / q).mkdir(parents=True, exist_ok=True)
            continue
        emotion = root / "Emotion" / s / q / f"{stem}_emotion.txt"
        emotion.parent.mkdir(parents=True, exist_ok=True)
        emotion.write_text(f"{_ck_float(code)}\n")
        info["labels"][key] = CK_NAMES[code]
        info["peak"][key], info["first"][key] = frames[-1], frames[0]
        info["aus"][key] = aus if with_facs else None
        if with_facs and aus is not None:
            facs = root / "FACS" / s / q / f"{stem}_facs.txt"
            facs.parent.mkdir(parents=True, exist_ok=True)
            facs.write_text("".join(f"{_ck_float(a)}{_ck_float(v)}\n" for a, v in aus.items()))
    info["subjects"] = sorted({k.split("/")[0] for k in info["labels"]})
    info["n_labelled"] = len(info["labels"])
    return info


def write_jaffe(root: Path, subjects: tuple[str, ...] = ("KA", "KL", "NM")) -> dict[str, Any]:
    """JAFFE: <subject>.<code><take>.<id>.tiff, grey 256x256; two takes of HA and SU for KA."""
    counts = dict.fromkeys(JAFFE_CODES.values(), 0)
    files, next_id = [], 39
    for s in subjects:
        for code, name in JAFFE_CODES.items():
            takes = 2 if s == "KA" and code in ("HA", "SU") else 1
            for take in range(1, takes + 1):
                path = root / f"{s}.{code}{take}.{next_id}.tiff"
                files.append(_write(path, face(256, 256, path.name)))
                counts[name] += 1
                next_id += 1
    (root / "README").write_text("JAFFE\n")
    return {"n": len(files), "counts": counts, "subjects": list(subjects), "files": files}


def write_ckplus_jaffe(root: Path, copies: int = 1) -> dict[str, Any]:
    """Seed 002's join: <root>/ckplus (CK+ layout) and <root>/jaffe (JAFFE files)."""
    return {
        "ckplus": write_ckplus(root / "ckplus", copies=copies),
        "jaffe": write_jaffe(root / "jaffe"),
    }


def write_imagefolder(root: Path, size: tuple[int, int] = (50, 60)) -> dict[str, Any]:
    """<root>/<class>/*: png, jpg and bmp; ``p01_*`` files share group p01.

    Folder names as people write them (``calm`` = neutral, ``Happy``, ``sadness`` = sad);
    ``classes`` are the canonical names, sorted (= canonical order).
    """
    layout = {
        "calm": ("p01_a.png", "p02_a.jpg", "solo.png"),
        "Happy": ("p01_b.bmp", "p03_a.png"),
        "sadness": ("p02_b.png", "p03_b.jpeg", "lonely.bmp"),
    }
    canonical = {"calm": "neutral", "Happy": "happy", "sadness": "sad"}
    groups = {}
    for cls, names in layout.items():
        for name in names:
            _write(root / cls / name, face(*size, f"{cls}/{name}", color=name.endswith("png")))
            stem = Path(name).stem
            groups[f"{cls}/{name}"] = stem.split("_")[0] if "_" in stem else f"{cls}/{stem}"
    (root / "calm" / "notes.txt").write_text("ignored\n")
    return {
        "size": size,
        "classes": sorted(canonical.values()),
        "counts": {canonical[c]: len(v) for c, v in layout.items()},
        "groups": groups,
    }


# ------------------------------------------------------------------ copies that circulate

# FER2013 as image folders (Kaggle's msambare/fer2013): lower-case class folders, 48x48 grey
# JPEGs named after fer2013.csv's Usage; (class, train images, test images)
FER_FOLDER_COUNTS = (
    ("angry", 3, 2),
    ("disgust", 2, 1),
    ("fear", 3, 2),
    ("happy", 4, 2),
    ("neutral", 3, 2),
    ("sad", 3, 1),
    ("surprise", 2, 2),
)


def write_fer2013_folders(root: Path) -> dict[str, Any]:
    """train/<class>/Training_<id>.jpg and test/<class>/{PublicTest,PrivateTest}_<id>.jpg."""
    items: dict[str, tuple[str, str]] = {}  # relative path -> (class, split)
    next_id = 10118481
    for cls, n_train, n_test in FER_FOLDER_COUNTS:
        for split, n in (("train", n_train), ("test", n_test)):
            for k in range(n):
                usage = "Training" if split == "train" else ("PublicTest", "PrivateTest")[k % 2]
                rel = f"{split}/{cls}/{usage}_{next_id}.jpg"
                _write(root / rel, face(48, 48, rel))
                items[rel] = (cls, split)
                next_id += 7919
    return {
        "classes": [c for c, _, _ in FER_FOLDER_COUNTS],
        "items": items,
        "train": sum(n for _, n, _ in FER_FOLDER_COUNTS),
        "test": sum(n for _, _, n in FER_FOLDER_COUNTS),
    }


# CK+48 (the Kaggle re-pack of CK+): folder, canonical class, (subject, sequence, frames)
CK48_FOLDERS: tuple[tuple[str, str, tuple[tuple[str, str, int], ...]], ...] = (
    ("anger", "angry", (("S010", "004", 17), ("S022", "005", 20))),
    ("contempt", "contempt", (("S138", "008", 10),)),
    ("disgust", "disgust", (("S005", "001", 11), ("S011", "005", 9))),
    ("fear", "fear", (("S011", "003", 14),)),
    ("happy", "happy", (("S010", "006", 15), ("S022", "003", 30))),
    ("sadness", "sad", (("S011", "002", 12),)),
    ("surprise", "surprise", (("S005", "002", 8), ("S138", "001", 13))),
)


def write_ck48(root: Path) -> dict[str, Any]:
    """<root>/anger|contempt|...|sadness|surprise/S010_004_00000017.png: the last three frames
    of each sequence, 48x48 grey PNG."""
    labels: dict[str, str] = {}
    for folder, canonical, sequences in CK48_FOLDERS:
        for subject, seq, last in sequences:
            for frame in range(last - 2, last + 1):
                rel = f"{folder}/{subject}_{seq}_{frame:08d}.png"
                _write(root / rel, face(48, 48, rel))
                labels[rel] = canonical
    return {
        "labels": labels,
        "subjects": sorted({s for _, _, seqs in CK48_FOLDERS for s, _, _ in seqs}),
        "classes": [c for _, c, _ in CK48_FOLDERS],
    }


def write_split_tree(root: Path) -> dict[str, Any]:
    """Train/, Validation/, Test/ (capitalised) with Angry, Happiness, Neutral class folders;
    generic names (``img_0001.png``, ``0002.png``) carry no subject id."""
    items: dict[str, tuple[str, str]] = {}
    counts = {"Train": 3, "Validation": 2, "Test": 2}
    split_of = {"Train": "train", "Validation": "val", "Test": "test"}
    classes = {"Angry": "angry", "Happiness": "happy", "Neutral": "neutral"}
    for split, n in counts.items():
        for folder, cls in classes.items():
            for k in range(n):
                name = f"img_{k:04d}.png" if k % 2 == 0 else f"{k:04d}.png"
                rel = f"{split}/{folder}/{name}"
                _write(root / rel, face(40, 40, rel, color=True))
                items[rel] = (cls, split_of[split])
    return {"items": items, "classes": ["angry", "happy", "neutral"]}


# FER2013's label codes as numeric folders: the class_map a user passes for them
FER_NUMERIC_MAP = {str(i): c for i, c in enumerate(FER_CODES)}


def write_numeric_folders(root: Path, codes: tuple[int, ...] = (0, 3, 4, 6)) -> dict[str, Any]:
    """<root>/0/, 3/, 4/, 6/ (FER2013 codes angry, happy, sad, neutral), two images each."""
    labels: dict[str, str] = {}
    for code in codes:
        for k in range(2):
            rel = f"{code}/{k}.png"
            _write(root / rel, face(48, 48, rel))
            labels[rel] = FER_CODES[code]
    return {"labels": labels, "class_map": dict(FER_NUMERIC_MAP)}


# RAF-DB basic: label codes and (image name, code) rows in list_patition_label.txt's order
RAF_CODES = {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "angry", 7: "neutral"}
RAF_ROWS: tuple[tuple[str, int], ...] = (
    ("train_00001.jpg", 5),
    ("train_00002.jpg", 5),
    ("train_00003.jpg", 4),
    ("train_00004.jpg", 4),
    ("train_00005.jpg", 1),
    ("train_00006.jpg", 7),
    ("train_00007.jpg", 6),
    ("train_00008.jpg", 2),
    ("train_00009.jpg", 3),
    ("train_00010.jpg", 4),
    ("test_0001.jpg", 5),
    ("test_0002.jpg", 1),
    ("test_0003.jpg", 4),
    ("test_0004.jpg", 7),
    ("test_0005.jpg", 2),
    ("test_0006.jpg", 6),
    ("test_0007.jpg", 3),
)


def write_rafdb_basic(root: Path, aligned: bool = True, original: bool = True) -> dict[str, Any]:
    """RAF-DB basic: EmoLabel/list_patition_label.txt ("patition" as shipped), Image/aligned/
    <name>_aligned.jpg (100x100 colour) and/or Image/original/<name>.jpg (varied sizes)."""
    label_file = root / "EmoLabel" / "list_patition_label.txt"
    label_file.parent.mkdir(parents=True, exist_ok=True)
    label_file.write_text("".join(f"{name} {code}\n" for name, code in RAF_ROWS))
    written: dict[str, list[Path]] = {"aligned": [], "original": []}
    for k, (name, _) in enumerate(RAF_ROWS):
        stem = name.rsplit(".", 1)[0]
        if aligned:
            path = root / "Image" / "aligned" / f"{stem}_aligned.jpg"
            written["aligned"].append(_write(path, face(100, 100, path.name, color=True)))
        if original:
            path = root / "Image" / "original" / name
            h, w = 120 + 10 * (k % 5), 90 + 20 * (k % 3)
            written["original"].append(_write(path, face(h, w, path.name, color=True)))
    return {
        "label_file": label_file,
        "files": written,
        "labels": [RAF_CODES[c] for _, c in RAF_ROWS],
        "splits": [n.split("_", 1)[0] for n, _ in RAF_ROWS],
        "ids": [n.rsplit(".", 1)[0] for n, _ in RAF_ROWS],
    }


def write_rafdb_folders(root: Path, wrapper: str | None = "DATASET") -> dict[str, Any]:
    """RAF-DB's circulating folder form: [DATASET/]train/<1..7>/train_00001_aligned.jpg and
    test/<1..7>/test_0001_aligned.jpg (numeric folders in RAF-DB's own 1..7 meaning)."""
    base = root / wrapper if wrapper else root
    items: dict[str, tuple[str, str]] = {}
    for name, code in RAF_ROWS:
        split = name.split("_", 1)[0]
        rel = f"{split}/{code}/{name.rsplit('.', 1)[0]}_aligned.jpg"
        _write(base / rel, face(100, 100, rel, color=True))
        items[(f"{wrapper}/" if wrapper else "") + rel] = (RAF_CODES[code], split)
    return {"items": items, "base": base}
