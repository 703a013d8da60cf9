import numpy as np
import pytest

from fer_ray.data import load_manifest
from fer_ray.data.splits import (
    SplitError,
    assert_disjoint,
    grouped_folds,
    grouped_holdout,
    holdout_and_folds,
)
from tests.data import fixtures


def _data(n_groups=20, per_group=14, n_classes=7, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), per_group)
    labels = rng.integers(0, n_classes, len(groups))
    return labels, groups


def test_folds_never_share_a_group_and_cover_everything():
    labels, groups = _data()
    folds = grouped_folds(labels, groups, 5, seed=3)
    assert set(np.unique(folds)) == {0, 1, 2, 3, 4}
    for g in np.unique(groups):
        assert len(np.unique(folds[groups == g])) == 1, f"group {g} split across folds"
    sizes = np.bincount(folds)
    assert sizes.min() >= 0.6 * sizes.mean()


def test_folds_deterministic_by_seed():
    labels, groups = _data()
    a = grouped_folds(labels, groups, 5, seed=1)
    assert np.array_equal(a, grouped_folds(labels, groups, 5, seed=1))
    assert not np.array_equal(a, grouped_folds(labels, groups, 5, seed=2))


def test_holdout_fraction_and_groups():
    labels, groups = _data(n_groups=40)
    test = grouped_holdout(labels, groups, 0.15, seed=0)
    assert 0.10 < test.mean() < 0.20  # 1/7 of the groups
    assert_disjoint(groups, test, ~test)


def test_assert_disjoint_catches_overlap():
    groups = np.array([1, 1, 2, 2])
    with pytest.raises(SplitError, match="group 1"):
        assert_disjoint(groups, np.array([1, 0, 0, 0], bool), np.array([0, 1, 1, 1], bool))


def test_too_few_groups_is_a_clear_error():
    labels, groups = _data(n_groups=3)
    with pytest.raises(SplitError, match="at least 5 groups"):
        grouped_folds(labels, groups, 5, seed=0)


def _splits(y, groups, own, test_split):
    return holdout_and_folds(
        y, groups, folds=3, seed=0, test_fraction=0.2, test_split=test_split, own_split=own
    )


def test_own_split_as_test_holdout_keeps_movies_apart(tmp_path):
    fixtures.write_sfew(tmp_path)
    m = load_manifest("sfew", tmp_path)
    y, groups = m["label"].to_numpy(), m["group"].to_numpy()
    test, folds = _splits(y, groups, m["split"].to_numpy(), "val")
    assert np.array_equal(test, (m["split"] == "val").to_numpy())
    assert (folds[test] == -1).all() and (folds[~test] >= 0).all()
    assert not set(groups[test]) & set(groups[~test])


def test_own_split_errors_name_the_values(tmp_path):
    fixtures.write_sfew(tmp_path)
    m = load_manifest("sfew", tmp_path)
    y, groups, split = m["label"].to_numpy(), m["group"].to_numpy(), m["split"].to_numpy()
    with pytest.raises(SplitError, match=r"'test'.*\['train', 'val'\]"):
        _splits(y, groups, split, "test")
    leaky = split.copy()
    leaky[np.flatnonzero(groups == groups[split == "train"][0])[0]] = "val"
    with pytest.raises(SplitError, match="appears in split"):
        _splits(y, groups, leaky, "val")
