"""Title, provenance and stage status: which code, versions and machine made these numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_ray.layout import DONE, STAGE_DIRS, Descriptors
from fer_ray.report.page import Block, h1, p
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "header"


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
            "run_dir": str(run.root),
            "info": run.info,
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


def blocks(part: Part) -> list[Block]:
    f = part.facts
    info = f["info"]
    versions = info.get("versions", {})
    stages = ", ".join(stage_status(s, d) for s, d in f["stages"].items())
    return [
        h1(f"fer_ray report: {f['title']}"),
        p(
            f"Run directory `{f['run_dir']}` · git commit `{info.get('git_commit', 'unknown')}` · "
            f"started {info.get('started', '?')} on {info.get('host', '?')} · "
            + ", ".join(f"{k} {v}" for k, v in versions.items())
        ),
        p(f"Stages: {stages}."),
        p(f"Model weights: `{f['weights']}` ({f['backbone']})."),
    ]
