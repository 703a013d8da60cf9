"""How the report prints the stored intervals, so every section says them the same way.

The stages store each accuracy with a 95 % interval over groups (subjects, or movies for SFEW)
and each paired comparison as a difference with its interval (``fer_ray.analysis.intervals``),
by the run's ``statistics.interval`` method, which each stored interval names; the report
only formats what they stored:

* an accuracy: ``16.67 % [14.29, 21.43]`` (the bracket is in percent too);
* a paired difference, in percentage points: ``-4.76 points [-7.14, +0.00]``;
* the sample behind them: ``42 images of 3 subjects (one image = 2.38 points)``;
* the caveat names the method: the cluster t-interval (the default, whose coverage was
  measured close to 95 % with 5 and 15 subjects), or a bootstrap, which with few groups is
  a lower bound on the uncertainty.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import comb
from typing import Any

from fer_ray.analysis.intervals import METHOD_NAMES
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


def method_of(iv: Mapping[str, Any]) -> str:
    """The method of a stored interval dict: its ``method``, else inferred: no resamples is
    the t-interval, resamples without a name the percentile bootstrap (runs before the
    methods were named)."""
    if iv.get("method"):
        return str(iv["method"])
    return "t" if iv.get("n_boot") == 0 else "percentile"


def _method(method: str | None, n_boot: int | None) -> str:
    if method:
        return method
    return "t" if n_boot == 0 else "percentile"


def method_line(method: str) -> str:
    """One line naming the method, for the statistics of a section or the report."""
    name = METHOD_NAMES.get(method, method)
    if method == "t":
        return (
            f"Intervals: {name} over subjects (the standard error of the pooled accuracy from "
            "the subjects' own accuracies, weighted by their images, and Student's t with one "
            "degree of freedom fewer than subjects); its coverage, measured on the embedded "
            "synthetic population, is close to 95 % with 5 and with 15 test subjects, where "
            "the percentile bootstrap used before held the truth in 79-84 % of 5-subject "
            "test sets."
        )
    return f"Intervals: {name} over subjects (config statistics.interval = {method})."


def _t_caveat(n_groups: int, noun: str, unit: str) -> str:
    if unit != "group":
        return (
            "Brackets: 95 % t-intervals over images (one group only, so images were treated "
            "as independent): a lower bound on the uncertainty."
        )
    return (
        f"Brackets: 95 % cluster t-intervals over {noun} (not images, which are not "
        f"independent within one of them): the {noun}' spread, Student's t with "
        f"{n_groups - 1} degrees of freedom; measured on the embedded synthetic population, "
        "this method covers close to 95 % with 5 and with 15 test subjects."
    )


def caveat(
    n_groups: int,
    noun: str,
    n_boot: int | None = None,
    unit: str = "group",
    method: str | None = None,
) -> str:
    """What the brackets are (the method named), and, for a bootstrap, why it understates
    the uncertainty with few groups.  ``method`` None: inferred from ``n_boot`` as
    ``method_of`` does (0: t; else the percentile bootstrap)."""
    method = _method(method, n_boot)
    if method == "t":
        return _t_caveat(n_groups, noun, unit)
    boot = f"{n_boot} " if n_boot else ""
    kind = "BCa (bias-corrected and accelerated)" if method == "bca" else "percentile"
    if unit != "group":
        return (
            f"Brackets: 95 % {kind} intervals from {boot}bootstrap resamples of images "
            "(one group only, so images were resampled as if independent): "
            "a lower bound on the uncertainty."
        )
    head = f"Brackets: 95 % {kind} intervals from {boot}bootstrap resamples of {noun} "
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
ZERO_WIDTH_T = (
    "A zero-width interval means every group scored the same (e.g. a recall of 0, or two "
    "rules that differ by the same amount in every group), not that it is certain."
)


def zero_width(method: str | None) -> str:
    """What a zero-width bracket means under ``method`` (None: the percentile bootstrap)."""
    return ZERO_WIDTH_T if method == "t" else ZERO_WIDTH


def run_method(run: Run) -> str:
    """The run's ``statistics.interval``; a run made before the key existed used the
    percentile bootstrap."""
    stats = run.config.get("statistics") or {}
    return str(stats.get("interval") or "percentile")


def method_short(method: str | None, noun: str) -> str:
    """``cluster t-interval over subjects`` / ``percentile cluster bootstrap over movies``."""
    return f"{METHOD_NAMES.get(method or 'percentile', method)} over {noun}"


def brief_caveat(n_groups: int, noun: str, unit: str = "group", method: str | None = None) -> str:
    """The caveat in one clause, for a sentence that already says n (lower case); the
    method named (``method`` None: the percentile bootstrap, as stored before it was)."""
    method = _method(method, None)
    if method == "t":
        if unit != "group":
            return "brackets: 95 % t-intervals over images, a lower bound on the uncertainty"
        return (
            f"brackets: 95 % cluster t-intervals over {noun} ({n_groups - 1} degrees of "
            "freedom; coverage measured on synthetic faces: close to 95 %)"
        )
    kind = "BCa bootstrap" if method == "bca" else "bootstrap"
    if unit != "group":
        return f"brackets: 95 % {kind} intervals over images, a lower bound on the uncertainty"
    line = f"brackets: 95 % {kind} intervals over {noun}"
    if n_groups < FEW_GROUPS:
        line += f", a lower bound on the uncertainty with only {n_groups} {noun}"
    return line
