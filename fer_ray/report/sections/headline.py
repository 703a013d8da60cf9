"""The one sentence a reader wants first: ensemble accuracy against chance, test-selected or not,
with the 95 % intervals the ensemble stage stored (``intervals`` in its summary).

It opens the HTML page's header (``place = "header"``; its glance is the same ``sentence``)
and is the ``## Headline`` section of the Markdown, so both say the same words. Above that
sentence come the two numbers a reader looks for first (``result``): the soft vote's and the
members' mean test accuracy with their intervals, large at the top of the HTML page and one
bold line each in the Markdown. A run made
before the ensemble stored intervals gets the sentence without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_ray.layout import SUMMARY, Ensemble, Grid
from fer_ray.report import uncertainty as u
from fer_ray.report.page import Block, Glance, Stat, h2, p, pct
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "headline"
place = "header"


def load(run: Run) -> Part | None:
    summary = run.json(Ensemble.DIR, SUMMARY)
    if not summary:
        return None
    pre = (run.json(Grid.DIR, Grid.FEATURES) or {}).get("pretrain")  # the stand-in's facts
    weights = (run.config.get("model") or {}).get("weights")
    return Part(facts={"ensemble": summary, "noun": u.group_noun(run), "pretrain": pre,
                       "weights": weights})  # fmt: skip


def plots(part: Part, out: Path) -> None:
    """No plots."""


def _with_intervals(e: dict[str, Any], iv: dict[str, Any], tag: str, noun: str) -> str:
    mc = iv.get("mcnemar_vote_vs_best_member") or {}
    test = f"; McNemar p = {mc['p_value']:.2g}" if "p_value" in mc else ""
    unit = iv["vote"].get("unit", "group")
    diff = iv.get("vote_minus_member_mean")
    over_mean = f", {u.difference_of(diff)} against the member mean (paired)" if diff else ""
    return (
        f"{e['members']} members: mean test accuracy {u.accuracy_of(iv['member_mean'])} "
        f"(± {pct(e['test_acc_std'])} across members){tag}; soft-vote ensemble "
        f"{u.accuracy_of(iv['vote'])}, {u.difference_of(iv['vote_minus_best_member'])} against "
        f"member {iv['best_member_by_val']}, the best by validation (paired on the same "
        f"images{test}){over_mean}; chance {pct(e['chance_uniform'])} (uniform), "
        f"{pct(e['chance_majority'])} (majority class); test set "
        f"{u.sample(iv['n_images'], iv['n_groups'], noun)}; "
        f"{u.brief_caveat(iv['n_groups'], noun, unit, u.method_of(iv['vote']))}."
    )


def sentence(facts: dict[str, Any]) -> str:
    """The numbers, then how the backbone was pretrained and what that means for them (a
    stand-in trained on targets that determine the class is supervised pretraining on the
    task, and the sentence itself says so)."""
    e = facts["ensemble"]
    tag = " **(selected on test, seed 000's protocol)**" if e["selected_on_test"] else ""
    pre, weights = facts.get("pretrain"), facts.get("weights")
    pre = pre if isinstance(pre, dict) and pre.get("targets") else None
    if pre and not pre.get("label_free", pre.get("objective") != "au"):
        backbone = (
            f" Backbone pretrained here on {pre['targets']}, which determine the expression"
            " class: **supervised pretraining on this task with other people**, so these"
            " numbers do not measure transfer from a label-free source."
        )
    elif pre:
        backbone = (
            f" Backbone pretrained here, label-free, on {pre['targets']}: it never saw an"
            " expression class, which this run learns from its own training images only."
        )
    elif weights == "none":
        backbone = " Backbone: random initialisation, no pretraining."
    elif weights == "imagenet":
        backbone = " Backbone: ImageNet weights (object classes: label-free)."
    else:
        backbone = f" Backbone weights: {weights}." if weights else ""
    if e.get("intervals"):
        return _with_intervals(e, e["intervals"], tag, facts.get("noun", "groups")) + backbone
    return (
        f"{e['members']} members: test accuracy {pct(e['test_acc_mean'])} ± "
        f"{pct(e['test_acc_std'])}{tag}; soft-vote ensemble {pct(e['vote_acc'])}; "
        f"chance {pct(e['chance_uniform'])} (uniform), "
        f"{pct(e['chance_majority'])} (majority class); test set {e['n_test']} images.{backbone}"
    )


def result(part: Part) -> list[Stat]:
    """The soft vote's and the members' mean test accuracy, each with its 95 % interval (or,
    for a run made before the intervals, the vote alone and the spread across members)."""
    e = part.facts["ensemble"]
    tag = " (selected on test)" if e["selected_on_test"] else ""
    iv = e.get("intervals")
    spread = f"± {pct(e['test_acc_std'])} across {e['members']} members"
    if not iv:
        return [
            (f"Soft-vote ensemble, test accuracy{tag}", pct(e["vote_acc"]),
             f"{e['n_test']} test images"),
            (f"Members' mean test accuracy{tag}", pct(e["test_acc_mean"]), spread),
        ]  # fmt: skip
    vote, mean = iv["vote"], iv["member_mean"]
    return [
        (f"Soft-vote ensemble, test accuracy{tag}", pct(vote["estimate"]),
         f"95 % interval {u.bracket(vote['low'], vote['high'])}"),
        (f"Members' mean test accuracy{tag}", pct(mean["estimate"]),
         f"95 % interval {u.bracket(mean['low'], mean['high'])}; {spread}"),
    ]  # fmt: skip


def result_line(stat: Stat) -> str:
    """One number as the Markdown says it: ``**label value** (detail)``."""
    label, value, detail = stat
    return f"**{label} {value}** ({detail})"


def blocks(part: Part) -> list[Block]:
    return [
        h2("Headline"),
        *(p(result_line(s)) for s in result(part)),
        p(sentence(part.facts)),
    ]


def glance(part: Part) -> list[Glance]:
    return [("Headline", sentence(part.facts))]
