"""The config and command that made the run: a config is the whole truth of a run."""

from __future__ import annotations

from pathlib import Path

import yaml

from fer_ray.report.page import Block, code, h2, p
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "config"


def load(run: Run) -> Part:
    """Always present: ``open_run`` refuses a directory without a config."""
    return Part(facts={"config": run.config, "command": run.info.get("command", "?")})


def plots(part: Part, out: Path) -> None:
    """No plots."""


def blocks(part: Part) -> list[Block]:
    return [
        h2("Config"),
        code(yaml.safe_dump(part.facts["config"], sort_keys=False)),
        p(f"Command: `{part.facts['command']}`"),
    ]
