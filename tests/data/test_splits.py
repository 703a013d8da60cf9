import numpy as np
import pytest

from fer_ray.data import load_manifest, splits
from fer_ray.data.splits import (
    SplitError,
    assert_disjoint,
    grouped_folds,
    grouped_holdout,
    holdout_and_folds,
    member_split,
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


# --- scaling: the algorithm by shape of groups, identical to the old one where groups are few


def _old_grouped_folds(labels, groups, k, seed):
    """The split before it scaled: scikit-learn's StratifiedGroupKFold for every shape."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = np.full(len(labels), -1, dtype=np.int64)
    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (_, test_idx) in enumerate(sgkf.split(np.zeros(len(labels)), labels, groups)):
        folds[test_idx] = f
    return folds


def _synthetic_shape(seed):
    """The earlier default data's shape: 735 images of 35 subjects, 21 per subject."""
    rng = np.random.default_rng(seed)
    groups = np.array([f"s{s:04d}" for s in np.repeat(rng.permutation(35), 21)], dtype=object)
    return np.tile(np.repeat(np.arange(7), 3), 35), groups


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_few_groups_give_exactly_the_old_splits(seed):
    labels, groups = _synthetic_shape(seed)
    splits.clear_split_memo()
    old_test = _old_grouped_folds(labels, groups, 7, seed) == 0
    old_folds = np.full(len(labels), -1)
    old_folds[~old_test] = _old_grouped_folds(labels[~old_test], groups[~old_test], 5, seed)
    test, folds = holdout_and_folds(labels, groups, folds=5, seed=seed, test_fraction=0.15)
    assert np.array_equal(test, old_test) and np.array_equal(folds, old_folds)
    train, val = member_split(labels, groups, test, 0.15, seed + 100)
    old_val = np.zeros(len(labels), bool)
    old_val[~test] = _old_grouped_folds(labels[~test], groups[~test], 7, seed + 100) == 0
    assert np.array_equal(val, old_val) and np.array_equal(train, ~test & ~old_val)


def test_up_to_the_threshold_still_the_old_algorithm():
    labels, groups = _data(n_groups=splits.SGKF_MAX_GROUPS, per_group=3, seed=5)
    assert np.array_equal(
        grouped_folds(labels, groups, 5, 5), _old_grouped_folds(labels, groups, 5, 5)
    )


def _one_per_group(n, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.choice(7, n, p=[0.25, 0.04, 0.14, 0.25, 0.17, 0.11, 0.04])  # FER2013-like
    return labels, np.array([f"img{i}" for i in rng.permutation(n)], dtype=object)


def _class_counts(labels, folds):
    return np.array([np.bincount(labels[folds == f], minlength=7) for f in range(folds.max() + 1)])


def test_one_image_per_group_keeps_each_class_within_one_image_per_fold():
    labels, groups = _one_per_group(12_000)
    test, folds = holdout_and_folds(labels, groups, folds=5, seed=3, test_fraction=0.15)
    n_class = np.bincount(labels, minlength=7)
    # the holdout is one of 7 stratified folds: each class within one image of a seventh
    assert np.all(np.abs(np.bincount(labels[test], minlength=7) - n_class / 7) < 1)
    counts = _class_counts(labels[~test], folds[~test])
    assert np.all(counts.max(axis=0) - counts.min(axis=0) <= 1)
    for f in range(5):  # every group (image) on exactly one side
        assert not set(groups[folds == f]) & set(groups[(folds != f) & (folds >= 0)])
        assert not set(groups[folds == f]) & set(groups[test])
    assert test.sum() == 1715 and list(np.bincount(folds[~test])) == [2057] * 5  # 10,285 in 5


def test_one_image_per_group_is_scikit_learns_stratified_k_fold():
    from sklearn.model_selection import StratifiedKFold

    labels, groups = _one_per_group(5000, seed=1)
    ref = np.empty(5000, np.int64)
    skf = StratifiedKFold(5, shuffle=True, random_state=9)
    for f, (_, idx) in enumerate(skf.split(labels, labels)):
        ref[idx] = f
    assert np.array_equal(grouped_folds(labels, groups, 5, 9), ref)


def _many_groups(n_groups, seed=0):
    """Groups of 1 to 39 images (mean 20), each mostly of one class."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 40, n_groups)
    groups = np.repeat(np.arange(n_groups), sizes)
    own = rng.choice(7, n_groups, p=[0.25, 0.04, 0.14, 0.25, 0.17, 0.11, 0.04])[groups]
    labels = np.where(rng.random(len(groups)) < 0.3, rng.integers(0, 7, len(groups)), own)
    return labels, groups


def test_many_groups_stay_grouped_and_stratified():
    labels, groups = _many_groups(1500)  # 29,700 images: above the threshold, several each
    for k, seed in [(5, 0), (7, 1)]:
        folds = grouped_folds(labels, groups, k, seed)
        assert (np.bincount(groups, weights=folds) == np.bincount(groups) * folds[
            np.unique(groups, return_index=True)[1]]).all()  # fmt: skip
        for g in np.unique(groups)[:200]:
            assert len(np.unique(folds[groups == g])) == 1
        counts = _class_counts(labels, folds)
        # each class's count in every fold within one largest group (39 images) of the others
        assert np.all(counts.max(axis=0) - counts.min(axis=0) <= 39)
        share = counts / counts.sum(axis=1, keepdims=True)
        assert np.abs(share - np.bincount(labels) / len(labels)).max() < 0.005
        sizes = np.bincount(folds)
        assert sizes.max() - sizes.min() <= 39
    assert not np.array_equal(grouped_folds(labels, groups, 5, 0), grouped_folds(
        labels, groups, 5, 2))  # fmt: skip


def test_splits_are_memoised_and_fingerprinted(monkeypatch):
    labels, groups = _one_per_group(3000)
    splits.clear_split_memo()
    calls = []
    real = splits._stratified_folds
    monkeypatch.setattr(
        splits, "_stratified_folds", lambda *a: calls.append(a) or real(*a)
    )  # fmt: skip
    first = grouped_folds(labels, groups, 5, 0)
    first[:] = -7  # a caller's change never reaches the memo
    second = grouped_folds(labels, groups.copy(), 5, 0)
    assert len(calls) == 1 and (second >= 0).all()
    grouped_folds(labels, groups, 5, 1)
    assert len(calls) == 2
    key = splits.split_fingerprint(labels, groups, folds=5, seed=0)
    assert key == splits.split_fingerprint(labels.copy(), groups.copy(), seed=0, folds=5)
    assert key != splits.split_fingerprint(labels, groups, folds=5, seed=1)
    assert key != splits.split_fingerprint(labels[::-1], groups, folds=5, seed=0)
    fixed = groups.astype(str)  # fixed-width strings, as from a NumPy string array
    assert np.array_equal(grouped_folds(labels, fixed, 5, 0), second)
    assert splits.split_fingerprint(labels, fixed, k=5) != splits.split_fingerprint(
        labels, fixed[::-1], k=5
    )
    splits.clear_split_memo()
    grouped_folds(labels, groups, 5, 0)
    assert len(calls) == 4


def test_assert_disjoint_names_group_and_both_splits():
    groups = np.array(["a", "b", "c", "b"], dtype=object)
    m = [np.array(v, bool) for v in ([1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1])]
    with pytest.raises(SplitError, match=r"group 'b' appears in split 0 and split 2"):
        assert_disjoint(groups, *m)
    assert_disjoint(groups, m[0] | m[2], m[1])


def test_run_splits_are_stored_once_and_read_back(tmp_path):
    """With a store, a run's splits are computed once and every later call (another process
    too: the memo is cleared) reads the same arrays; a damaged file is computed again."""
    import pandas as pd

    from fer_ray.config import Config

    rng = np.random.default_rng(3)
    n = 140
    manifest = pd.DataFrame(
        {"label": np.arange(n) % 7, "group": rng.integers(0, 20, n).astype(str), "split": None}
    )
    cfg = Config()
    want = splits.run_splits(manifest, cfg)  # no store: the plain computation
    got = splits.run_splits(manifest, cfg, tmp_path)
    (path,) = tmp_path.glob("splits_*.npz")
    splits.clear_split_memo()
    stored = np.load(path)
    again = splits.run_splits(manifest, cfg, tmp_path)
    for a, b, c, d in zip(want, got, again, (stored["test"], stored["folds"]), strict=True):
        assert np.array_equal(a, b) and np.array_equal(a, c) and np.array_equal(a, d)
    path.write_bytes(b"torn")
    healed = splits.run_splits(manifest, cfg, tmp_path)
    assert np.array_equal(healed[1], want[1]) and path.with_name(path.name + ".damaged").is_file()


def test_the_preflight_and_the_dry_run_read_stored_splits_and_store_none(tmp_path, monkeypatch):
    """``write=False`` (the preflight, the dry run's estimate) computes without storing, and
    reads what a run stored instead of computing again."""
    import pandas as pd

    from fer_ray.config import Config

    manifest = pd.DataFrame(
        {"label": np.arange(140) % 7, "group": (np.arange(140) // 7).astype(str), "split": None}
    )
    cfg = Config()
    dry = splits.run_splits(manifest, cfg, tmp_path, write=False)
    assert list(tmp_path.iterdir()) == []  # computed, nothing written
    stored = splits.run_splits(manifest, cfg, tmp_path)  # a real run stores them
    splits.clear_split_memo()
    monkeypatch.setattr(splits, "holdout_and_folds", lambda *a, **k: pytest.fail("recomputed"))
    again = splits.run_splits(manifest, cfg, tmp_path, write=False)
    for a, b, c in zip(dry, stored, again, strict=True):
        assert np.array_equal(a, b) and np.array_equal(a, c)
