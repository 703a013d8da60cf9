"""Tests for known label noise (fer_ray.data.noise.flip_labels)."""

from __future__ import annotations

import numpy as np
import pytest

from fer_ray.data.noise import flip_labels
from fer_ray.errors import ConfigError, DataError


def _labels(n=1000, n_classes=6, seed=0):
    return np.random.default_rng(seed).integers(0, n_classes, n)


def test_flips_exactly_the_rounded_count_inside_the_mask_only():
    y = _labels()
    mask = np.zeros(y.size, dtype=bool)
    mask[:700] = True  # the training split
    new, flipped = flip_labels(y, 0.2, 6, seed=1, mask=mask)
    assert flipped.sum() == 140  # round(0.2 * 700)
    assert not (flipped & ~mask).any()
    np.testing.assert_array_equal(new[~flipped], y[~flipped])
    assert (new[flipped] != y[flipped]).all()
    assert new.dtype == y.dtype and new.min() >= 0 and new.max() <= 5
    np.testing.assert_array_equal(flipped, new != y)


@pytest.mark.parametrize(
    ("fraction", "n_eligible", "expected"),
    [(0.0, 10, 0), (1.0, 10, 10), (0.25, 10, 2), (0.35, 10, 4), (0.15, 10, 2), (0.5, 7, 4)],
)
def test_count_is_python_round_of_fraction_times_eligible(fraction, n_eligible, expected):
    # 0.25 * 10 = 2.5 rounds half to even -> 2; 0.5 * 7 = 3.5 -> 4
    y = _labels(n=20, n_classes=3)
    mask = np.arange(20) < n_eligible
    _, flipped = flip_labels(y, fraction, 3, seed=0, mask=mask)
    assert flipped.sum() == expected == round(fraction * n_eligible)


def test_deterministic_for_a_seed_and_different_across_seeds():
    y = _labels()
    a = flip_labels(y, 0.3, 6, seed=5)
    b = flip_labels(y, 0.3, 6, seed=5)
    c = flip_labels(y, 0.3, 6, seed=6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert (a[1] != c[1]).any()
    np.testing.assert_array_equal(y, _labels())  # the input is not modified


def test_new_class_is_uniform_over_the_other_classes():
    n = 30_000
    y = np.zeros(n, dtype=np.int64)
    new, flipped = flip_labels(y, 1.0, 4, seed=2)
    assert flipped.all()
    counts = np.bincount(new, minlength=4)
    assert counts[0] == 0
    sd = np.sqrt(n * (1 / 3) * (2 / 3))  # binomial spread of each of the 3 targets
    assert np.all(np.abs(counts[1:] - n / 3) < 5 * sd)


def test_chosen_items_are_spread_over_the_eligible_ones():
    y = _labels(n=20_000)
    _, flipped = flip_labels(y, 0.1, 6, seed=3)
    halves = flipped[:10_000].sum(), flipped[10_000:].sum()  # 2000 flips in all
    assert sum(halves) == 2000
    assert abs(halves[0] - halves[1]) < 5 * np.sqrt(2000 * 0.25) * 2


def test_bad_input_raises():
    y = _labels(n=10, n_classes=3)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        flip_labels(y, 1.5, 3, seed=0)
    with pytest.raises(ConfigError, match=">= 2"):
        flip_labels(np.zeros(5, dtype=int), 0.5, 1, seed=0)
    with pytest.raises(DataError, match=r"0\.\.1"):
        flip_labels(y, 0.5, 2, seed=0)
    with pytest.raises(DataError, match="bool array of shape"):
        flip_labels(y, 0.5, 3, seed=0, mask=np.ones(9, dtype=bool))
    with pytest.raises(DataError, match="integer"):
        flip_labels(y.astype(float), 0.5, 3, seed=0)
