"""The newfaces stage's pieces that need no Ray session: data set B's source, the bundle of
the two data sets under one class map, and the config errors (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

from fer_ray import config
from fer_ray.data import synthetic
from fer_ray.errors import ConfigError, StageError
from fer_ray.recipes.newfaces import stage as nf


def test_styled_source_renders_the_style_with_its_own_items_and_groups() -> None:
    src = nf.StyledSyntheticSource(3, 1, 48, 1005, "studio")
    m = src.manifest()
    assert m["item"].iloc[0] == "synthetic-studio:0" and m["group"].iloc[-1] == "studio:s0002"
    assert src.identity()["style"] == "studio" and src.identity()["seed"] == 1005
    (img, box), *_ = src.load(["synthetic-studio:4"])
    want, _, boxes = synthetic.render_items(
        [4], n_subjects=3, per_class=1, image_size=48, seed=1005,
        style=synthetic.STYLES.get("studio"),
    )  # fmt: skip
    np.testing.assert_array_equal(img, want[0])
    assert box == tuple(int(v) for v in boxes[0])


def _domain(name: str, classes: list[str], subjects: int, per: int) -> nf.Domain:
    names = np.array([c for _ in range(subjects) for c in classes for _ in range(per)], object)
    groups = np.array([f"{name}{s}" for s in range(subjects) for _ in classes for _ in range(per)])
    n = len(names)
    return nf.Domain(name, np.zeros((n, 8, 8, 3), np.uint8), names, classes,
                     np.array([f"{name}:{i}" for i in range(n)], object), groups, name)  # fmt: skip


def test_bundle_keeps_the_shared_classes_and_holds_out_whole_subjects() -> None:
    cfg = config.from_dict({"ensemble": {"test_fraction": 0.25}})
    a = _domain("ck", ["angry", "contempt", "happy", "sad"], 8, 2)
    b = _domain("jaffe", ["angry", "happy", "neutral", "sad"], 4, 1)
    data, classes, table = nf.bundle(cfg, [a, b], None)
    assert classes == ["angry", "happy", "sad"]
    assert len(data["ck"].y) == 8 * 3 * 2 and len(data["jaffe"].y) == 4 * 3
    assert data["ck"].n_classes == data["jaffe"].n_classes == 3
    for name, d in data.items():
        tested = set(d.groups[d.test])
        assert tested and not tested & set(d.groups[~d.test])
        rows = table[table["domain"] == name]
        assert rows["test"].tolist() == d.test.tolist() and rows["label"].tolist() == d.y.tolist()
    assert data["jaffe"].test.sum() == 3  # one of 4 subjects, its three shared-class images
    with pytest.raises(StageError, match="has 2 subject"):
        nf.bundle(cfg, [a, _domain("tiny", ["angry", "happy"], 2, 3)], None)


def test_other_data_set_errors_name_the_keys() -> None:
    base = {"data": {"name": "ckplus", "root": "/x", "neutral_frames": True}}
    with pytest.raises(ConfigError, match="newfaces.other_root"):
        nf.other_data(config.from_dict(base, ["newfaces.other=jaffe"]))
    with pytest.raises(ConfigError, match="did you mean 'jaffe'"):
        nf.other_data(config.from_dict(base, ["newfaces.other=jafe", "newfaces.other_root=/y"]))
    with pytest.raises(ConfigError, match="leave newfaces.other unset"):
        nf.other_data(config.from_dict(base, ["newfaces.other=synthetic"]))
    b = nf.other_data(config.from_dict(base, ["newfaces.other=jaffe", "newfaces.other_root=/y"]))
    assert (b.name, b.root, b.neutral_frames) == ("jaffe", "/y", False)
    c = nf.other_data(
        config.from_dict({"data": {"name": "jaffe", "root": "/j"}},
                         ["newfaces.other=ckplus", "newfaces.other_root=/c"])
    )  # fmt: skip
    assert (c.name, c.neutral_frames) == ("ckplus", False)
