"""Tests for the coverage count of the interval methods (benchmarks/bench_coverage.py's core)."""

from __future__ import annotations

import numpy as np
import pytest

from fer_ray.analysis import coverage
from fer_ray.analysis.intervals import METHODS
from fer_ray.errors import DataError


def _pool(n_subjects: int = 60, per_subject: int = 4, seed: int = 0):
    """Three members and their vote on items of subjects with their own difficulty."""
    rng = np.random.default_rng(seed)
    subjects = np.repeat(rng.permutation(n_subjects) + 100, per_subject)  # unsorted labels
    p = np.repeat(rng.uniform(0.4, 0.9, n_subjects), per_subject)
    members = rng.random((3, subjects.size)) < p
    vote = members.sum(axis=0) >= 2
    return members, vote, subjects


def test_a_tiny_coverage_run_counts_every_cell():
    members, vote, subjects = _pool()
    truth = coverage.truth(members, vote)
    table = coverage.coverage_table(members, vote, subjects, truth, [3, 5], n_boot=200)
    assert len(table) == len(METHODS) * len(coverage.QUANTITIES) * 2
    assert set(table["method"]) == set(METHODS)
    assert dict(table.groupby("subjects")["draws"].first()) == {3: 20, 5: 12}
    assert table["coverage"].between(0, 1).all()
    assert (table["covered"] == (table["coverage"] * table["draws"]).round()).all()
    assert (table["covered"] + table["miss_low"] + table["miss_high"] == table["draws"]).all()
    c, n = table["coverage"], table["draws"]
    assert np.allclose(table["mc_error"], np.sqrt(c * (1 - c) / n))
    # the truth here is the pool's own mean: most intervals should hold it
    assert table["coverage"].mean() > 0.5


def test_max_draws_and_blocks_are_disjoint_whole_subjects():
    _, _, subjects = _pool(n_subjects=11)
    blocks = coverage.subject_blocks(subjects, 3)
    assert len(blocks) == 3  # 11 subjects hold three disjoint sets of 3
    seen = [set(subjects[b]) for b in blocks]
    assert all(len(s) == 3 for s in seen)
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2])
    assert all(np.sum(np.isin(subjects, list(s))) == b.size for s, b in zip(seen, blocks))
    assert len(coverage.subject_blocks(subjects, 3, max_draws=2)) == 2


def test_all_equal_values_are_covered_exactly_when_the_truth_is_theirs():
    subjects = np.repeat(np.arange(12), 5)
    members = np.ones((2, 60), dtype=bool)
    vote = np.ones(60, dtype=bool)
    truth = coverage.truth(members, vote)
    assert truth == {"member_mean": 1.0, "vote": 1.0, "vote_minus_member_mean": 0.0}
    table = coverage.coverage_table(members, vote, subjects, truth, [4], n_boot=50)
    assert (table["coverage"] == 1.0).all() and (table["mean_width"] == 0.0).all()
    off = coverage.coverage_table(members, vote, subjects, {**truth, "vote": 0.9}, [4], n_boot=50)
    assert (off[off["quantity"] == "vote"]["coverage"] == 0.0).all()


def test_bad_shapes_and_too_few_subjects_are_data_errors():
    with pytest.raises(DataError, match="members, items"):
        coverage.quantities(np.ones(5), np.ones(5))
    members, vote, subjects = _pool(n_subjects=4)
    with pytest.raises(DataError, match="fewer than 5 subjects"):
        coverage.coverage_table(members, vote, subjects, coverage.truth(members, vote), [5])
