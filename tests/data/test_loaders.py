import os
import pickle
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import fer_ray.data
from fer_ray.config import DataConfig
from fer_ray.data.datasets import create_source, read_manifest
from fer_ray.data.splits import assert_disjoint, grouped_folds
from fer_ray.errors import DataError
from tests.data import fixtures

ROOT = Path(__file__).resolve().parents[2]
SEVEN = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
EIGHT = ["angry", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def _manifest(name: str, root: Path, **options) -> tuple[pd.DataFrame, list[str]]:
    m, names = read_manifest(DataConfig(name=name, root=str(root), **options))
    assert list(m.columns[:5]) == ["item", "label", "label_name", "group", "split"]
    assert m["label"].dtype == np.int64
    assert m["label"].between(0, len(names) - 1).all()
    assert [names[i] for i in m["label"]] == m["label_name"].tolist()
    return m, names


def _counts(m: pd.DataFrame) -> dict[str, int]:
    return {k: int(v) for k, v in m["label_name"].value_counts().items()}


def _load(name: str, root: Path, items, **options) -> list:
    return create_source(DataConfig(name=name, root=str(root), **options)).load(list(items))


# ------------------------------------------------------------------ SFEW


def test_sfew_manifest_movies_splits_and_counts(tmp_path):
    info = fixtures.write_sfew(tmp_path)
    m, names = _manifest("sfew", tmp_path)
    assert names == SEVEN
    assert len(m) == info["train"] + info["val"]
    assert _counts(m) == info["counts"]
    assert (m["split"] == "train").sum() == info["train"]
    assert (m["split"] == "val").sum() == info["val"]
    assert sorted(m.loc[m["split"] == "train", "group"].unique()) == info["movies"]["train"]
    assert sorted(m.loc[m["split"] == "val", "group"].unique()) == info["movies"]["val"]
    first = Path(m["item"].iloc[0])
    assert first.is_absolute() and first.parent.name == "Angry" and m["group"].iloc[0] == "Airheads"
    assert m["item"].tolist() == sorted(m["item"])  # Train < Val, then class, then file
    assert not m["item"].str.endswith("Thumbs.db").any()


def test_sfew_grouped_folds_never_split_a_movie(tmp_path):
    fixtures.write_sfew(tmp_path)
    m, _ = _manifest("sfew", tmp_path)
    groups = m["group"].to_numpy()
    folds = grouped_folds(m["label"].to_numpy(), groups, k=4, seed=0)
    for f in range(4):
        assert_disjoint(groups, folds == f, folds != f)
    assert all(len(set(folds[groups == g])) == 1 for g in set(groups))


def test_sfew_load_equals_cv2_read(tmp_path):
    info = fixtures.write_sfew(tmp_path)
    m, _ = _manifest("sfew", tmp_path)
    items = m["item"].iloc[[0, 17, len(m) - 1]].tolist()
    for item, (img, box) in zip(items, _load("sfew", tmp_path, items)):
        assert box is None
        assert img.dtype == np.uint8 and img.shape == (*info["size"], 3)
        assert np.array_equal(img, cv2.cvtColor(cv2.imread(item), cv2.COLOR_BGR2RGB))


def test_sfew_layout_errors(tmp_path):
    fixtures.write_sfew(tmp_path)
    os.rename(tmp_path / "Val" / "Val_Aligned_Faces", tmp_path / "Val" / "Aligned")
    with pytest.raises(DataError, match=r"Val/Val_Aligned_Faces not found; expected SFEW 2\.0"):
        read_manifest(DataConfig(name="sfew", root=str(tmp_path)))
    os.rename(tmp_path / "Val" / "Aligned", tmp_path / "Val" / "Val_Aligned_Faces")
    os.rename(
        tmp_path / "Train" / "Train_Aligned_Faces" / "Happy",
        tmp_path / "Train" / "Train_Aligned_Faces" / "Hapy",
    )
    with pytest.raises(DataError, match=r"Train_Aligned_Faces/Hapy: unknown class folder .*Happy"):
        read_manifest(DataConfig(name="sfew", root=str(tmp_path)))


def test_sfew_without_images_is_an_error(tmp_path):
    for part in ("Train/Train_Aligned_Faces/Angry", "Val/Val_Aligned_Faces/Sad"):
        (tmp_path / part).mkdir(parents=True)
    with pytest.raises(DataError, match=f"no images found under {tmp_path}"):
        read_manifest(DataConfig(name="sfew", root=str(tmp_path)))


def test_sfew_subset_manifest_and_unknown_folder(tmp_path):
    info = fixtures.write_sfew_subset(tmp_path)
    m, names = _manifest("sfew_subset", tmp_path)
    assert names == SEVEN and len(m) == info["n"] and _counts(m) == info["counts"]
    assert (m["split"] == "").all() and sorted(m["group"].unique()) == info["movies"]
    (tmp_path / "Contempt").mkdir()
    with pytest.raises(DataError, match=r"Contempt: unknown class folder 'Contempt'.*Angry"):
        read_manifest(DataConfig(name="sfew_subset", root=str(tmp_path)))


def test_sfew_subset_needs_class_folders(tmp_path):
    (tmp_path / "SFEW.xlsx").write_bytes(b"x")
    with pytest.raises(DataError, match=f"{tmp_path} has no class folders"):
        read_manifest(DataConfig(name="sfew_subset", root=str(tmp_path)))


def test_unreadable_image_loads_as_none(tmp_path):
    fixtures.write_sfew_subset(tmp_path)
    bad = sorted((tmp_path / "Sad").glob("Juno_*.png"))[0]
    bad.write_bytes(b"\x89PNG garbage, not an image")
    m, _ = _manifest("sfew_subset", tmp_path)
    assert str(bad) in set(m["item"])
    good = m["item"].iloc[0]
    (img_bad, box_bad), (img_good, _) = _load("sfew_subset", tmp_path, [str(bad), good])
    assert img_bad is None and box_bad is None
    assert img_good.shape == (56, 64, 3)


# ------------------------------------------------------------------ FER2013 / FER+


def test_fer2013_manifest_and_pixels(tmp_path):
    info = fixtures.write_fer2013(tmp_path, n=21)
    m, names = _manifest("fer2013", tmp_path)
    assert names == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert m["item"].tolist() == [f"{info['path']}#{i}" for i in range(21)]
    assert m["label"].tolist() == info["labels"]
    expected_split = {"Training": "train", "PublicTest": "publictest", "PrivateTest": "privatetest"}
    assert m["split"].tolist() == [expected_split[u] for u in info["usage"]]
    assert m["group"].nunique() == 21
    loaded = _load("fer2013", tmp_path, m["item"].iloc[[0, 5, 20]])
    for row, (img, box) in zip([0, 5, 20], loaded):
        assert box is None and img.dtype == np.uint8 and img.shape == (48, 48, 3)
        for c in range(3):
            assert np.array_equal(img[:, :, c], info["pixels"][row])


def test_fer2013_without_disgust_renumbers(tmp_path):
    info = fixtures.write_fer2013(tmp_path, n=21)
    six = ["angry", "fear", "happy", "sad", "surprise", "neutral"]
    m, names = _manifest("fer2013", tmp_path, classes=six)
    assert names == six and sorted(m["label"].unique()) == [0, 1, 2, 3, 4, 5]
    assert len(m) == 21 - info["labels"].count(1)
    assert (m.loc[m["label_name"] == "neutral", "label"] == 5).all()
    assert (m.loc[m["label_name"] == "fear", "label"] == 1).all()


def test_public_load_manifest(tmp_path):
    fixtures.write_fer2013(tmp_path, n=14)
    m = fer_ray.data.load_manifest("fer2013", tmp_path, classes=["happy", "sad"])
    assert m.attrs["class_names"] == ["happy", "sad"]
    assert len(m) == 4 and m["label"].tolist() == [0, 1, 0, 1]
    with pytest.raises(DataError, match="unknown data options \\['clases'\\]"):
        fer_ray.data.load_manifest("fer2013", tmp_path, clases=["happy"])


def _rewrite_csv(path: Path, edit) -> None:
    """Apply ``edit`` (in place, or returning a new frame) to a CSV on disk."""
    df = pd.read_csv(path, dtype=str)
    out = edit(df)
    (df if out is None else out).to_csv(path, index=False)


def test_fer2013_bad_pixel_row_names_file_row_and_length(tmp_path):
    info = fixtures.write_fer2013(tmp_path, n=6)

    def drop_one(df):
        df.loc[3, "pixels"] = df.loc[3, "pixels"].rsplit(" ", 1)[0]

    _rewrite_csv(info["path"], drop_one)
    with pytest.raises(
        DataError, match=r"fer2013\.csv: row 3 \(line 5\) has 2303 pixel values, expected 2304"
    ):
        read_manifest(DataConfig(name="fer2013", root=str(tmp_path)))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda df: df.drop(columns=["pixels"]), r"missing columns \['pixels'\]"),
        (lambda df: df.loc.__setitem__((2, "emotion"), "7"), r"row 2 \(line 4\) has emotion '7'"),
        (lambda df: df.loc.__setitem__((1, "Usage"), "Test"), r"row 1 \(line 3\) has Usage 'Test'"),
    ],
)
def test_fer2013_bad_csv(tmp_path, edit, message):
    info = fixtures.write_fer2013(tmp_path, n=6)
    _rewrite_csv(info["path"], edit)
    with pytest.raises(DataError, match=rf"{info['path']}: .*{message}"):
        read_manifest(DataConfig(name="fer2013", root=str(tmp_path)))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda df: df.loc.__setitem__((7, "emotion"), "9"), r"row 7 \(line 9\) has emotion '9'"),
        (lambda df: df.loc.__setitem__((8, "Usage"), "x"), r"row 8 \(line 10\) has Usage 'x'"),
        (lambda df: df.loc.__setitem__((10, "pixels"), "1 2"), r"row 10 \(line 12\) has 2 pixel"),
    ],
)
def test_fer2013_is_read_in_chunks_with_the_files_row_numbers(tmp_path, monkeypatch, edit, message):
    """The CSV is checked a chunk at a time (the driver never holds every pixel string): the
    manifest is the one of a single read, and a bad row past the first chunk is named by its
    row in the file."""
    from fer_ray.data.loaders import fer2013

    info = fixtures.write_fer2013(tmp_path, n=14)
    whole = read_manifest(DataConfig(name="fer2013", root=str(tmp_path)))[0]
    monkeypatch.setattr(fer2013, "CSV_CHUNK_ROWS", 3)
    chunked = read_manifest(DataConfig(name="fer2013", root=str(tmp_path)))[0]
    pd.testing.assert_frame_equal(chunked, whole)
    assert len(whole) == 14 and whole["split"].tolist()[-1] == "privatetest"
    _rewrite_csv(info["path"], edit)
    with pytest.raises(DataError, match=rf"{info['path']}: {message}"):
        read_manifest(DataConfig(name="fer2013", root=str(tmp_path)))


def test_fer2013_missing_csv(tmp_path):
    with pytest.raises(DataError, match=rf"{tmp_path / 'fer2013.csv'} not found"):
        read_manifest(DataConfig(name="fer2013", root=str(tmp_path)))


def test_fer2013_undecodable_row_loads_as_none(tmp_path):
    info = fixtures.write_fer2013(tmp_path, n=4)

    def spoil(df):
        df.loc[2, "pixels"] = "x" + df.loc[2, "pixels"][1:]
        df.loc[3, "pixels"] = "256" + df.loc[3, "pixels"][df.loc[3, "pixels"].index(" ") :]

    _rewrite_csv(info["path"], spoil)
    m, _ = _manifest("fer2013", tmp_path)  # right length: the manifest accepts it
    loaded = _load("fer2013", tmp_path, m["item"])
    assert [img is None for img, _ in loaded] == [False, False, True, True]


def test_ferplus_majority_labels_and_excluded_count(tmp_path):
    info = fixtures.write_ferplus(tmp_path)
    m, names = _manifest("ferplus", tmp_path)
    assert names == ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"]
    assert m["item"].tolist() == [f"{info['path']}#{i}" for i in info["kept_rows"]]
    assert m["label_name"].tolist() == info["kept_labels"]
    assert m.attrs["excluded"] == info["excluded"] == 5
    assert m.attrs["excluded_by_reason"] == info["excluded_by_reason"]
    assert m["split"].tolist()[:2] == ["train", "train"] and m["split"].iloc[-1] == "privatetest"
    ((img, _),) = _load("ferplus", tmp_path, [m["item"].iloc[2]])
    assert np.array_equal(img[:, :, 1], info["pixels"][info["kept_rows"][2]])


def test_ferplus_public_api_keeps_excluded_count(tmp_path):
    fixtures.write_ferplus(tmp_path)
    m = fer_ray.data.load_manifest("ferplus", tmp_path, classes=["happy", "contempt"])
    assert m["label_name"].tolist() == ["happy", "contempt", "happy"]
    assert m.attrs["excluded"] == 5


def test_ferplus_errors(tmp_path):
    info = fixtures.write_ferplus(tmp_path)
    _rewrite_csv(info["new_path"], lambda df: df.drop(columns=["contempt", "NF"]))
    with pytest.raises(DataError, match=r"fer2013new\.csv: missing columns \['contempt', 'NF'\]"):
        read_manifest(DataConfig(name="ferplus", root=str(tmp_path)))
    fixtures.write_ferplus(tmp_path)
    _rewrite_csv(info["new_path"], lambda df: df.drop(index=[13]))
    with pytest.raises(DataError, match=r"fer2013new\.csv has 13 rows but .*fer2013\.csv has 14"):
        read_manifest(DataConfig(name="ferplus", root=str(tmp_path)))
    info["new_path"].unlink()
    with pytest.raises(DataError, match=r"fer2013new\.csv not found"):
        read_manifest(DataConfig(name="ferplus", root=str(tmp_path)))


# ------------------------------------------------------------------ CK+ / JAFFE


def test_ckplus_peak_frames_aus_and_unlabelled_ignored(tmp_path):
    info = fixtures.write_ckplus(tmp_path)
    m, names = _manifest("ckplus", tmp_path)
    assert names == [c for c in EIGHT if c != "neutral"]
    assert len(m) == info["n_labelled"] == 7
    assert m["item"].tolist() == [str(p) for p in info["peak"].values()]
    assert m["label_name"].tolist() == list(info["labels"].values())
    assert sorted(m["group"].unique()) == info["subjects"] and (m["split"] == "").all()
    assert not m["item"].str.contains("S022/002|S005/002").any()
    au_cols = [c for c in m.columns if c.startswith("AU")]
    assert au_cols == [f"AU{n}" for n in (1, 2, 4, 5, 6, 7, 9, 12, 14, 17, 20, 23, 26)]
    for key, aus in info["aus"].items():
        row = m.loc[m["item"] == str(info["peak"][key])].iloc[0]
        if aus is None:
            assert row[au_cols].isna().all(), key
        else:
            assert {c: row[c] for c in au_cols} == {c: aus.get(int(c[2:]), 0.0) for c in au_cols}


def test_ckplus_neutral_frames_add_first_frames(tmp_path):
    info = fixtures.write_ckplus(tmp_path)
    m, names = _manifest("ckplus", tmp_path, neutral_frames=True)
    assert names == EIGHT and len(m) == 14
    neutral = m[m["label_name"] == "neutral"]
    assert neutral["item"].tolist() == [str(p) for p in info["first"].values()]
    assert neutral["group"].tolist() == [k.split("/")[0] for k in info["first"]]
    assert neutral[[c for c in m.columns if c.startswith("AU")]].isna().all().all()
    img, _ = _load("ckplus", tmp_path, [neutral["item"].iloc[0]])[0]
    written = cv2.imread(neutral["item"].iloc[0], cv2.IMREAD_GRAYSCALE)
    assert img.shape == (60, 80, 3) and all(np.array_equal(img[:, :, c], written) for c in range(3))


def test_ckplus_frames_carry_their_landmark_box(tmp_path):
    info = fixtures.write_ckplus(tmp_path)
    m, _ = _manifest("ckplus", tmp_path, neutral_frames=True)
    loaded = _load("ckplus", tmp_path, m["item"].tolist())
    assert [box for _, box in loaded] == [info["landmark_box"]] * len(m)
    # a frame whose landmarks file is missing has no ground-truth box (detector falls back)
    first = Path(m["item"].iloc[0])
    lm = tmp_path / "Landmarks" / first.parent.parent.name / first.parent.name
    (lm / f"{first.stem}_landmarks.txt").unlink()
    assert _load("ckplus", tmp_path, [str(first)])[0][1] is None


def test_ckplus_without_facs_has_no_au_columns(tmp_path):
    fixtures.write_ckplus(tmp_path, with_facs=False)
    m, _ = _manifest("ckplus", tmp_path)
    assert list(m.columns) == ["item", "label", "label_name", "group", "split"] and len(m) == 7


@pytest.mark.parametrize("text", ["8.0000000e+00", "0.0000000e+00", "happy", "2.5", ""])
def test_ckplus_bad_emotion_file_is_named(tmp_path, text):
    fixtures.write_ckplus(tmp_path)
    path = tmp_path / "Emotion" / "S011" / "003" / "S011_003_00000004_emotion.txt"
    assert path.is_file()
    path.write_text(f"   {text}\n")
    with pytest.raises(DataError, match=rf"{path}: emotion label .*expected one of 1\.\.7"):
        read_manifest(DataConfig(name="ckplus", root=str(tmp_path)))


def test_ckplus_layout_and_facs_errors(tmp_path):
    fixtures.write_ckplus(tmp_path)
    facs = tmp_path / "FACS" / "S005" / "001" / "S005_001_00000004_facs.txt"
    facs.write_text("   9.0000000e+00   4.0000000e+00\n   oops\n")
    with pytest.raises(DataError, match=rf"{facs}: line 2 is 'oops'; expected 'AU intensity'"):
        read_manifest(DataConfig(name="ckplus", root=str(tmp_path)))
    os.rename(tmp_path / "Emotion", tmp_path / "Emotions")
    with pytest.raises(DataError, match=rf"{tmp_path / 'Emotion'} not found; expected CK\+ layout"):
        read_manifest(DataConfig(name="ckplus", root=str(tmp_path)))


def test_jaffe_manifest_and_grey_tiff(tmp_path):
    info = fixtures.write_jaffe(tmp_path)
    m, names = _manifest("jaffe", tmp_path)
    assert names == SEVEN and len(m) == info["n"] == 23 and _counts(m) == info["counts"]
    assert sorted(m["group"].unique()) == info["subjects"] and (m["split"] == "").all()
    row = m[m["item"].str.endswith("KL.SA1.53.tiff")].iloc[0]
    assert (row["label_name"], row["group"]) == ("sad", "KL")
    ((img, box),) = _load("jaffe", tmp_path, [row["item"]])
    written = fixtures.face(256, 256, "KL.SA1.53.tiff")
    assert box is None and img.dtype == np.uint8 and img.shape == (256, 256, 3)
    assert all(np.array_equal(img[:, :, c], written) for c in range(3))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("KA-AN1.39.tiff", "does not parse; expected"),
        ("KA.XX1.99.tiff", "unknown JAFFE expression code 'XX'; expected one of AN DI"),
    ],
)
def test_jaffe_bad_names(tmp_path, name, message):
    fixtures.write_jaffe(tmp_path)
    cv2.imwrite(str(tmp_path / name), np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=rf"{tmp_path / name}: .*{message}"):
        read_manifest(DataConfig(name="jaffe", root=str(tmp_path)))


def test_jaffe_empty_folder(tmp_path):
    (tmp_path / "README").write_text("x")
    with pytest.raises(DataError, match=rf"no images found under {tmp_path}; expected JAFFE"):
        read_manifest(DataConfig(name="jaffe", root=str(tmp_path)))


def test_ckplus_jaffe_one_label_map_and_disjoint_groups(tmp_path):
    info = fixtures.write_ckplus_jaffe(tmp_path)
    m, names = _manifest("ckplus_jaffe", tmp_path)
    assert names == EIGHT
    assert len(m) == info["ckplus"]["n_labelled"] + info["jaffe"]["n"]
    ck, jaffe = m[m["group"].str.startswith("ck:")], m[m["group"].str.startswith("jaffe:")]
    assert len(ck) + len(jaffe) == len(m)
    assert sorted(ck["group"].unique()) == [f"ck:{s}" for s in info["ckplus"]["subjects"]]
    assert sorted(jaffe["group"].unique()) == [f"jaffe:{s}" for s in info["jaffe"]["subjects"]]
    label_map = m.groupby("label_name")["label"].unique()
    assert {k: list(v) for k, v in label_map.items()} == {
        c: [i] for i, c in enumerate(EIGHT) if c in label_map
    }
    assert set(ck["label_name"]) >= {"contempt"} and set(jaffe["label_name"]) >= {"neutral"}
    assert jaffe[[c for c in m.columns if c.startswith("AU")]].isna().all().all()
    os.rename(tmp_path / "jaffe", tmp_path / "jaffe_images")
    with pytest.raises(
        DataError, match=rf"{tmp_path / 'jaffe'} not found; expected <root>/ckplus/"
    ):
        read_manifest(DataConfig(name="ckplus_jaffe", root=str(tmp_path)))


# ------------------------------------------------------------------ image folder and common


def test_imagefolder_classes_groups_and_formats(tmp_path):
    info = fixtures.write_imagefolder(tmp_path)
    m, names = _manifest("imagefolder", tmp_path)
    assert names == info["classes"] and _counts(m) == info["counts"]
    rel = [Path(i).relative_to(tmp_path).as_posix() for i in m["item"]]
    assert dict(zip(rel, m["group"])) == info["groups"]
    loaded = _load("imagefolder", tmp_path, m["item"])
    assert all(img is not None and img.shape == (50, 60, 3) for img, _ in loaded)
    jpg = rel.index("calm/p02_a.jpg")
    ref = cv2.cvtColor(cv2.imread(m["item"].iloc[jpg]), cv2.COLOR_BGR2RGB)
    assert np.array_equal(loaded[jpg][0], ref)


def test_imagefolder_empty_class_folder(tmp_path):
    fixtures.write_imagefolder(tmp_path)
    (tmp_path / "surprise").mkdir()
    with pytest.raises(DataError, match=rf"class folder {tmp_path / 'surprise'} has no images"):
        read_manifest(DataConfig(name="imagefolder", root=str(tmp_path)))


NAMES = [
    "sfew",
    "sfew_subset",
    "fer2013",
    "ferplus",
    "ckplus",
    "jaffe",
    "ckplus_jaffe",
    "imagefolder",
    "rafdb",
]


@pytest.mark.parametrize("name", NAMES)
def test_root_must_be_an_existing_directory(tmp_path, name):
    with pytest.raises(DataError, match="data.root is not set"):
        create_source(DataConfig(name=name))
    with pytest.raises(DataError, match=rf"data.root {tmp_path / 'nope'} does not exist"):
        create_source(DataConfig(name=name, root=str(tmp_path / "nope")))
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match=rf"data.root {tmp_path / 'file'} is not a directory"):
        create_source(DataConfig(name=name, root=str(tmp_path / "file")))


@pytest.mark.parametrize(
    ("name", "writer", "target"),
    [
        ("sfew_subset", fixtures.write_sfew_subset, "Fear/Hangover_*.png"),
        ("fer2013", fixtures.write_fer2013, "fer2013.csv"),
        ("jaffe", fixtures.write_jaffe, "NM.HA1.*.tiff"),
    ],
)
def test_identity_tracks_files_and_source_pickles_small(tmp_path, name, writer, target):
    writer(tmp_path)
    cfg = DataConfig(name=name, root=str(tmp_path))
    src = create_source(cfg)
    m, _ = read_manifest(cfg)
    before = src.identity()
    assert before == create_source(cfg).identity() and before["source"] == name
    assert before["root"] == str(tmp_path.resolve())
    assert (
        create_source(DataConfig(name=name, root=str(tmp_path), classes=["happy"])).identity()
        != before
    )
    items = m["item"].iloc[:3].tolist()
    first = src.load(items)
    blob = pickle.dumps(src)
    assert len(blob) < 2000
    again = pickle.loads(blob).load(items)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again))
    (path,) = tmp_path.glob(target)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert src.identity() != before


def test_the_registry_lists_every_loader_without_importing_any():
    code = (
        "import sys; from fer_ray.data.datasets import DATASETS; print(sorted(DATASETS.names()));"
        "print([m for m in sys.modules if m.startswith('fer_ray.data.loaders.') or m == 'cv2'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    names, imported = out.stdout.strip().splitlines()
    assert names == str(sorted([*NAMES, "synthetic"]))
    assert imported == "[]"  # a loader (and cv2) is imported only when a run uses it


def test_a_source_lists_its_files_once_and_ships_without_the_table(tmp_path, monkeypatch):
    fixtures.write_imagefolder(tmp_path)
    cfg = DataConfig(name="imagefolder", root=str(tmp_path))
    src = create_source(cfg)
    calls = []
    build = type(src)._build_manifest
    monkeypatch.setattr(type(src), "_build_manifest", lambda self: calls.append(1) or build(self))
    m, _ = read_manifest(cfg, src)
    src.identity()
    m.loc[0, "label_name"] = "changed"  # callers get copies
    assert len(calls) == 1 and src.manifest()["label_name"].iloc[0] != "changed"
    assert pickle.loads(pickle.dumps(src))._manifest is None
