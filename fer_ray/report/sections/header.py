"""Title and stage status: which stages ran, and on which weights.

In the HTML page this section is the header (``place = "header"``): its glance gives the
weights and the stage status beside the other sections' summary lines. The provenance (git
commit, versions, host) is its own section at the end of the page.

A report written while the run goes on (or of a run that stopped unfinished) is **partial**:
the title says so and a "Partial report" line says which stages are done, which one runs (its
trials finished of total) and which are pending (``fer_ray.report.live`` reads that from the
stored files). The final report has no such line.
"""

from __future__ import annotations

from pathlib import Path

from fer_ray.layout import Grid
from fer_ray.report import live
from fer_ray.report.page import Block, Glance, h1, p
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "header"
place = "header"


def load(run: Run) -> Part:
    """Always present: a run directory has a config, and stages that ran have ``done.json``."""
    cfg = run.config
    states, planned = live.stage_states(run)
    return Part(
        facts={
            "title": cfg.get("name", run.root.name),
            "states": states,
            "partial": live.is_partial(states, planned),
            "weights": cfg["model"]["weights"],
            "backbone": cfg["model"]["backbone"],
            # what a stand-in was pretrained on, as the trunk-feature step stored it
            "pretrain": (run.json(Grid.DIR, Grid.FEATURES) or {}).get("pretrain"),
        }
    )


def plots(part: Part, out: Path) -> None:
    """No plots."""


def stages(part: Part) -> str:
    """``prepare done (3s), grid running (4 of 6 trials finished, ...), ensemble pending``."""
    return ", ".join(s.text() for s in part.facts["states"])


def title(part: Part) -> str:
    """The run's name, marked when the report is partial."""
    mark = " (partial: run in progress or unfinished)" if part.facts.get("partial") else ""
    return f"{part.facts['title']}{mark}"


def partial(part: Part) -> str | None:
    """The partial report's banner, or None for a finished run."""
    return live.banner(part.facts["states"]) if part.facts.get("partial") else None


def weights(part: Part) -> str:
    """The weights, and for a stand-in pretrained here what it learnt and what that reveals
    about the class (issue 12: the AU stand-in is supervised, and the report must say so)."""
    out = f"`{part.facts['weights']}` ({part.facts['backbone']})"
    pre = part.facts.get("pretrain")
    if isinstance(pre, dict) and pre.get("targets"):
        kind = "label-free" if pre.get("label_free", True) else "**supervised, not label-free**"
        out += f": pretrained here on {pre['targets']} ({kind}; reveals {pre.get('reveals', '?')})"
    return out


def blocks(part: Part) -> list[Block]:
    banner = partial(part)
    return [
        h1(f"fer_ray report: {title(part)}"),
        *([p(f"**Partial report**: {banner}")] if banner else []),
        p(f"Stages: {stages(part)}."),
        p(f"Model weights: {weights(part)}."),
    ]


def glance(part: Part) -> list[Glance]:
    banner = partial(part)
    extra: list[Glance] = [("Partial report", banner)] if banner else []
    return [("Weights", weights(part)), ("Stages", stages(part)), *extra]
