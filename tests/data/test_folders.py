"""The copies of data sets that circulate: class folders with or without split folders
(FER2013 as images, CK+48, numeric folders), class names as people write them, and RAF-DB in
its official and folder forms; each written in its exact on-disk layout by ``fixtures``."""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import fer_ray.data
from fer_ray import config
from fer_ray.config import DataConfig
from fer_ray.data.datasets import create_source, read_manifest
from fer_ray.data.source import CANONICAL, EACH_IMAGE_OWN_GROUP, canonical_class
from fer_ray.data.splits import assert_disjoint, grouped_folds, holdout_and_folds
from fer_ray.errors import ConfigError, DataError
from tests.data import fixtures

SEVEN = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def _manifest(name: str, root: Path, **options) -> tuple[pd.DataFrame, list[str]]:
    m, names = read_manifest(DataConfig(name=name, root=str(root), **options))
    assert list(m.columns[:5]) == ["item", "label", "label_name", "group", "split"]
    assert m["label"].dtype == np.int64
    assert [names[i] for i in m["label"]] == m["label_name"].tolist()
    assert names == [c for c in CANONICAL if c in set(names)]  # canonical label order
    return m, names


def _rel(m: pd.DataFrame, root: Path) -> list[str]:
    return [Path(i).relative_to(root).as_posix() for i in m["item"]]


def _one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


# ------------------------------------------------------------------ class names


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("Anger", "angry"),
        ("angry", "angry"),
        ("DISGUSTED", "disgust"),
        ("fearful", "fear"),
        ("Afraid", "fear"),
        ("Happiness", "happy"),
        ("joy", "happy"),
        ("sadness", "sad"),
        ("Surprised", "surprise"),
        ("calm", "neutral"),
        ("Neutral", "neutral"),
        ("contempt", "contempt"),
        ("bored", None),
        ("0", None),
    ],
)
def test_class_names_people_use_map_to_the_vocabulary(written, canonical):
    assert canonical_class(written) == canonical


def test_a_class_map_comes_first_and_may_use_any_accepted_name():
    cmap = {"0": "anger", "Joie": "happy", "happy": "sad"}
    assert canonical_class("0", cmap) == "angry"
    assert canonical_class("joie", cmap) == "happy"  # keys ignore case too
    assert canonical_class("happy", cmap) == "sad"  # the map overrides the synonyms
    assert canonical_class("sadness", cmap) == "sad"


# ------------------------------------------------------------------ FER2013 as image folders


def test_fer2013_folders_fill_the_split_and_each_image_is_its_own_group(tmp_path):
    info = fixtures.write_fer2013_folders(tmp_path)
    m, names = _manifest("imagefolder", tmp_path)
    assert names == SEVEN == info["classes"]
    rel = _rel(m, tmp_path)
    assert sorted(rel) == sorted(info["items"])
    assert [(n, s) for n, s in zip(m["label_name"], m["split"])] == [info["items"][r] for r in rel]
    assert (m["split"] == "train").sum() == info["train"] and (m["split"] == "test").sum() == info[
        "test"
    ]
    # Training_/PrivateTest_ prefixes are usage words, not subjects: one group per image
    assert m["group"].is_unique and m["group"].tolist() == [r.rsplit(".", 1)[0] for r in rel]
    assert m.attrs["groups_note"] == EACH_IMAGE_OWN_GROUP
    assert create_source(DataConfig(name="imagefolder", root=str(tmp_path))).groups_note() == (
        EACH_IMAGE_OWN_GROUP
    )


def test_fer2013_folders_test_split_is_the_data_sets_own_test_part(tmp_path):
    fixtures.write_fer2013_folders(tmp_path)
    m, _ = _manifest("imagefolder", tmp_path)
    test, folds = holdout_and_folds(
        m["label"].to_numpy(),
        m["group"].to_numpy(),
        folds=2,
        seed=0,
        test_fraction=0.2,
        test_split="test",
        own_split=m["split"].to_numpy(),
    )
    assert test.tolist() == (m["split"] == "test").tolist()
    assert (folds[~test] >= 0).all() and (folds[test] == -1).all()


def test_a_lone_wrapper_folder_is_stepped_into(tmp_path):
    fixtures.write_fer2013_folders(tmp_path / "archive")
    m, names = _manifest("imagefolder", tmp_path)
    assert names == SEVEN and set(m["split"]) == {"train", "test"}
    assert m["group"].iloc[0].startswith("test/angry/")


def test_split_folders_in_any_case_and_validation(tmp_path):
    info = fixtures.write_split_tree(tmp_path)
    m, names = _manifest("imagefolder", tmp_path)
    assert names == info["classes"]
    rel = _rel(m, tmp_path)
    assert [(n, s) for n, s in zip(m["label_name"], m["split"])] == [info["items"][r] for r in rel]
    assert m["split"].value_counts().to_dict() == {"train": 9, "val": 6, "test": 6}
    assert m["group"].is_unique  # img_ is a generic prefix, not a subject
    assert m.attrs["groups_note"] == EACH_IMAGE_OWN_GROUP
    test, _ = holdout_and_folds(
        m["label"].to_numpy(),
        m["group"].to_numpy(),
        folds=2,
        seed=0,
        test_fraction=0.2,
        test_split="val",
        own_split=m["split"].to_numpy(),
    )
    assert test.sum() == 6


def test_fer2013_usage_folders_keep_the_csv_split_names(tmp_path):
    for rel in ("Training/happy/1.png", "PublicTest/happy/2.png", "PrivateTest/Sad/3.png"):
        fixtures.write_image(tmp_path / rel)
    m, names = _manifest("imagefolder", tmp_path)
    assert names == ["happy", "sad"]
    assert dict(zip(_rel(m, tmp_path), m["split"])) == {
        "Training/happy/1.png": "train",
        "PublicTest/happy/2.png": "publictest",
        "PrivateTest/Sad/3.png": "privatetest",
    }


def test_split_and_class_folders_mixed_is_an_error(tmp_path):
    fixtures.write_split_tree(tmp_path)
    shutil.copytree(tmp_path / "Train" / "Angry", tmp_path / "angry")
    with pytest.raises(DataError, match=r"mixes split folders .* with other folders \['angry'\]"):
        read_manifest(DataConfig(name="imagefolder", root=str(tmp_path)))


def test_a_split_folder_without_class_folders_is_an_error(tmp_path):
    fixtures.write_split_tree(tmp_path)
    shutil.rmtree(tmp_path / "Test")
    (tmp_path / "Test").mkdir()
    with pytest.raises(DataError, match=rf"split folder {tmp_path / 'Test'} has no class folders"):
        read_manifest(DataConfig(name="imagefolder", root=str(tmp_path)))


# ------------------------------------------------------------------ CK+48


def test_ck48_labels_are_canonical_and_groups_are_subjects(tmp_path):
    info = fixtures.write_ck48(tmp_path)
    m, names = _manifest("imagefolder", tmp_path)
    assert (
        names
        == info["classes"]
        == ["angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"]
    )
    assert dict(zip(_rel(m, tmp_path), m["label_name"])) == info["labels"]
    assert "anger" not in set(m["label_name"]) and "sadness" not in set(m["label_name"])
    assert sorted(m["group"].unique()) == info["subjects"] and (m["split"] == "").all()
    assert m.attrs["groups_note"] is None
    groups = m["group"].to_numpy()
    folds = grouped_folds(m["label"].to_numpy(), groups, k=2, seed=0)
    assert_disjoint(groups, folds == 0, folds == 1)


def test_ck48_and_ckplus_share_one_label_map(tmp_path):
    fixtures.write_ck48(tmp_path / "ck48")
    fixtures.write_ckplus(tmp_path / "ckplus")
    ck48, names48 = _manifest("imagefolder", tmp_path / "ck48")
    ckplus, names = _manifest("ckplus", tmp_path / "ckplus")
    assert names48 == names
    both = pd.concat([ck48, ckplus])
    assert both.groupby("label_name")["label"].nunique().eq(1).all()


def test_a_subject_prefix_is_kept_only_where_it_is_an_id(tmp_path):
    for rel in ("happy/S010_004_00000017.png", "happy/happy_001.png", "sad/img_3.png", "sad/x.png"):
        fixtures.write_image(tmp_path / rel)
    m, _ = _manifest("imagefolder", tmp_path)
    assert m["group"].tolist() == ["S010", "happy/happy_001", "sad/img_3", "sad/x"]
    assert m.attrs["groups_note"] == (
        "3 of 4 images have no subject id in their file name and are each their own group:"
        " subject independence cannot be checked for them"
    )


# ------------------------------------------------------------------ unknown names, class_map


def test_unknown_class_folder_is_one_line_naming_what_is_accepted(tmp_path):
    fixtures.write_imagefolder(tmp_path)
    fixtures.write_image(tmp_path / "bored" / "a.png")
    with pytest.raises(DataError) as e:
        read_manifest(DataConfig(name="imagefolder", root=str(tmp_path)))
    text = _one_line(e)
    assert text.startswith(f"{tmp_path / 'bored'}: class folder 'bored' is not a known class;")
    assert "anger/angry, contempt, disgust/disgusted, fear/fearful/afraid" in text
    assert "neutral/calm" in text and "data.class_map: {bored: <class>, ...}" in text


def test_numeric_folders_need_a_class_map(tmp_path):
    info = fixtures.write_numeric_folders(tmp_path)
    with pytest.raises(DataError, match=r"class folder '0' is not a known class;.*data\.class_map"):
        read_manifest(DataConfig(name="imagefolder", root=str(tmp_path)))
    m, names = _manifest("imagefolder", tmp_path, class_map=info["class_map"])
    assert names == ["angry", "happy", "neutral", "sad"]  # canonical order, not folder order
    assert dict(zip(_rel(m, tmp_path), m["label_name"])) == info["labels"]
    assert m.attrs["groups_note"] == EACH_IMAGE_OWN_GROUP


def test_class_map_from_yaml_with_int_keys(tmp_path):
    info = fixtures.write_numeric_folders(tmp_path)
    cfg = config.from_dict(
        {
            "data": {
                "name": "imagefolder",
                "root": str(tmp_path),
                "class_map": {0: "anger", 3: "joy", 4: "sad", 6: "calm"},
            }
        }
    )
    assert cfg.data.class_map == {"0": "anger", "3": "joy", "4": "sad", "6": "calm"}
    m, _ = read_manifest(cfg.data)
    assert dict(zip(_rel(m, tmp_path), m["label_name"])) == info["labels"]
    assert config.from_dict({}, ["data.class_map={0: angry}"]).data.class_map == {"0": "angry"}


def test_class_map_value_must_be_a_class(tmp_path):
    fixtures.write_numeric_folders(tmp_path)
    with pytest.raises(ConfigError, match=r"data\.class_map: '0' maps to 'rage', which is not a"):
        read_manifest(DataConfig(name="imagefolder", root=str(tmp_path), class_map={"0": "rage"}))


def test_two_folders_meaning_one_class_need_the_map_to_merge(tmp_path):
    fixtures.write_imagefolder(tmp_path)
    fixtures.write_image(tmp_path / "neutral" / "n.png")
    with pytest.raises(DataError, match=r"folders 'calm' and 'neutral' both mean 'neutral'"):
        read_manifest(DataConfig(name="imagefolder", root=str(tmp_path)))
    cmap = {"calm": "neutral", "neutral": "neutral"}
    m, _ = _manifest("imagefolder", tmp_path, class_map=cmap)
    assert (m["label_name"] == "neutral").sum() == 4


def test_a_key_for_another_data_set_is_refused(tmp_path):
    fixtures.write_sfew(tmp_path)
    with pytest.raises(ConfigError, match=r"data\.class_map does not apply to data set 'sfew'"):
        read_manifest(DataConfig(name="sfew", root=str(tmp_path), class_map={"0": "angry"}))
    with pytest.raises(ConfigError, match=r"data\.aligned does not apply to data set 'sfew'"):
        read_manifest(DataConfig(name="sfew", root=str(tmp_path), aligned=True))


# ------------------------------------------------------------------ RAF-DB


def test_rafdb_basic_prefers_aligned(tmp_path):
    info = fixtures.write_rafdb_basic(tmp_path)
    m, names = _manifest("rafdb", tmp_path)
    assert names == SEVEN
    assert m["item"].tolist() == [str(p) for p in info["files"]["aligned"]]
    assert m["item"].str.endswith("_aligned.jpg").all()
    assert m["label_name"].tolist() == info["labels"]
    assert m["split"].tolist() == info["splits"]
    assert m["group"].tolist() == info["ids"] and m["group"].is_unique
    assert m.attrs["groups_note"] == EACH_IMAGE_OWN_GROUP
    src = create_source(DataConfig(name="rafdb", root=str(tmp_path)))
    ((img, box),) = src.load([m["item"].iloc[3]])
    ref = cv2.cvtColor(cv2.imread(m["item"].iloc[3]), cv2.COLOR_BGR2RGB)
    assert box is None and img.shape == (100, 100, 3) and np.array_equal(img, ref)


def test_rafdb_basic_original(tmp_path):
    info = fixtures.write_rafdb_basic(tmp_path, aligned=False)
    m, _ = _manifest("rafdb", tmp_path)  # only original there: used without asking
    assert m["item"].tolist() == [str(p) for p in info["files"]["original"]]
    assert m["label_name"].tolist() == info["labels"] and m["group"].tolist() == info["ids"]
    with pytest.raises(DataError, match=r"no Image/aligned/ folder; expected RAF-DB basic layout"):
        read_manifest(DataConfig(name="rafdb", root=str(tmp_path), aligned=True))


def test_rafdb_basic_original_on_request_and_basic_subfolder(tmp_path):
    info = fixtures.write_rafdb_basic(tmp_path / "basic")
    m, _ = _manifest("rafdb", tmp_path, aligned=False)
    assert m["item"].tolist() == [str(p) for p in info["files"]["original"]]
    shapes = {
        img.shape
        for img, _ in create_source(DataConfig(name="rafdb", root=str(tmp_path))).load(m["item"])
    }
    assert len(shapes) > 1  # originals keep their own sizes
    m2, _ = _manifest("rafdb", tmp_path)
    assert m2["group"].tolist() == m["group"].tolist()  # one id per image in both sets


def test_rafdb_folder_form_numeric_folders(tmp_path):
    info = fixtures.write_rafdb_folders(tmp_path)
    m, names = _manifest("rafdb", tmp_path)
    assert names == SEVEN
    rel = _rel(m, tmp_path)
    assert sorted(rel) == sorted(info["items"])
    assert [(n, s) for n, s in zip(m["label_name"], m["split"])] == [info["items"][r] for r in rel]
    assert m["group"].is_unique and m.attrs["groups_note"] == EACH_IMAGE_OWN_GROUP
    with pytest.raises(ConfigError, match=r"data\.aligned=false: .* folder form"):
        read_manifest(DataConfig(name="rafdb", root=str(tmp_path), aligned=False))


def test_rafdb_folder_form_without_wrapper(tmp_path):
    info = fixtures.write_rafdb_folders(tmp_path, wrapper=None)
    m, _ = _manifest("rafdb", tmp_path)
    assert sorted(_rel(m, tmp_path)) == sorted(info["items"])
    fixtures.write_image(tmp_path / "train" / "8" / "x.jpg")
    with pytest.raises(
        DataError, match=r"class folder '8' is not a known class; expected RAF-DB's 1\.\.7"
    ):
        read_manifest(DataConfig(name="rafdb", root=str(tmp_path)))


@pytest.mark.parametrize("line", ["train_00003.jpg 8", "train_00003.jpg", "val_00003.jpg 4"])
def test_rafdb_bad_label_line_names_file_and_line(tmp_path, line):
    info = fixtures.write_rafdb_basic(tmp_path)
    lines = info["label_file"].read_text().splitlines()
    lines[2] = line
    info["label_file"].write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        read_manifest(DataConfig(name="rafdb", root=str(tmp_path)))
    assert _one_line(e).startswith(f"{info['label_file']}: line 3 is {line!r}; expected")
    assert "label 1..7 (1 surprise, 2 fear, 3 disgust, 4 happy, 5 sad, 6 angry, 7 neutral)" in str(
        e.value
    )


def test_rafdb_missing_images_and_label_file(tmp_path):
    info = fixtures.write_rafdb_basic(tmp_path, original=False)
    info["files"]["aligned"][4].unlink()
    with pytest.raises(
        DataError, match=r"1 of 17 images listed in .* are missing, e.g. train_00005_aligned\.jpg"
    ):
        read_manifest(DataConfig(name="rafdb", root=str(tmp_path)))
    info["label_file"].unlink()
    with pytest.raises(
        DataError, match=r"list_patition_label\.txt not found; expected RAF-DB basic"
    ):
        read_manifest(DataConfig(name="rafdb", root=str(tmp_path)))


def test_rafdb_empty_root(tmp_path):
    with pytest.raises(DataError, match=r"no images found under .*; expected RAF-DB basic layout"):
        read_manifest(DataConfig(name="rafdb", root=str(tmp_path)))


# ------------------------------------------------------------------ groups note, public API


@pytest.mark.parametrize(
    ("name", "writer", "note"),
    [
        ("fer2013", fixtures.write_fer2013, EACH_IMAGE_OWN_GROUP),
        ("ckplus", fixtures.write_ckplus, None),
        ("sfew", fixtures.write_sfew, None),
        ("jaffe", fixtures.write_jaffe, None),
    ],
)
def test_every_source_states_its_groups(tmp_path, name, writer, note):
    writer(tmp_path)
    src = create_source(DataConfig(name=name, root=str(tmp_path)))
    assert src.groups_note() == note
    m, _ = read_manifest(DataConfig(name=name, root=str(tmp_path)), src)
    assert m.attrs["groups_note"] == note


def test_load_manifest_keeps_the_groups_note_after_selecting_classes(tmp_path):
    fixtures.write_fer2013_folders(tmp_path)
    m = fer_ray.data.load_manifest("imagefolder", tmp_path, classes=["happy", "sad"])
    assert m.attrs["class_names"] == ["happy", "sad"]
    assert m.attrs["groups_note"] == EACH_IMAGE_OWN_GROUP
