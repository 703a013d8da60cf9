"""Seed 004's training choices: class weights, the learning rate (LR finder), the phases.

Reads ``ensemble/summary.json["training"]`` (written by the ensemble stage for every run) and,
when the lr came from the LR range test (``train.lr: auto``), ``ensemble/lr_finder.json``.
The section appears only when some choice is not at its default (``training.default`` false):
a default run trains as the ensemble section already says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fer_ray.layout import SUMMARY, Ensemble
from fer_ray.report.figures import legend_outside, save, subplots
from fer_ray.report.page import Block, h2, img, p, table, ul
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "training"
LR_PLOT = "training_lr_finder.png"

RULES = {
    "none": "none (unweighted cross-entropy)",
    "balanced": "balanced, n / (C · n_c) on each member's own training split (member 0 shown)",
    "seed004": 'seed 004\'s hand-picked weights (Table 1, "Corresponding %")',
    "list": "given in the config, one per class",
}
SOURCES = {
    "grid": "the grid's choice",
    "config": "set in the config (train.lr)",
    "auto": "the LR range test (train.lr: auto) on member 0's training split",
}
LR_RULE_WORDS = {
    "min_div10": "the lr of the lowest smoothed loss, divided by 10",
    "steepest": "the lr where the smoothed loss falls fastest",
}


def load(run: Run) -> Part | None:
    summary = run.json(Ensemble.DIR, SUMMARY) or {}
    training = summary.get("training")
    if not training or training.get("default", True):
        return None
    tables = {"training_phases": phase_table(training["phases"])}
    weights = (training.get("class_weights") or {}).get("member_0")
    if weights:
        tables["training_class_weights"] = pd.DataFrame(
            {"class": list(weights), "weight": list(weights.values())}
        )
    finder = None
    if training["lr"].get("source") == "auto":
        finder = run.json(Ensemble.DIR, Ensemble.LR_FINDER_JSON)
    return Part(tables=tables, facts={"training": training, "finder": finder})


def phase_table(phases: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per phase: epochs, lr, what trains, and the per-group rates."""
    rows = []
    for i, ph in enumerate(phases, 1):
        groups = ph.get("groups") or []
        rows.append(
            {
                "phase": i,
                "epochs": ph["epochs"],
                "lr": f"{ph['lr']:.3g}",
                "trains": ph["train"],
                "rates": "; ".join(
                    f"{g['layers']} {g['lr']:.3g} (x{g['multiplier']:.3g})" for g in groups
                )
                or "every trainable parameter at lr",
            }
        )
    return pd.DataFrame(rows)


def plots(part: Part, out: Path) -> None:
    finder = part.facts["finder"]
    if not finder:
        return
    lrs = np.asarray(finder["lrs"], dtype=float)
    loss = np.asarray([np.nan if v is None else v for v in finder["losses"]], dtype=float)
    smooth = np.asarray([np.nan if v is None else v for v in finder["smoothed"]], dtype=float)
    picked = float(part.facts["training"]["lr"]["value"])
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(lrs, loss, color="0.75", lw=1, label="batch loss")
    ax.plot(lrs, smooth, color="tab:blue", label="smoothed loss")
    ax.axvline(picked, color="tab:red", ls="--", label=f"picked lr {picked:.2e}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    shown = smooth[np.isfinite(smooth)]
    if shown.size and shown.max() > shown.min():
        pad = 0.05 * (shown.max() - shown.min())
        ax.set_ylim(shown.min() - pad, shown.max() + pad)
    ax.set_title("LR range test (seed 004 Fig. 4)")
    legend_outside(ax)
    save(fig, out / LR_PLOT)


def _phase_line(i: int, ph: dict[str, Any]) -> str:
    what = (
        "only the head trains (the tail's convs and their BatchNorm statistics frozen)"
        if ph["train"] == "head"
        else "the whole trained tail (the last model.train_last_convs convs + head)"
    )
    line = f"Phase {i}: {ph['epochs']} epochs at lr {ph['lr']:.3g}"
    if "lr_from" in ph:
        line += f" (`{ph['lr_from']}`)"
    line += f"; {what}"
    groups = ph.get("groups") or []
    if "lr_low" in ph and groups:
        rates = ", ".join(f"{g['layers']} {g['lr']:.3g}" for g in groups)
        line += (
            f"; discriminative rates from lr × {ph['lr_low']:g} (earliest group) up to lr"
            f" (head): {rates}"
        )
    return line + "."


def blocks(part: Part) -> list[Block]:
    t = part.facts["training"]
    cw = t.get("class_weights") or {}
    rule = cw.get("rule", "none")
    weights = cw.get("member_0")
    text = f"**Class weights**: {RULES.get(rule, rule)}"
    if weights:
        text += ": " + ", ".join(f"{k} {v:.3g}" for k, v in weights.items())
    lr = t["lr"]
    text += f". **Learning rate** (phase 1): {lr['value']:.3g}, from {SOURCES[lr['source']]}"
    if lr["source"] == "auto":
        text += f", rule {lr.get('rule')} ({LR_RULE_WORDS.get(lr.get('rule'), '')})"
        if lr.get("diverged"):
            text += "; the test stopped when the loss diverged"
    if "grid_lr" in lr:
        text += f"; the grid had chosen {lr['grid_lr']:.3g}"
    b = [
        h2("Training choices (seed 004)"),
        p(text + "."),
        ul([_phase_line(i, ph) for i, ph in enumerate(t["phases"], 1)]),
        table(part.tables["training_phases"]),
    ]
    if "training_class_weights" in part.tables:
        b.append(table(part.tables["training_class_weights"]))
    if part.facts["finder"]:
        b.append(img(LR_PLOT, "LR range test: training loss against lr, the picked lr marked"))
    return b
