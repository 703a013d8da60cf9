"""Which code, versions and machine made these numbers (``run.json``): at the page's end."""

from __future__ import annotations

from pathlib import Path

from fer_ray.report.page import Block, h2, p
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "provenance"


def load(run: Run) -> Part:
    """Always present; a run without ``run.json`` says ``unknown`` and ``?``."""
    return Part(facts={"run_dir": str(run.root), "info": run.info})


def plots(part: Part, out: Path) -> None:
    """No plots."""


def blocks(part: Part) -> list[Block]:
    info = part.facts["info"]
    versions = info.get("versions", {})
    return [
        h2("Provenance"),
        p(
            f"Run directory `{part.facts['run_dir']}` · git commit "
            f"`{info.get('git_commit', 'unknown')}` · started {info.get('started', '?')} on "
            f"{info.get('host', '?')} · " + ", ".join(f"{k} {v}" for k, v in versions.items())
        ),
    ]
