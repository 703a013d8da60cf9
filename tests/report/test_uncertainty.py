"""Tests for how the report names the interval method (fer_ray.report.uncertainty)."""

from __future__ import annotations

from fer_ray.analysis.intervals import accuracy_interval
from fer_ray.report import uncertainty as u


def test_a_stored_interval_names_its_method_and_old_ones_are_the_percentile_bootstrap():
    iv = accuracy_interval([1, 0, 1, 1, 0, 1], [0, 0, 1, 1, 2, 2]).as_dict()
    assert u.method_of(iv) == "t" and iv["n_boot"] == 0
    assert u.method_of({"n_boot": 2000}) == "percentile"  # stored before methods had names
    assert u.method_of({"n_boot": 0}) == "t"
    assert u.method_of({"n_boot": 2000, "method": "bca"}) == "bca"


def test_the_caveat_names_the_t_interval_and_its_degrees_of_freedom():
    text = u.caveat(15, "subjects", 0)
    assert "cluster t-intervals over subjects" in text and "14 degrees of freedom" in text
    assert "lower bound" not in text and "bootstrap" not in text
    assert "over images" in u.caveat(1, "subjects", unit="item", method="t")
    brief = u.brief_caveat(5, "subjects", method="t")
    assert brief.startswith("brackets: 95 % cluster t-intervals over subjects (4 degrees")


def test_the_bootstrap_caveats_keep_their_lower_bound_and_bca_is_named():
    assert "lower bound" in u.caveat(5, "subjects", 2000)
    bca = u.caveat(5, "subjects", 2000, method="bca")
    assert "BCa" in bca and "lower bound" in bca
    assert u.brief_caveat(3, "movies", method="bca").startswith("brackets: 95 % BCa bootstrap")


def test_one_line_names_the_method_for_the_statistics():
    assert u.method_line("t").startswith("Intervals: cluster t-interval over subjects")
    assert "statistics.interval = percentile" in u.method_line("percentile")
