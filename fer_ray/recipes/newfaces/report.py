"""Seed 002's new faces: the train-on × test-on matrix (stage ``newfaces``), with intervals.

Seed 002 reports about 90 % on a test split of the data sets it trained on and 34.7 % on one
new person's photographs; the matrix puts the within-data-set accuracy (diagonal) beside the
cross-data-set one on the same held-out subjects, each the soft vote of the stage's members
with a 95 % interval over the test set's subjects (``statistics.interval``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer_ray.layout import SUMMARY, NewFaces
from fer_ray.report import uncertainty as u
from fer_ray.report.figures import save, subplots
from fer_ray.report.page import Block, h2, img, p, pct, table, ul
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "newfaces"
FIGURE = "newfaces_matrix.png"


def _test_label(test: str) -> str:
    return f"all of {test[:-4]}" if test.endswith(":all") else f"{test} test subjects"


def wide(matrix: pd.DataFrame) -> pd.DataFrame:
    """One row per training data set, one column per test set: the soft vote's accuracy with
    its interval, then the members' mean ± std."""
    rows: dict[str, dict[str, str]] = {}
    for r in matrix.to_dict("records"):
        text = (
            f"{u.accuracy(r['vote_acc'], r['low'], r['high'])}"
            f" (members {pct(r['member_mean'])} ± {100 * r['member_std']:.2f})"
        )
        rows.setdefault(r["train"], {})[_test_label(r["test"])] = text
    out = pd.DataFrame.from_dict(rows, orient="index").fillna("—")
    out.index.name = "trained on"
    return out.reset_index()


def load(run: Run) -> Part | None:
    s = run.json(NewFaces.DIR, SUMMARY)
    if s is None:
        return None
    matrix = run.need_csv(NewFaces.DIR, NewFaces.MATRIX)
    members = run.need_csv(NewFaces.DIR, NewFaces.MEMBERS)
    return Part(
        tables={
            "newfaces_matrix": matrix,
            "newfaces_matrix_wide": wide(matrix),
            "newfaces_members": members,
        },
        facts={"summary": s, "noun": u.group_noun(run), "method": u.run_method(run)},
    )


def plots(part: Part, out: Path) -> None:
    m = part.tables["newfaces_matrix"]
    m = m[~m["test"].str.endswith(":all")]
    trains = list(dict.fromkeys(m["train"]))
    tests = list(dict.fromkeys(m["test"]))
    grid = np.full((len(trains), len(tests)), np.nan)
    text = np.full(grid.shape, "", dtype=object)
    for r in m.itertuples():
        i, j = trains.index(r.train), tests.index(r.test)
        grid[i, j] = 100 * r.vote_acc
        text[i, j] = f"{100 * r.vote_acc:.1f} %\n[{100 * r.low:.1f}, {100 * r.high:.1f}]"
    fig, ax = subplots(figsize=(1.8 + 2.2 * len(tests), 1.2 + 1.3 * len(trains)))
    im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100)
    ax.set_xticks(range(len(tests)), [f"test: {t}" for t in tests])
    ax.set_yticks(range(len(trains)), [f"train: {t}" for t in trains])
    for (i, j), t in np.ndenumerate(text):
        ax.text(j, i, t, ha="center", va="center", fontsize=9, color="w")
    fig.colorbar(im, ax=ax, label="soft-vote accuracy (%)")
    ax.set_title("New faces: train on one data set, test on each")
    save(fig, out / FIGURE)


def headline(matrix: pd.DataFrame) -> list[str]:
    """Per test set: within-data-set vs cross-data-set accuracy on the same images."""
    lines = []
    held = matrix[~matrix["test"].str.endswith(":all")]
    for test, d in held.groupby("test", sort=False):
        within = d[d["train"] == test]
        cross = d[d["train"] != test]
        if within.empty or cross.empty:
            continue
        w, c = within.iloc[0], cross.iloc[0]
        lines.append(
            f"{test} test subjects ({int(w['n_items'])} images of {int(w['n_groups'])}): "
            f"trained on {test} **{u.accuracy(w['vote_acc'], w['low'], w['high'])}**, "
            f"trained on {c['train']} **{u.accuracy(c['vote_acc'], c['low'], c['high'])}** "
            f"({100 * (c['vote_acc'] - w['vote_acc']):+.2f} points)"
        )
    return lines


def blocks(part: Part) -> list[Block]:
    s = part.facts["summary"]
    doms = s["domains"]
    dom_lines = [
        f"**{d['name']}**: {d['describe']}; {d['n_images']} images of {d['n_groups']}"
        f" {part.facts['noun']}, test holdout {d['n_test']} images of {d['n_test_groups']}"
        + (
            f"; left out: {d['dropped_images']} images of classes {', '.join(d['dropped_classes'])}"
            if d["dropped_images"]
            else ""
        )
        for d in doms
    ]
    matrix = part.tables["newfaces_matrix"]
    grouped = matrix[matrix["unit"] == "group"]
    method = part.facts.get("method")
    caveat = (
        u.caveat(int(grouped["n_groups"].min()), part.facts["noun"], method=method)
        if len(grouped)
        else ""
    )
    if (matrix["unit"] == "item").any():
        caveat += (
            " Cells whose test set holds one group only resample images instead: "
            + u.caveat(1, part.facts["noun"], unit="item", method=method).split(": ", 1)[1]
        )
    m, e = s["members"], s["epochs"]
    return [
        h2("New faces: train on one data set, test on another (seed 002)"),
        p(
            f"Seed 002 got about {pct(s['paper_test'])} on a test split of the data sets it"
            f" trained on (CK+ and JAFFE) and {pct(s['paper_new_faces'])} on photographs of"
            " one new person, blaming new lighting and angles. Here a network is trained on"
            f" each data set ({m} seed{'s' if m != 1 else ''} each, the grid's choice:"
            f" {s['backbone']}, lr {s['lr']:g}, hidden {s['hidden']}, {e}"
            f" epoch{'s' if e != 1 else ''}, recipe"
            f" {s['recipe']}, weights {s['weights']}; epoch selected on a grouped validation"
            " split, seed 002's early stopping) and scored on both data sets' held-out"
            " subjects, so each column compares the two trainings on the very same images."
            f" Shared classes: {', '.join(s['classes'])}."
        ),
        ul(dom_lines),
        p("Within vs cross, on the same test images (soft vote, 95 % interval):"),
        ul(headline(matrix)),
        table(part.tables["newfaces_matrix_wide"]),
        p(
            caveat + " 'all of X' scores a network on every image of the data set it never"
            " trained on (more images than its test subjects)."
        ),
        img(FIGURE, "Soft-vote accuracy, rows: trained on, columns: tested on"),
    ]
