"""Title and stage status: which stages ran, and on which weights.

In the HTML page this section is the header (``place = "header"``): its glance gives the
weights and the stage status beside the other sections' summary lines. The provenance (git
commit, versions, host) is its own section at the end of the page.

A report written while the run goes on (or of a run that stopped unfinished) is **partial**:
the title says so and a "Partial report" line says which stages are done, which one runs (its
trials finished of total) and which are pending (``fer_ray.report.live`` reads that from the
stored files). The final report has no such line.

While a partial report has no result yet (no ensemble summary), the header keeps the
headline's slot for the headline: a ``Headline`` line saying the run is still running (first
in the page header, where the departures would otherwise move up) and ``running`` where the
result's big numbers will be. The HTML of a partial report reloads itself every
``REFRESH_S`` seconds (``build``); the final one does not.
"""

from __future__ import annotations

from pathlib import Path

from fer_ray.layout import SUMMARY, Ensemble, Grid
from fer_ray.report import live
from fer_ray.report.page import Block, Glance, Stat, h1, p
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "header"
place = "header"
#: How often a partial report's HTML page reloads itself, in seconds.
REFRESH_S = 30


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
            # the headline's numbers come from the ensemble's summary
            "has_result": bool(run.json(Ensemble.DIR, SUMMARY)),
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


def running(part: Part) -> str | None:
    """What the headline says while a partial report has no result yet, else None."""
    if not part.facts.get("partial") or part.facts.get("has_result"):
        return None
    going = [s.stage for s in part.facts["states"] if s.state in ("running", "pending")]
    return (
        "**running**: no result yet; the soft vote's and the members' test accuracy come when "
        f"the ensemble stage finishes (still to finish: {', '.join(going) or 'none'})"
    )


def result(part: Part) -> list[Stat]:
    """``running`` in the result's place while a partial report has none yet."""
    if running(part) is None:
        return []
    return [("Test accuracy", "running", "no result yet: the run has not reached it")]


def weights(part: Part) -> str:
    """The weights, and for a stand-in pretrained here what it learnt and what that reveals
    about the class (issue 12: the AU stand-in is supervised, and the report must say so)."""
    out = f"`{part.facts['weights']}` ({part.facts['backbone']})"
    pre = part.facts.get("pretrain")
    if isinstance(pre, dict) and pre.get("targets"):
        kind = "label-free" if pre.get("label_free", True) else "**supervised, not label-free**"
        out += f": pretrained here on {pre['targets']} ({kind}; reveals {pre.get('reveals', '?')})"
    return out


def notes(part: Part) -> list[str]:
    """Under the result's numbers: the weights and what they were pretrained on (issue 24: the
    headline numbers come with the pretraining caveat)."""
    return [f"Model weights: {weights(part)}."]


def blocks(part: Part) -> list[Block]:
    banner = partial(part)
    return [
        h1(f"fer_ray report: {title(part)}"),
        *([p(f"**Headline**: {running(part)}")] if running(part) else []),
        *([p(f"**Partial report**: {banner}")] if banner else []),
        p(f"Stages: {stages(part)}."),
        p(f"Model weights: {weights(part)}."),
    ]


def glance(part: Part) -> list[Glance]:
    banner = partial(part)
    extra: list[Glance] = []
    if banner:
        reload = f" This page reloads itself every {REFRESH_S} s until the run finishes."
        extra.append(("Partial report", banner + reload))
    head = running(part)
    headline: list[Glance] = [("Headline", head)] if head else []
    return [*headline, ("Weights", weights(part)), ("Stages", stages(part)), *extra]
