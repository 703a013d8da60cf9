"""Stored stage results → report tables. Reads files only, never a trial's memory.

``build_report(run_dir, out_dir)`` is what both ``python -m fer_ray.tune`` (at the
end of a run) and ``python -m fer_ray.report`` (afterwards, no Ray) call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml


class ReportError(FileNotFoundError):
    """The run directory lacks what the report needs."""


@dataclass
class Report:
    run_dir: Path
    config: dict[str, Any]
    run: dict[str, Any]
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


def _json(p: Path) -> Any:
    return json.loads(p.read_text()) if p.is_file() else None


def _csv(p: Path) -> pd.DataFrame | None:
    return pd.read_csv(p) if p.is_file() else None


def data_tables(prep: Path, test_idx: np.ndarray | None) -> dict[str, pd.DataFrame]:
    """Counts per class and split (train+val pool vs shared test holdout)."""
    m = _csv(prep / "manifest.csv")
    if m is None:
        return {}
    m["part"] = "train+val"
    if test_idx is not None:
        m.loc[test_idx, "part"] = "test"
    counts = pd.crosstab(m["label_name"], m["part"], margins=True, margins_name="total")
    fb = m.groupby("label_name")["fallback"].sum().astype(int)
    counts["fallback crops"] = fb.reindex(counts.index).fillna(int(m["fallback"].sum())).astype(int)
    return {"data_counts": counts.reset_index().rename(columns={"label_name": "class"})}


def grid_tables(grid: Path) -> dict[str, pd.DataFrame]:
    t2 = _csv(grid / "table2.csv")
    if t2 is None:
        return {}
    pivot = (
        t2.assign(cell=[f"{m:.4f} ± {s:.4f}" for m, s in zip(t2["mean"], t2["std"])])
        .pivot(index="lr", columns="hidden", values="cell")
        .sort_index(ascending=False)
    )
    pivot.columns = [f"hidden {c}" for c in pivot.columns]
    out = {"table2": t2, "table2_pivot": pivot.reset_index()}
    trials = _csv(grid / "trials.csv")
    if trials is not None:
        out["grid_trials"] = trials
    return out


def ensemble_tables(ens: Path) -> dict[str, pd.DataFrame]:
    members = _csv(ens / "members.csv")
    return {"ensemble_members": members} if members is not None else {}


def load(run_dir: str | Path) -> Report:
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise ReportError(f"{run_dir} is not a fer_ray run directory (no config.yaml)")
    rep = Report(run_dir, yaml.safe_load(cfg_path.read_text()), _json(run_dir / "run.json") or {})
    stages = ["prepare", "grid", "ensemble", "analyse"]
    if rep.config.get("descriptors", {}).get("enabled"):
        stages.append("descriptors")
    for stage in stages:
        done = _json(run_dir / stage / "done.json")
        rep.stages[stage] = {"done": done is not None, **(done or {})}
    rep.facts["prepare"] = _json(run_dir / "prepare" / "summary.json")
    rep.facts["features"] = _json(run_dir / "grid" / "features.json")
    rep.facts["chosen"] = _json(run_dir / "grid" / "chosen.json")
    rep.facts["ensemble"] = _json(run_dir / "ensemble" / "summary.json")
    test_idx = None
    member0 = run_dir / "ensemble" / "members" / "member_00" / "member.npz"
    if member0.is_file():
        with np.load(member0) as z:
            test_idx = z["test_idx"]
    rep.tables.update(data_tables(run_dir / "prepare", test_idx))
    rep.tables.update(grid_tables(run_dir / "grid"))
    rep.tables.update(ensemble_tables(run_dir / "ensemble"))
    for name in ("grid", "ensemble"):
        c = _csv(run_dir / name / "curves.csv")
        if c is not None:
            rep.tables[f"{name}_curves"] = c
    nodes = []
    for t in ("grid_trials", "ensemble_members"):
        if t in rep.tables and "node" in rep.tables[t]:
            nodes.append(rep.tables[t]["node"].value_counts().rename(t))
    if nodes:
        rep.tables["nodes"] = (
            pd.concat(nodes, axis=1).fillna(0).astype(int).rename_axis("node").reset_index()
        )
    from fer_ray.report.analysis_tables import analysis_tables  # imports this module

    analysis_tables(rep)
    return rep


def build_report(run_dir: str | Path, out_dir: str | Path) -> Path:
    from fer_ray.report.render import render

    rep = load(run_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    render(rep, out)
    return out
