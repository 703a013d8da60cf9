"""Title and stage status: which stages ran, and on which weights.

In the HTML page this section is the header (``place = "header"``): its glance gives the
weights and the stage status beside the other sections' summary lines. The provenance (git
commit, versions, host) is its own section at the end of the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_ray.layout import DONE, STAGE_DIRS, Descriptors
from fer_ray.report.page import Block, Glance, h1, p
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "header"
place = "header"


def load(run: Run) -> Part:
    """Always present: a run directory has a config, and stages that ran have ``done.json``."""
    cfg = run.config
    wanted = [
        s for s in STAGE_DIRS if s != Descriptors.DIR or cfg.get("descriptors", {}).get("enabled")
    ]
    stages = {s: run.json(s, DONE) for s in wanted}
    return Part(
        facts={
            "title": cfg.get("name", run.root.name),
            "stages": stages,
            "weights": cfg["model"]["weights"],
            "backbone": cfg["model"]["backbone"],
        }
    )


def plots(part: Part, out: Path) -> None:
    """No plots."""


def stage_status(stage: str, done: dict[str, Any] | None) -> str:
    """``grid done (12s)``; a stage without ``done.json`` did not finish."""
    seconds = (done or {}).get("seconds")
    return f"{stage} {'done' if done is not None else 'not run'}" + (
        f" ({seconds:.0f}s)" if seconds is not None else ""
    )


def stages(part: Part) -> str:
    return ", ".join(stage_status(s, d) for s, d in part.facts["stages"].items())


def weights(part: Part) -> str:
    return f"`{part.facts['weights']}` ({part.facts['backbone']})"


def blocks(part: Part) -> list[Block]:
    return [
        h1(f"fer_ray report: {part.facts['title']}"),
        p(f"Stages: {stages(part)}."),
        p(f"Model weights: {weights(part)}."),
    ]


def glance(part: Part) -> list[Glance]:
    return [("Weights", weights(part)), ("Stages", stages(part))]
