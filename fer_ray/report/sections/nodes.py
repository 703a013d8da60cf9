"""Where the work ran: trials, tasks and seconds per node, so a cluster run shows its spread.

Every stage stores one row per trial or task in its ``work.csv`` (and the feature bundle's
tasks in ``grid/features.json``); nodes are told apart by Ray's node id, because many nodes
can share one IP (several on one host, or cloud nodes behind one address).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fer_ray import layout
from fer_ray.layout import Grid
from fer_ray.report.page import Block, h2, p, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "nodes"
TRIAL_STAGES = (layout.Grid.DIR, layout.Ensemble.DIR)
TASK_STAGES = (layout.Prepare.DIR, layout.Analyse.DIR, layout.Descriptors.DIR)


def load(run: Run) -> Part | None:
    frames = []
    for stage in (*TRIAL_STAGES, *TASK_STAGES):
        df = run.csv(stage, layout.WORK)
        if df is not None and len(df):
            frames.append(df.assign(stage=stage))
    feats = run.json(Grid.DIR, Grid.FEATURES) or {}
    if feats.get("work"):
        frames.append(pd.DataFrame(feats["work"]).assign(stage="features"))
    if not frames:
        return None
    work = pd.concat(frames, ignore_index=True)
    work["node_id"] = work["node_id"].astype(str)
    work["kind"] = ["trials" if s in TRIAL_STAGES else "tasks" for s in work["stage"]]
    counts = work.pivot_table(
        index=["node_id", "node_ip"], columns="kind", values="unit", aggfunc="count", fill_value=0
    )
    for kind in ("trials", "tasks"):
        if kind not in counts:
            counts[kind] = 0
    seconds = work.groupby(["node_id", "node_ip"])["seconds"].sum().round(1)
    nodes = counts[["trials", "tasks"]].assign(seconds=seconds).reset_index()
    nodes.insert(0, "node", nodes["node_id"].str[:12])
    nodes = nodes.drop(columns="node_id").sort_values(["node_ip", "node"]).reset_index(drop=True)
    return Part(tables={"nodes": nodes}, facts={"n_nodes": len(nodes)})


def plots(part: Part, out: Path) -> None:
    """No plots."""


def blocks(part: Part) -> list[Block]:
    n = part.facts["n_nodes"]
    return [
        h2("Where the work ran"),
        p(
            f"{n} node(s), told apart by Ray's node id (first 12 hex digits): trials (grid and "
            "ensemble), tasks (preprocessing, features, analyses) and the seconds they took."
        ),
        table(part.tables["nodes"]),
    ]
