"""``data.label_noise``: seeded flips of training-pool labels of the synthetic set, recorded,
never in the test holdout, and never changing a rendered byte."""

from __future__ import annotations

import numpy as np
import pytest

from fer_ray import config
from fer_ray.data.datasets import create_source, read_manifest
from fer_ray.data.splits import holdout_and_folds
from fer_ray.errors import ConfigError

NOISE = ["data.label_noise=0.1", "data.test_split=test"]
SIX = "data.classes=[angry, fear, happy, sad, surprise, neutral]"


def test_flips_are_a_tenth_of_the_training_pool_and_recorded():
    cfg = config.from_dict({}, NOISE)
    m, names = read_manifest(cfg.data)
    pool = (m["split"] == "train").to_numpy()
    flipped = m["flipped"].to_numpy(bool)
    assert flipped.sum() == round(0.1 * pool.sum()) == 63
    assert not (flipped & ~pool).any()
    assert (m.loc[flipped, "label_name"] != m.loc[flipped, "clean_label_name"]).all()
    assert (m.loc[~flipped, "label_name"] == m.loc[~flipped, "clean_label_name"]).all()
    assert (np.asarray(names)[m["label"]] == m["label_name"]).all()
    # the test subjects are whole subjects, about 1/7 of them: 15 of the default 105
    test_groups = set(m.loc[~pool, "group"])
    assert not test_groups & set(m.loc[pool, "group"]) and len(test_groups) == 15


def test_the_pipeline_holdout_is_exactly_the_clean_subjects():
    cfg = config.from_dict({}, NOISE)
    m, _ = read_manifest(cfg.data)
    test, folds = holdout_and_folds(
        m["label"].to_numpy(), m["group"].to_numpy(), folds=cfg.grid.folds, seed=cfg.seed,
        test_fraction=cfg.ensemble.test_fraction, test_split=cfg.data.test_split,
        own_split=m["split"].to_numpy(),
    )  # fmt: skip
    assert (test == (m["split"] == "test").to_numpy()).all()
    assert not m.loc[test, "flipped"].any()


def test_same_seed_same_flips_other_seed_other_flips():
    a, _ = read_manifest(config.from_dict({}, NOISE).data)
    b, _ = read_manifest(config.from_dict({}, NOISE).data)
    c, _ = read_manifest(config.from_dict({}, [*NOISE, "data.seed=1"]).data)
    assert (a["flipped"] == b["flipped"]).all() and (a["label"] == b["label"]).all()
    assert not (a["flipped"] == c["flipped"]).all()


def test_flips_stay_within_the_selected_classes():
    cfg = config.from_dict({}, [*NOISE, SIX])
    m, names = read_manifest(cfg.data)
    assert "disgust" not in set(m["label_name"]) | set(m["clean_label_name"])
    assert m["flipped"].sum() == round(0.1 * (m["split"] == "train").sum())
    assert names == ["angry", "fear", "happy", "sad", "surprise", "neutral"]


def test_no_noise_leaves_the_manifest_and_pixels_alone():
    clean = config.from_dict({}, ["data.n_subjects=3"])
    noisy = config.from_dict({}, ["data.n_subjects=3", *NOISE])
    m, _ = read_manifest(clean.data)
    assert list(m.columns) == ["item", "label", "label_name", "group", "split"]
    assert (m["split"] == "").all()
    items = m["item"].tolist()[:5]
    a = create_source(clean.data).load(items)
    b = create_source(noisy.data).load(items)
    assert all((x[0] == y[0]).all() and x[1] == y[1] for x, y in zip(a, b))
    assert create_source(clean.data).identity() == create_source(noisy.data).identity()


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["data.label_noise=0.1"], "data.label_noise > 0 needs data.test_split=test"),
        (["data.label_noise=1.5", "data.test_split=test"], "data.label_noise must be in [0, 1)"),
        (
            ["data.name=fer2013", "data.root=/x", *NOISE],
            "data.label_noise applies to data.name=synthetic only",
        ),
    ],
)
def test_bad_noise_settings_fail_naming_the_key(overrides, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace(")", r"\)")):
        config.from_dict({}, overrides)
