"""``python -m fer_ray.data``: the layout check a user runs before a long job."""

import pandas as pd
import pytest

from fer_ray.data.__main__ import main
from tests.data import fixtures


def test_prints_counts_per_class_and_split_and_writes_the_manifest(tmp_path, capsys):
    info = fixtures.write_sfew(tmp_path / "sfew")
    out_csv = tmp_path / "m.csv"
    assert main(["sfew", str(tmp_path / "sfew"), "--read", "--csv", str(out_csv)]) == 0
    out = capsys.readouterr().out
    n = info["train"] + info["val"]
    assert out.startswith(f"{n} images, 7 classes, 8 groups")
    total = [line.split() for line in out.splitlines() if line.startswith("total")][0]
    assert total == ["total", str(info["train"]), str(info["val"]), str(n)]
    assert "unreadable images: 0" in out
    m = pd.read_csv(out_csv)
    assert len(m) == n and set(m["split"]) == {"train", "val"}


def test_lists_unreadable_images(tmp_path, capsys):
    fixtures.write_imagefolder(tmp_path)
    bad = tmp_path / "calm" / "broken.png"
    bad.write_bytes(b"not a png")
    assert main(["imagefolder", str(tmp_path), "--read"]) == 0
    assert f"unreadable images: 1\n  {bad}" in capsys.readouterr().out


def test_bad_layout_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["jaffe", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("data error: data.root") and err.count("\n") == 1


EACH = "groups note: each image is its own group: subject independence cannot be checked"
LAYOUTS = [
    # (id, writer, argv after NAME ROOT, name, first line, lines expected in the output)
    (
        "fer2013_folders",
        fixtures.write_fer2013_folders,
        "imagefolder",
        [],
        "32 images, 7 classes, 32 groups",
        [
            "classes (label order): angry, disgust, fear, happy, neutral, sad, surprise",
            "splits: test, train",
            EACH,
        ],
    ),
    (
        "ck48",
        fixtures.write_ck48,
        "imagefolder",
        [],
        "33 images, 7 classes, 5 groups",
        [
            "classes (label order): angry, contempt, disgust, fear, happy, sad, surprise",
            "splits: none",
            "groups: subjects (or movies) of the data set",
        ],
    ),
    (
        "split_tree_validation",
        fixtures.write_split_tree,
        "imagefolder",
        [],
        "21 images, 3 classes, 21 groups",
        ["classes (label order): angry, happy, neutral", "splits: test, train, val", EACH],
    ),
    (
        "numeric_class_map",
        fixtures.write_numeric_folders,
        "imagefolder",
        ["--class-map", "0=angry", "3=happy", "4=sad", "6=neutral"],
        "8 images, 4 classes, 8 groups",
        ["classes (label order): angry, happy, neutral, sad", "splits: none", EACH],
    ),
    (
        "rafdb_basic_aligned",
        fixtures.write_rafdb_basic,
        "rafdb",
        [],
        "17 images, 7 classes, 17 groups",
        [
            "classes (label order): angry, disgust, fear, happy, neutral, sad, surprise",
            "splits: test, train",
            EACH,
        ],
    ),
    (
        "rafdb_basic_original",
        fixtures.write_rafdb_basic,
        "rafdb",
        ["--original"],
        "17 images, 7 classes, 17 groups",
        ["splits: test, train", EACH],
    ),
    (
        "rafdb_folders",
        fixtures.write_rafdb_folders,
        "rafdb",
        [],
        "17 images, 7 classes, 17 groups",
        ["splits: test, train", EACH],
    ),
]


@pytest.mark.parametrize(
    ("writer", "name", "extra", "first", "expected"),
    [case[1:] for case in LAYOUTS],
    ids=[case[0] for case in LAYOUTS],
)
def test_each_circulating_layout_is_reported(
    tmp_path, capsys, writer, name, extra, first, expected
):
    writer(tmp_path)
    assert main([name, str(tmp_path), *extra, "--read"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(first)
    for line in expected:
        assert line in out, line
    assert "unreadable images: 0" in out


def test_unreadable_files_are_listed_for_a_split_tree(tmp_path, capsys):
    fixtures.write_fer2013_folders(tmp_path)
    bad = tmp_path / "test" / "happy" / "PrivateTest_99.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    assert main(["imagefolder", str(tmp_path), "--read"]) == 0
    assert f"unreadable images: 1\n  {bad}" in capsys.readouterr().out


def test_without_read_says_unreadable_files_were_not_checked(tmp_path, capsys):
    fixtures.write_ck48(tmp_path)
    assert main(["imagefolder", str(tmp_path)]) == 0
    assert "unreadable images: not checked" in capsys.readouterr().out


def test_unknown_class_name_is_one_line_and_exit_2(tmp_path, capsys):
    fixtures.write_numeric_folders(tmp_path)
    assert main(["imagefolder", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"data error: {tmp_path / '0'}: class folder '0' is not a known class")
    assert "data.class_map: {0: <class>, ...}" in err and err.count("\n") == 1


def test_bad_class_map_argument(tmp_path, capsys):
    fixtures.write_numeric_folders(tmp_path)
    assert main(["imagefolder", str(tmp_path), "--class-map", "0:angry"]) == 2
    assert "--class-map '0:angry': expected FOLDER=CLASS" in capsys.readouterr().err
