"""The one sentence a reader wants first: ensemble accuracy against chance, test-selected or not."""

from __future__ import annotations

from pathlib import Path

from fer_ray.layout import SUMMARY, Ensemble
from fer_ray.report.page import Block, h2, p, pct
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "headline"


def load(run: Run) -> Part | None:
    summary = run.json(Ensemble.DIR, SUMMARY)
    return Part(facts={"ensemble": summary}) if summary else None


def plots(part: Part, out: Path) -> None:
    """No plots."""


def blocks(part: Part) -> list[Block]:
    e = part.facts["ensemble"]
    tag = " **(selected on test, seed 000's protocol)**" if e["selected_on_test"] else ""
    return [
        h2("Headline"),
        p(
            f"{e['members']} members: test accuracy {pct(e['test_acc_mean'])} ± "
            f"{pct(e['test_acc_std'])}{tag}; soft-vote ensemble {pct(e['vote_acc'])}; "
            f"chance {pct(e['chance_uniform'])} (uniform), "
            f"{pct(e['chance_majority'])} (majority class); test set {e['n_test']} images."
        ),
    ]
