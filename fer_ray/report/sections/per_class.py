"""Where the errors are: precision/recall/F1 per class (members' mean and soft vote), confusion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer_ray.layout import SUMMARY, Analyse
from fer_ray.report.figures import save, subplots
from fer_ray.report.page import Block, h2, img, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "per_class"
CONFUSION = "confusion_vote.png"


def summary(pc: pd.DataFrame) -> pd.DataFrame:
    """One row per class: the members' mean beside the soft vote's."""
    is_vote = pc["member"].astype(str) == "vote"
    avg = pc[~is_vote].groupby("class", sort=False)[["precision", "recall", "f1", "support"]].mean()
    vote = pc[is_vote].set_index("class")[["precision", "recall", "f1"]]
    return pd.concat([avg.add_prefix("members_"), vote.add_prefix("vote_")], axis=1).reset_index()


def load(run: Run) -> Part | None:
    if run.json(Analyse.DIR, SUMMARY) is None:  # the analyse stage writes its summary last
        return None
    pc = run.need_csv(Analyse.DIR, Analyse.PER_CLASS)
    tables = {
        "per_class": pc,
        "confusion_vote": run.need_csv(Analyse.DIR, Analyse.CONFUSION_VOTE),
        "per_class_summary": summary(pc),
    }
    return Part(tables=tables)


def plots(part: Part, out: Path) -> None:
    c = part.tables["confusion_vote"].set_index("true")
    fig, ax = subplots(figsize=(5.5, 4.5))
    ax.imshow(c.to_numpy(), cmap="Blues")
    ax.set_xticks(range(len(c.columns)), c.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(c.index)), c.index)
    for (i, j), v in np.ndenumerate(c.to_numpy()):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (soft vote, test set)")
    save(fig, out / CONFUSION)


def blocks(part: Part) -> list[Block]:
    return [
        h2("Per-class results"),
        table(part.tables["per_class_summary"]),
        img(CONFUSION, "Confusion matrix of the soft vote"),
    ]
