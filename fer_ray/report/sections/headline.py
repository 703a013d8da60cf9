"""The one sentence a reader wants first: ensemble accuracy against chance, test-selected or not.

It opens the HTML page's header (``place = "header"``; its glance is the same ``sentence``)
and is the ``## Headline`` section of the Markdown.

Hook for intervals (a later issue): put them in ``Part.facts`` in ``load`` (from the ensemble
summary, or a file beside it) and say them in ``sentence``; the Markdown section and the page
header both print ``sentence(part.facts)``, so they change together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_ray.layout import SUMMARY, Ensemble
from fer_ray.report.page import Block, Glance, h2, p, pct
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "headline"
place = "header"


def load(run: Run) -> Part | None:
    summary = run.json(Ensemble.DIR, SUMMARY)
    return Part(facts={"ensemble": summary}) if summary else None


def plots(part: Part, out: Path) -> None:
    """No plots."""


def sentence(facts: dict[str, Any]) -> str:
    e = facts["ensemble"]
    tag = " **(selected on test, seed 000's protocol)**" if e["selected_on_test"] else ""
    return (
        f"{e['members']} members: test accuracy {pct(e['test_acc_mean'])} ± "
        f"{pct(e['test_acc_std'])}{tag}; soft-vote ensemble {pct(e['vote_acc'])}; "
        f"chance {pct(e['chance_uniform'])} (uniform), "
        f"{pct(e['chance_majority'])} (majority class); test set {e['n_test']} images."
    )


def blocks(part: Part) -> list[Block]:
    return [h2("Headline"), p(sentence(part.facts))]


def glance(part: Part) -> list[Glance]:
    return [("Headline", sentence(part.facts))]
