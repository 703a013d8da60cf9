"""Which code, versions and machine made these numbers (``run.json``), and how long each stage
took against the dry run's estimate (``timing.json``, ``fer_ray.timing``): at the page's end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fer_ray import timing
from fer_ray.report.page import Block, h2, p, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "provenance"


def load(run: Run) -> Part:
    """Always present; a run without ``run.json`` says ``unknown`` and ``?``. The time table
    is this run's last invocation's, when it recorded one."""
    tables = {}
    invocations = timing.read(run.root)
    if invocations and invocations[-1].get("stages"):

        def fmt(v: float | None, spec: str) -> str:
            return "–" if v is None else format(v, spec)

        tables["timing"] = pd.DataFrame(
            [
                {"stage": r["stage"], "estimated s": fmt(r["estimated_s"], ".0f"),
                 "measured s": fmt(r["measured_s"], ".0f"),
                 "measured / estimated": fmt(r["ratio"], ".2f")}
                for r in timing.comparison(invocations[-1])
            ]
        )  # fmt: skip
    return Part(tables=tables, facts={"run_dir": str(run.root), "info": run.info})


def plots(part: Part, out: Path) -> None:
    """No plots."""


def blocks(part: Part) -> list[Block]:
    info = part.facts["info"]
    versions = info.get("versions", {})
    out = [
        h2("Provenance"),
        p(
            f"Run directory `{part.facts['run_dir']}` · git commit "
            f"`{info.get('git_commit', 'unknown')}` · started {info.get('started', '?')} on "
            f"{info.get('host', '?')} · " + ", ".join(f"{k} {v}" for k, v in versions.items())
        ),
    ]
    if "timing" in part.tables:
        out += [
            p(
                "Time per stage in seconds: the dry run's estimate for this invocation (made"
                f" before its first stage) and what it took (`{timing.TIMING}` in the run"
                " directory, which also holds the report's own seconds and the total once the"
                " report is written)."
            ),
            table(part.tables["timing"]),
        ]
    return out
