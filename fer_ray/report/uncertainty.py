"""How the report prints the stored intervals, so every section says them the same way.

The stages store each accuracy with a 95 % percentile interval from a bootstrap over groups
(subjects, or movies for SFEW) and each paired comparison as a difference with its interval
(``fer_ray.analysis.intervals``); the report only formats what they stored:

* an accuracy: ``16.67 % [14.29, 21.43]`` (the bracket is in percent too);
* a paired difference, in percentage points: ``-4.76 points [-7.14, +0.00]``;
* the sample behind them: ``42 images of 3 subjects (one image = 2.38 points)``;
* the caveat: with few groups the bootstrap interval is a lower bound on the uncertainty.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import comb
from typing import Any

from fer_ray.layout import SUMMARY, Prepare
from fer_ray.report.run import Run

#: Below this many groups the caveat says outright that the interval is a lower bound.
FEW_GROUPS = 30
#: Data sets whose groups are known (the fallback when the run does not store a noun).
GROUP_NOUNS = {
    "synthetic": "subjects",
    "ckplus": "subjects",
    "jaffe": "subjects",
    "ckplus_jaffe": "subjects",
    "sfew": "movies",
    "sfew_subset": "movies",
}


def _points(x: float) -> float:
    """A fraction in percentage points, rounded for print, without a ``-0.00``."""
    return round(100.0 * float(x), 2) + 0.0


def bracket(low: float, high: float) -> str:
    """``[14.29, 21.43]``: an interval of fractions, printed in percent."""
    return f"[{_points(low):.2f}, {_points(high):.2f}]"


def accuracy(estimate: float, low: float, high: float) -> str:
    """``16.67 % [14.29, 21.43]``."""
    return f"{_points(estimate):.2f} % {bracket(low, high)}"


def accuracy_of(iv: Mapping[str, Any]) -> str:
    """A stored interval dict (``estimate``, ``low``, ``high``) as ``accuracy`` prints it."""
    return accuracy(iv["estimate"], iv["low"], iv["high"])


def difference(estimate: float, low: float, high: float) -> str:
    """``-4.76 points [-7.14, +0.00]``: a paired difference in percentage points."""
    e, lo, hi = (_points(v) for v in (estimate, low, high))
    return f"{e:+.2f} points [{lo:+.2f}, {hi:+.2f}]"


def difference_of(iv: Mapping[str, Any]) -> str:
    return difference(iv["estimate"], iv["low"], iv["high"])


def verdict(low: float, high: float) -> str:
    """Whether a paired difference's interval excludes 0."""
    if high < 0:
        return "significantly lower"
    if low > 0:
        return "significantly higher"
    return "not significantly different"


def group_noun(run: Run) -> str:
    """What one bootstrap group is in this run: stored by prepare, else known per data set."""
    stored = (run.json(Prepare.DIR, SUMMARY) or {}).get("group_noun")
    if stored:
        return str(stored)
    data = run.config.get("data") or {}
    return GROUP_NOUNS.get(str(data.get("name", "")), "groups")


def sample(n_items: int, n_groups: int, noun: str, what: str = "images") -> str:
    """``42 images of 3 subjects (one image = 2.38 points)``: n and the accuracy step."""
    return f"{n_items} {what} of {n_groups} {noun} (one image = {100.0 / n_items:.2f} points)"


def caveat(n_groups: int, noun: str, n_boot: int | None = None, unit: str = "group") -> str:
    """What the brackets are, and why they understate the uncertainty with few groups."""
    boot = f"{n_boot} " if n_boot else ""
    if unit != "group":
        return (
            f"Brackets: 95 % percentile intervals from {boot}bootstrap resamples of images "
            "(one group only, so images were resampled as if independent): "
            "a lower bound on the uncertainty."
        )
    head = f"Brackets: 95 % percentile intervals from {boot}bootstrap resamples of {noun} "
    head += "(not images, which are not independent within one of them)"
    if n_groups >= FEW_GROUPS:
        return head + "."
    distinct = comb(2 * n_groups - 1, n_groups)
    few = f"; only {distinct} distinct resamples exist" if distinct < 10_000 else ""
    return (
        f"{head}. With only {n_groups} {noun} they are a lower bound on the uncertainty "
        f"(the bootstrap variance is {n_groups - 1}/{n_groups} of the usual estimate{few})."
    )


ZERO_WIDTH = (
    "A zero-width interval means every resample gave the same value (e.g. a recall of 0, or "
    "two rules that differ on the same images in every resample), not that it is certain."
)


def brief_caveat(n_groups: int, noun: str, unit: str = "group") -> str:
    """The caveat in one clause, for a sentence that already says n (lower case)."""
    if unit != "group":
        return "brackets: 95 % bootstrap intervals over images, a lower bound on the uncertainty"
    line = f"brackets: 95 % bootstrap intervals over {noun}"
    if n_groups < FEW_GROUPS:
        line += f", a lower bound on the uncertainty with only {n_groups} {noun}"
    return line
