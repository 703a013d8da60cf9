"""The toy stage's report section."""

from __future__ import annotations

from pathlib import Path

from fer_ray.report.page import Block, h2, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part
from tests.toy_recipe import DIR, SCORES

name = "toy"


def load(run: Run) -> Part | None:
    scores = run.csv(DIR, SCORES)
    return None if scores is None else Part(tables={"toy_scores": scores})


def plots(part: Part, out: Path) -> None:
    """No plots."""


def blocks(part: Part) -> list[Block]:
    return [h2("Toy scores"), table(part.tables["toy_scores"])]
