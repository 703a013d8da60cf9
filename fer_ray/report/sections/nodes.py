"""Where trials ran: trials and members per node, so a cluster run shows its spread."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fer_ray.layout import Ensemble, Grid
from fer_ray.report.page import Block, h2, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "nodes"
SOURCES = (
    ("grid_trials", Grid.DIR, Grid.TRIALS),
    ("ensemble_members", Ensemble.DIR, Ensemble.MEMBERS),
)


def load(run: Run) -> Part | None:
    counts = []
    for column, stage, file in SOURCES:
        df = run.csv(stage, file)
        if df is not None and "node" in df:
            counts.append(df["node"].value_counts().rename(column))
    if not counts:
        return None
    nodes = pd.concat(counts, axis=1).fillna(0).astype(int).rename_axis("node").reset_index()
    return Part(tables={"nodes": nodes})


def plots(part: Part, out: Path) -> None:
    """No plots."""


def blocks(part: Part) -> list[Block]:
    return [h2("Where trials ran"), table(part.tables["nodes"])]
