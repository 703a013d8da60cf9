"""The sharded data path: crops and features move as shards, never as one whole array."""

import os

import numpy as np
import pytest
import ray
from ray.experimental import get_object_locations

from fer_ray import layout
from fer_ray.config import TRUNK_BATCH
from fer_ray.faces.cache import CropCache
from fer_ray.stages import common, features, prepare, shards
from fer_ray.stages.prepare import load_prepared
from fer_ray.stages.shards import covering, shard_ranges
from fer_ray.train.features import trunk_features
from fer_ray.train.rows import Sharded
from tests.conftest import smoke_config

pytestmark = pytest.mark.slow  # a Ray session, crop and trunk tasks

_CFG = [  # 168 images: 3 crop chunks of <= 64, 2 feature shards of <= 128 rows
    "data.n_subjects=12",
    "faces.size=32",
    "faces.chunk_size=64",
    f"resources.shard_images={TRUNK_BATCH}",
    "model.weights=none",
]


def test_shard_ranges_and_covering_chunks():
    assert shard_ranges(300, 128) == [(0, 128), (128, 256), (256, 300)]
    assert covering([64, 64, 40], 128, 168) == ([2], 0)
    assert covering([64, 0, 60, 44], 100, 168) == ([2, 3], 36)


def _driver_never_touches_pixels(monkeypatch) -> None:
    """Every read or store of a crop chunk or a feature shard fails in this process, the
    driver (Ray may ship a task with the patched functions: in a worker they do their work)."""
    driver = os.getpid()

    def refusing(original):
        def refuse(*a, **k):
            assert os.getpid() != driver, "the driver read or stored pixels or features"
            return original(*a, **k)

        return refuse

    for where, name in [(CropCache, "put_chunk"), (CropCache, "get_chunk"),
                        (features, "store_cached"), (features, "load_cached")]:  # fmt: skip
        monkeypatch.setattr(where, name, refusing(getattr(where, name)))


@pytest.mark.parametrize("shared", [True, False], ids=["shared cache", "driver stores"])
def test_bundle_holds_shards_no_bigger_than_the_shard_size(
    ray_session, tmp_path, capsys, monkeypatch, shared
):
    """Where every node shares the cache folder (here: a local Ray), the tasks read and store
    crops and features and the driver touches none; elsewhere the driver stores them, one
    shard at a time. The bytes are the same."""
    monkeypatch.setattr(common, "THROTTLE_S", 0.0)  # every progress line
    cfg = smoke_config(tmp_path, *_CFG)
    with monkeypatch.context() as m:
        if shared:
            _driver_never_touches_pixels(m)
        else:  # a node without the cache's mount, as cluster.cache_shared finds it (for the
            # whole test: the rebuild below reads through the driver too)
            for module in (prepare, features, shards):
                monkeypatch.setattr(module, "cache_shared", lambda _folder: False)
        prepared = load_prepared(cfg)
        n = len(prepared.manifest)
        assert n == 168 and prepared.crops.counts == [64, 64, 40]
        ref, info = features.build(cfg, prepared)
    assert len(list(CropCache(layout.cache_root(cfg, "crops"), prepared.summary["cache_key"])
                    .dir.glob("chunk_*.npz"))) == 3  # fmt: skip
    lines = [ln.split(" · ")[0] for ln in capsys.readouterr().out.splitlines()]
    done = [ln for ln in lines if ln.startswith("[features] trunk features")]
    first = {"[features] trunk features 128/168 images", "[features] trunk features 40/168 images"}
    assert first & set(done)  # a line as each shard finishes (and each second before)
    counts = [int(ln.split()[3].split("/")[0]) for ln in done]
    assert counts == sorted(counts) and done[-1] == "[features] trunk features 168/168 images"
    data = ray.get(ref)
    x = data.x
    assert isinstance(x, Sharded) and x.counts == [128, 40] and info["feature_cache"]
    assert all(isinstance(p, ray.ObjectRef) for p in x.parts)
    shard_bytes = TRUNK_BATCH * x.row_bytes
    sizes = {r: get_object_locations([r])[r]["object_size"] for r in [ref, *x.parts]}
    assert max(sizes.values()) <= shard_bytes + 4096  # the array plus its serialised header
    # the bundle carries labels, groups, splits and references: far less than the features
    assert sizes[ref] < x.row_bytes * n / 3
    whole = trunk_features(cfg.model, prepared.crops.take(np.arange(n)))
    got = np.concatenate([ray.get(p) for p in x.parts])
    assert got.tobytes() == whole.tobytes()  # per-shard trunk passes: one pass's bytes
    with monkeypatch.context() as m:
        if shared:
            _driver_never_touches_pixels(m)
        again, info2 = features.build(cfg, prepared)  # read back from the per-shard cache
    assert info2["feature_cache_disk"] == "reused"
    assert ray.get(again).x.take(np.arange(n)).tobytes() == whole.tobytes()
    rows = np.flatnonzero(data.folds == 1)
    assert np.array_equal(data.split(data.folds == 1).x[:].numpy(), whole[rows])
