"""Where the errors are: precision/recall/F1 per class (members' mean and soft vote), the vote's
recall with its stored 95 % interval (``vote_recall.csv``), and the vote's confusion matrix,
row-normalised (each row: where that true class's test images went, in %, so the diagonal is
the recall), each row's number of images on its label and each cell's number in the colour
that contrasts with the cell. ``confusion_vote.csv`` keeps the counts.

A run made before the analyse stage stored the recall intervals shows the table without them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer_ray.layout import SUMMARY, Analyse
from fer_ray.report import uncertainty as u
from fer_ray.report.figures import save, subplots, text_colour
from fer_ray.report.page import Block, h2, img, p, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "per_class"
CONFUSION = "confusion_vote.png"


def summary(pc: pd.DataFrame, recall: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per class: the members' mean beside the soft vote's; where stored, the vote's
    recall with its interval (``vote_recall_low``/``_high``) and its number of test images."""
    is_vote = pc["member"].astype(str) == "vote"
    avg = pc[~is_vote].groupby("class", sort=False)[["precision", "recall", "f1", "support"]].mean()
    vote = pc[is_vote].set_index("class")[["precision", "recall", "f1"]]
    out = pd.concat([avg.add_prefix("members_"), vote.add_prefix("vote_")], axis=1).reset_index()
    if recall is None:
        return out
    # the estimate beside its interval comes from the same file as the interval
    iv = recall.set_index("class")[["recall", "low", "high", "n"]]
    iv.columns = ["vote_recall", "vote_recall_low", "vote_recall_high", "vote_n_images"]
    out = out.drop(columns="vote_recall").merge(iv, left_on="class", right_index=True, how="left")
    cols = [
        c for c in out.columns if c not in ("vote_recall", "vote_recall_low", "vote_recall_high")
    ]
    at = cols.index("vote_precision") + 1
    moved = ["vote_recall", "vote_recall_low", "vote_recall_high"]
    return out[cols[:at] + moved + cols[at:]]


def load(run: Run) -> Part | None:
    s = run.json(Analyse.DIR, SUMMARY)
    if s is None:  # the analyse stage writes its summary last
        return None
    pc = run.need_csv(Analyse.DIR, Analyse.PER_CLASS)
    recall = run.csv(Analyse.DIR, Analyse.VOTE_RECALL)
    tables = {
        "per_class": pc,
        "confusion_vote": run.need_csv(Analyse.DIR, Analyse.CONFUSION_VOTE),
        "per_class_summary": summary(pc, recall),
    }
    facts = {
        "recall": recall,
        "n_test_groups": s.get("n_test_groups"),
        "noun": u.group_noun(run),
        "method": u.run_method(run),
    }
    return Part(tables=tables, facts=facts)


def row_shares(counts: pd.DataFrame) -> pd.DataFrame:
    """Each row of a confusion matrix as fractions of its total (a row without images: NaN)."""
    totals = counts.sum(axis=1)
    return counts.div(totals.where(totals > 0), axis=0)


CMAP = "Blues"


def cell_labels(counts: pd.DataFrame) -> list[tuple[int, int, str, str]]:
    """``(row, column, text, colour)`` of each cell's label on the row-normalised matrix:
    the percentage, rounded, in black or white, whichever contrasts more with the cell."""
    from matplotlib import colormaps

    cmap = colormaps[CMAP]
    shares = row_shares(counts).to_numpy(dtype=float)
    out = []
    for (i, j), v in np.ndenumerate(shares):
        if np.isnan(v):
            out.append((i, j, "–", "black"))
        else:
            out.append((i, j, f"{100 * v:.0f}", text_colour(cmap(float(v)))))
    return out


def plots(part: Part, out: Path) -> None:
    c = part.tables["confusion_vote"].set_index("true")
    n = c.sum(axis=1).astype(int)
    fig, ax = subplots(figsize=(5.5, 4.5))
    im = ax.imshow(100 * row_shares(c).fillna(0).to_numpy(dtype=float), cmap=CMAP, vmin=0, vmax=100)
    ax.set_xticks(range(len(c.columns)), c.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(c.index)), [f"{k} ({v})" for k, v in n.items()])
    for i, j, text, colour in cell_labels(c):
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    fig.colorbar(im, ax=ax, label="% of the true class's images", fraction=0.046, pad=0.04)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (test images)")
    ax.set_title("Confusion matrix (soft vote, test set, % per true class)")
    save(fig, out / CONFUSION)


def recall_text(
    recall: pd.DataFrame, n_groups: int | None, noun: str, method: str | None = None
) -> str:
    """The vote's recall per class with its interval, and what one image is worth in each."""
    shown = "; ".join(
        f"{r['class']} {u.accuracy(r['recall'], r['low'], r['high'])} "
        f"({int(r['n'])} image{'' if int(r['n']) == 1 else 's'})"
        for r in recall.to_dict("records")
        if r["n"]
    )
    n = recall.loc[recall["n"] > 0, "n"].astype(int)
    step = (
        f"one image = {100 / n.max():.2f}-{100 / n.min():.2f} points"
        if n.nunique() > 1
        else f"one image = {100 / n.iloc[0]:.2f} points"
    )
    text = (
        f"Recall of the soft vote per class, with its interval (the class's test images only, "
        f"so {step}): {shown}."
    )
    if n_groups:
        text += f" {u.brief_caveat(int(n_groups), noun, method=method).capitalize()}."
    if (recall["low"] == recall["high"]).any():
        text += " " + u.zero_width(method)
    return text + " The members' columns are means over members, without intervals."


def blocks(part: Part) -> list[Block]:
    b = [h2("Per-class results")]
    recall = part.facts.get("recall")
    if recall is not None and len(recall) and (recall["n"] > 0).any():
        b.append(
            p(
                recall_text(
                    recall,
                    part.facts.get("n_test_groups"),
                    part.facts["noun"],
                    part.facts.get("method"),
                )  # fmt: skip
            )
        )
    return b + [
        table(part.tables["per_class_summary"]),
        img(
            CONFUSION,
            "Confusion matrix of the soft vote, row-normalised: % of each true class's test "
            "images per predicted class (the diagonal is the recall)",
        ),
    ]
