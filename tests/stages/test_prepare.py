"""prepare on real on-disk layouts: unreadable images and the data set's own test split."""

import logging

import numpy as np
import pytest
import ray

from fer_ray.data import load_manifest
from fer_ray.data.datasets import DataError
from fer_ray.data.splits import SplitError
from fer_ray.stages.prepare import load_prepared
from fer_ray.stages.trialdata import make_splits
from tests.conftest import smoke_config
from tests.data import fixtures


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield
    ray.shutdown()


def _folder_with_a_broken_image(root):
    info = fixtures.write_imagefolder(root)
    bad = root / "calm" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    return info, bad


def test_unreadable_image_stops_the_run_naming_it(ray_session, tmp_path):
    _, bad = _folder_with_a_broken_image(tmp_path / "data")
    cfg = smoke_config(
        tmp_path, "data.name=imagefolder", f"data.root={tmp_path / 'data'}", "faces.detector=center"
    )
    with pytest.raises(DataError, match=r"1 of 9 images .* could not be read") as e:
        load_prepared(cfg)
    assert str(bad) in str(e.value) and "data.skip_unreadable=true" in str(e.value)


def test_skip_unreadable_goes_on_and_counts_it(ray_session, tmp_path):
    info, bad = _folder_with_a_broken_image(tmp_path / "data")
    cfg = smoke_config(
        tmp_path,
        "data.name=imagefolder",
        f"data.root={tmp_path / 'data'}",
        "faces.detector=center",
        "data.skip_unreadable=true",
    )
    p = load_prepared(cfg)
    assert p.summary["unreadable"] == 1 and p.summary["unreadable_items"] == [str(bad)]
    assert len(p.manifest) == len(p.images) == 8 and str(bad) not in set(p.manifest["item"])
    # the kept crops are the real images, not the black placeholder of the broken one
    assert (p.images.reshape(len(p.images), -1).max(1) > 0).all()
    assert sorted(p.class_names) == info["classes"]


def test_own_split_as_test_holdout_keeps_movies_apart(tmp_path):
    fixtures.write_sfew(tmp_path)
    m = load_manifest("sfew", tmp_path)
    y, groups = m["label"].to_numpy(), m["group"].to_numpy()
    cfg = smoke_config(tmp_path, "data.test_split=val")
    test, folds = make_splits(cfg, y, groups, m["split"].to_numpy())
    assert np.array_equal(test, (m["split"] == "val").to_numpy())
    assert (folds[test] == -1).all() and (folds[~test] >= 0).all()
    assert not set(groups[test]) & set(groups[~test])


def test_own_split_errors_name_the_values(tmp_path):
    fixtures.write_sfew(tmp_path)
    m = load_manifest("sfew", tmp_path)
    y, groups, split = m["label"].to_numpy(), m["group"].to_numpy(), m["split"].to_numpy()
    with pytest.raises(SplitError, match=r"'test'.*\['train', 'val'\]"):
        make_splits(smoke_config(tmp_path, "data.test_split=test"), y, groups, split)
    leaky = split.copy()
    leaky[np.flatnonzero(groups == groups[split == "train"][0])[0]] = "val"
    with pytest.raises(SplitError, match="appears in split"):
        make_splits(smoke_config(tmp_path, "data.test_split=val"), y, groups, leaky)
