"""ensemble.backbones: the architectures' members trained on the same splits and compared on
the shared test set (seed 002 tests on its own 10 % split): member mean and soft vote with
subject intervals, the vote's recall per class, side by side."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fer_ray.layout import SUMMARY, Ensemble, Prepare
from fer_ray.report import uncertainty as u
from fer_ray.report.page import Block, h2, p, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "architectures_test"


def load(run: Run) -> Part | None:
    archs = run.csv(Ensemble.DIR, Ensemble.ARCHS)
    if archs is None:
        return None
    recall = run.need_csv(Ensemble.DIR, Ensemble.ARCH_RECALL)
    names = (run.json(Prepare.DIR, SUMMARY) or {}).get("class_names") or []
    if names:
        recall = recall.assign(**{"class": [names[int(i)] for i in recall["class_index"]]})
    return Part(
        tables={"architectures_test": archs, "architectures_test_recall": recall},
        facts={"noun": u.group_noun(run), "method": u.run_method(run)},
    )


def plots(part: Part, out: Path) -> None:
    """No plots (the confusion counts are in architecture_confusion.csv)."""


def blocks(part: Part) -> list[Block]:
    a = part.tables["architectures_test"]
    shown = pd.DataFrame(
        {
            "backbone": a["backbone"],
            "members": a["members"],
            "member mean": [u.accuracy(r.test_acc_mean, r.member_low, r.member_high)
                            for r in a.itertuples()],
            "± std across members": [f"{100 * s:.2f}" for s in a["test_acc_std"]],
            "soft vote": [u.accuracy(r.vote_acc, r.vote_low, r.vote_high) for r in a.itertuples()],
        }
    )  # fmt: skip
    rec = part.tables["architectures_test_recall"]
    col = "class" if "class" in rec.columns else "class_index"
    wide = rec.pivot(index="backbone", columns=col, values="recall").reset_index()
    return [
        h2("Architectures on the test set (ensemble.backbones)"),
        p(
            "Every architecture's members trained with the same seeds and splits (epoch chosen"
            " on validation), scored on the shared test holdout; brackets: 95 %"
            f" {u.method_short(part.facts.get('method'), part.facts['noun'])}."
        ),
        table(shown),
        p("Recall of each architecture's soft vote per class:"),
        table(wide),
    ]
