"""``python -m fer_ray.data``: the layout check a user runs before a long job."""

import pandas as pd

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
