"""Row gathering from shards: exactly the rows a copy of the split would hold."""

import numpy as np
import pytest
import torch

from fer_ray.data import recipes
from fer_ray.train.bundle import TrialData
from fer_ray.train.loop import Split
from fer_ray.train.rows import Rows, Sharded


def _shards(counts, row=(3, 2), seed=0):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=(c, *row)).astype(np.float32) for c in counts]
    return parts, np.concatenate(parts)


def test_take_reads_only_the_shards_of_the_rows_and_returns_them_in_order():
    parts, whole = _shards([5, 0, 7, 3])
    loaded = []

    def loader(ids):
        loaded.extend(ids)
        return [parts[i] for i in ids]

    s = Sharded(list(range(4)), [5, 0, 7, 3], (3, 2), np.float32, loader)
    rows = np.array([13, 2, 6, 6, 0])
    assert np.array_equal(s.take(rows), whole[rows])
    assert sorted(loaded) == [0, 2, 3]  # shard 1 is empty, no row asked from it
    assert np.array_equal(s.take([8, 9]), whole[[8, 9]]) and sorted(loaded) == [0, 2, 3]
    assert s.shape == (15, 3, 2) and len(s) == 15
    with pytest.raises(IndexError):
        s.take([15])


def test_rows_batches_equal_indexing_a_copy_of_the_split():
    parts, whole = _shards([4, 9, 6], row=(2, 2, 2), seed=1)
    s = Sharded(parts, [4, 9, 6], (2, 2, 2), np.float32)
    idx = np.flatnonzero(np.arange(19) % 3 != 1)  # a split, as a mask's rows
    copy = torch.from_numpy(whole[idx])  # the copy TrialData.split used to make
    rows = Rows(s, idx)
    order = torch.randperm(len(idx), generator=torch.Generator().manual_seed(0))
    for start in range(0, len(idx), 4):
        b = order[start : start + 4]
        assert torch.equal(rows[b], copy[b])
    assert torch.equal(rows[3:9], copy[3:9]) and rows.shape == copy.shape
    assert torch.equal(rows.materialize(), copy)


def test_trial_data_split_matches_the_copy_for_features_and_pixels():
    rng = np.random.default_rng(2)
    pix = rng.integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    y, groups = np.arange(10) % 3, np.arange(10).astype(str)
    test, folds = np.zeros(10, bool), np.arange(10) % 2
    mask = folds == 1
    for x, kind in ((pix.astype(np.float32), "features"), (pix, "pixels")):
        sharded = Sharded([x[:3], x[3:8], x[8:]], [3, 5, 2], x.shape[1:], x.dtype)
        d = TrialData(sharded, kind, y, groups, test, folds, 3)
        got = d.split(mask)
        want = torch.from_numpy(x[mask])
        if kind == "pixels":
            want = recipes.get("none").eval_batch(want)
        assert isinstance(got.x, Rows) and torch.equal(got.x[:], want)
        assert torch.equal(got.y, torch.from_numpy(y[mask]).long())


def test_split_moves_rows_whole_only_to_an_accelerator_and_small():
    x = np.ones((6, 4), np.float32)
    split = Split(Rows(Sharded.of(x), np.arange(6)), torch.zeros(6, dtype=torch.long))
    assert split.to("cpu") is split  # gathered batch by batch, never copied whole
    assert split.to("meta").x.device.type == "meta"  # small: moved whole, as a tensor
