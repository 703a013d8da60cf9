"""Seed 000's Table 2: validation accuracy per lr × hidden over grouped folds, and the choice.

Each cell shows the paper's number (mean ± std over folds) and, where the grid stage stored
it, the pooled out-of-fold accuracy (every validation image of every fold scored once) with its
95 % interval over groups (``statistics.interval``). A run made before the intervals shows mean ± std only.

The chosen cell's pooled interval is computed after picking that cell as the best on the same
images, so it is marked "after selection"; the best cell is also paired against the runner-up
on the same out-of-fold images (``grid/oof.csv``), which says whether the pick beats the next
cell at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fer_ray.analysis.search import METRIC, importances
from fer_ray.analysis.selection import runner_up_pairing
from fer_ray.layout import Grid
from fer_ray.report import search_figures
from fer_ray.report import uncertainty as u
from fer_ray.report.figures import save, subplots, text_colour
from fer_ray.report.page import Block, h2, img, p, pct, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "grid"
HEATMAP = "grid_heatmap.png"
PARALLEL = "grid_parallel.png"  # with searched keys beside lr and hidden
KEYS_HEATMAP = "grid_keys_heatmap.png"
INTERVAL_COLUMNS = ("pooled", "low", "high", "n_items", "n_groups")


def has_intervals(t2: pd.DataFrame) -> bool:
    return all(c in t2.columns for c in INTERVAL_COLUMNS) and bool(t2["pooled"].notna().all())


def cell(row: dict[str, Any], intervals: bool) -> str:
    """``15.08 ± 2.75; pooled 15.08 [8.73, 20.63]`` (percent, as the paper prints Table 2);
    a cell with a diverged fold reads ``diverged (k of n folds)``."""
    if row.get("diverged", 0) and row["diverged"] > 0:
        return f"diverged ({row['diverged']:.0f} of {row['count']:.0f} folds)"
    text = f"{100 * row['mean']:.2f} ± {100 * row['std']:.2f}"
    if intervals:
        text += f"; pooled {100 * row['pooled']:.2f} {u.bracket(row['low'], row['high'])}"
    return text


def rows_by_lr(t2: pd.DataFrame) -> pd.DataFrame:
    """With grid.backbones, a Table 2 row is a backbone × lr (label "resnet18 · 0.001")."""
    if "backbone" not in t2.columns:
        return t2
    return t2.assign(lr=[f"{b} · {lr:g}" for b, lr in zip(t2["backbone"], t2["lr"])])


def searched(t2: pd.DataFrame) -> list[str]:
    """The config keys the search varied beside lr and hidden (``search.space``)."""
    return [c for c in t2.columns if "." in c]


def pivot(t2: pd.DataFrame) -> pd.DataFrame:
    """Table 2 as the paper prints it: lr rows (largest first), hidden columns, mean ± std in
    percent, then the pooled accuracy with its interval where stored. When the search varied
    more keys, one row per cell instead, best first."""
    intervals = has_intervals(t2)
    t2 = rows_by_lr(t2)
    cells = t2.assign(cell=[cell(r, intervals) for r in t2.to_dict("records")])
    if keys := searched(t2):
        flat = cells.sort_values("mean", ascending=False, na_position="last", kind="stable")
        return flat[["lr", "hidden", *keys, "cell"]].rename(columns={"cell": "val accuracy"})
    piv = cells.pivot(index="lr", columns="hidden", values="cell").sort_index(ascending=False)
    piv.columns = [f"hidden {c}" for c in piv.columns]
    return piv.reset_index()


def load(run: Run) -> Part | None:
    t2 = run.csv(Grid.DIR, Grid.TABLE2)
    if t2 is None:
        return None
    part = Part(
        tables={"table2": t2, "table2_pivot": pivot(t2)},
        facts={
            "chosen": run.json(Grid.DIR, Grid.CHOSEN),
            "folds": run.config["grid"]["folds"],
            "noun": u.group_noun(run),
            "method": u.run_method(run),
        },
    )
    for key, file in (("grid_trials", Grid.TRIALS), ("grid_curves", Grid.CURVES)):
        df = run.csv(Grid.DIR, file)
        if df is not None:
            part.tables[key] = df
    if searched(t2):  # which keys move the score: the model-free share over the cells
        cells = t2.rename(columns={"mean": METRIC}).assign(complete=t2["mean"].notna())
        imp = importances(cells, {}, fanova=False)
        if len(imp):
            part.tables["grid_importance"] = imp
    oof = run.csv(Grid.DIR, Grid.OOF)
    if oof is not None and t2["mean"].notna().sum() > 1 and has_intervals(t2):
        pair = runner_up_pairing(t2, oof, int(run.config.get("seed", 0)), u.run_method(run))
        part.facts["runner_up"] = pair
        part.tables["grid_runner_up"] = runner_up_table(pair)
    return part


def runner_up_table(pair: dict[str, Any]) -> pd.DataFrame:
    """The paired difference best - runner-up as one row (fractions), with McNemar's counts."""
    d, mc = pair["difference"], pair["mcnemar"]
    return pd.DataFrame(
        [
            {
                "best": label(pair["best"]),
                "runner_up": label(pair["runner_up"]),
                "difference": d["estimate"],
                "low": d["low"],
                "high": d["high"],
                "n_images": d["n_items"],
                "n_groups": d["n_groups"],
                "only_best_right": mc["b"],
                "only_runner_up_right": mc["c"],
            }
        ]
    )


def label(c: dict[str, Any]) -> str:
    bb = f"{c['backbone']} · " if "backbone" in c else ""
    more = "".join(f", {k} {v}" for k, v in c.items() if "." in k)
    return f"{bb}lr {c['lr']:g}, hidden {c['hidden']}{more}"


def runner_up_text(pair: dict[str, Any], noun: str) -> str:
    """Best cell - runner-up on the same images: is the pick better than the next cell?"""
    d, mc = pair["difference"], pair["mcnemar"]
    return (
        f"The best cell ({label(pair['best'])}) against the runner-up "
        f"({label(pair['runner_up'])}), paired on the same out-of-fold images, "
        f"{u.sample(d['n_items'], d['n_groups'], noun, 'validation images')}: "
        f"{u.difference(d['estimate'], d['low'], d['high'])}, "
        f"{u.verdict(d['low'], d['high'])}; the two disagree on {mc['n_discordant']} images "
        f"(only the best right on {mc['b']}, only the runner-up on {mc['c']})."
    )


def plots(part: Part, out: Path) -> None:
    t2 = rows_by_lr(part.tables["table2"])
    keys = searched(t2)
    intervals = has_intervals(t2) and not keys
    if keys:  # each lr x hidden square shows its best cell over the other searched keys
        t2 = t2.groupby(["lr", "hidden"], as_index=False)["mean"].max()
    idx = t2.set_index(["lr", "hidden"])
    piv = t2.pivot(index="lr", columns="hidden", values="mean").sort_index(ascending=False)
    fig, ax = subplots(figsize=(max(5.0, 1.6 * piv.shape[1] + 2.0), 4))
    im = ax.imshow(piv.to_numpy(), cmap="viridis")
    ax.set_xticks(range(piv.shape[1]), [str(c) for c in piv.columns])
    ax.set_yticks(range(piv.shape[0]), [i if isinstance(i, str) else f"{i:g}" for i in piv.index])
    ax.set_xlabel("hidden units")
    ax.set_ylabel("learning rate")
    for (i, j), v in np.ndenumerate(piv.to_numpy()):
        text = f"{v:.3f}"
        if intervals:
            r = idx.loc[(piv.index[i], piv.columns[j])]
            text += f"\n[{r['low']:.3f}, {r['high']:.3f}]"
        cell = im.cmap(im.norm(v))[:3] if v == v else (1.0, 1.0, 1.0)  # NaN: a diverged cell
        ax.text(j, i, text, ha="center", va="center", color=text_colour(cell), fontsize=8)
    fig.colorbar(im, ax=ax, label="mean val accuracy")
    ax.set_title(
        "Grid search: mean over folds"
        + ("\n[pooled accuracy's 95 % interval]" if intervals else "")
        + (f"\n(best over {', '.join(keys)})" if keys else "")
    )
    save(fig, out / HEATMAP)
    full = part.tables["table2"]
    if keys and full["mean"].notna().sum() >= 2:
        names = ["lr", "hidden", *keys]
        cells = full.rename(columns={"mean": METRIC})
        search_figures.parallel(cells, names, METRIC, out / PARALLEL)
        a, b = search_figures.top_two(part.tables.get("grid_importance"), names)
        search_figures.heat(cells, a, b, METRIC, out / KEYS_HEATMAP)


def sample_line(t2: pd.DataFrame, noun: str) -> str:
    """n behind the pooled accuracies (the same in every cell unless a trial failed)."""
    items, groups = t2["n_items"].astype(int), t2["n_groups"].astype(int)
    if items.nunique() == 1 and groups.nunique() == 1:
        return u.sample(int(items.iloc[0]), int(groups.iloc[0]), noun, "validation images")
    return (
        f"{items.min()}-{items.max()} validation images of {groups.min()}-{groups.max()} "
        f"{noun} per cell (one image = {100 / items.max():.2f}-{100 / items.min():.2f} points)"
    )


def chosen_line(chosen: dict[str, Any], t2: pd.DataFrame, intervals: bool) -> str:
    line = (
        f"Chosen config: {label(chosen)} "
        f"(best mean {pct(chosen['mean_val_acc'])} ± {pct(chosen['std_val_acc'])}"
    )
    hit = np.isclose(t2["lr"], chosen["lr"]) & (t2["hidden"] == chosen["hidden"])
    for k in searched(t2):
        hit &= t2[k] == chosen.get(k)
    row = t2[hit]
    if intervals and len(row):
        r = row.iloc[0]
        line += f"; pooled {u.accuracy(r['pooled'], r['low'], r['high'])}"
        if chosen.get("rule", "best") != "paper":
            line += (
                " after selection: the cell was picked as the best on these same images, so "
                "this interval is optimistic"
            )
    return line + "; ties go to the simpler model)."


def blocks(part: Part) -> list[Block]:
    chosen = part.facts["chosen"]
    t2 = part.tables["table2"]
    intervals = has_intervals(t2)
    text = (
        "Validation accuracy (%) at the last epoch, mean ± std over "
        f"{part.facts['folds']} grouped folds (the paper's Table 2), per learning rate × "
        "hidden units"
        + (f", and {', '.join(searched(t2))} (search.space)." if searched(t2) else ".")
    )
    if intervals:
        noun = part.facts["noun"]
        text += (
            " After it, each cell's pooled out-of-fold accuracy with its interval: every "
            f"validation image of every fold scored once, {sample_line(t2, noun)}. "
            + u.caveat(int(t2["n_groups"].min()), noun, method=part.facts.get("method"))
            + " The cells are scored on the same images, so overlapping intervals do not by "
            "themselves say that two cells are equal or different."
        )
    b = [h2("Grid search (seed 000, Table 2)"), p(text), table(part.tables["table2_pivot"])]
    if "diverged" in t2 and (bad := t2[t2["diverged"] > 0]).size:
        cells = ", ".join(
            f"{label(r).replace(', hidden', ' / hidden')} ({r['diverged']:.0f} of"
            f" {r['count']:.0f} folds)"
            for r in bad.to_dict("records")
        )
        b.append(p(f"**Diverged** (non-finite training loss: no score, never chosen): {cells}."))
    if chosen:
        b.append(p(chosen_line(chosen, t2, intervals)))
    if "runner_up" in part.facts:
        b += [
            p(runner_up_text(part.facts["runner_up"], part.facts["noun"])),
            table(part.tables["grid_runner_up"]),
        ]
    b.append(img(HEATMAP, "Grid: mean validation accuracy per cell"))
    if searched(t2) and t2["mean"].notna().sum() >= 2:
        if "grid_importance" in part.tables:
            b.append(p("Importance of each searched key (share of the score's variance between"
                       " its values, over the cells):"))  # fmt: skip
            b.append(table(part.tables["grid_importance"][["parameter", "importance"]]))
        b.append(img(PARALLEL, "Every cell across the searched keys"))
        b.append(img(KEYS_HEATMAP, "The score over the two most important keys"))
    return b
