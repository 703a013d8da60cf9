"""Choosing a config from the grid (seed 000's Table 2).

A cell's score is the held-out fold's validation accuracy at the last epoch (no epoch is picked
on the fold that scores it); the chosen config has the best mean over folds, ties going to the
simpler model (fewer hidden units, then the larger learning rate, as seed 000 argues).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from fer_ray.analysis import pred_text
from fer_ray.analysis.intervals import (
    DEFAULT_METHOD,
    accuracy_interval,
    mcnemar,
    paired_difference,
)
from fer_ray.errors import StageError


def cell_keys(frame: pd.DataFrame) -> list[str]:
    """A grid cell: (lr, hidden), the backbone when the grid searched backbones, and the
    searched config keys (``search.space``: the columns with dotted names)."""
    searched = [c for c in frame.columns if "." in c]
    return (["backbone"] if "backbone" in frame.columns else []) + ["lr", "hidden", *searched]


def table2(trials: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std (over folds) of the last-epoch validation accuracy per lr × hidden.

    A trial that diverged (``diverged``: a non-finite training loss) has no accuracy; its cell
    gets a ``diverged`` count of such folds and no mean (a mean over the other folds alone
    would flatter it), so it is never chosen."""
    keys = cell_keys(trials)
    t = trials.groupby(keys)["val_acc"].agg(["mean", "std", "count"]).reset_index()
    t["std"] = t["std"].fillna(0.0)
    if "diverged" in trials.columns:
        flags = trials.assign(diverged=trials["diverged"].fillna(False).astype(bool))
        t = t.merge(flags.groupby(keys)["diverged"].sum().reset_index(), on=keys)
        t["count"] = trials.groupby(keys).size().to_numpy()
        t.loc[t["diverged"] > 0, ["mean", "std"]] = float("nan")
    return t


def ranked(table: pd.DataFrame) -> pd.DataFrame:
    """Cells best first (best mean; ties to 1e-9 → fewer hidden units, then larger lr), without
    the cells that diverged; none left is one clear error."""
    ok = table[table["mean"].notna()]
    if ok.empty:
        raise StageError(
            f"every one of the {len(table)} searched cells diverged (non-finite training loss):"
            " lower the learning rates of the search space"
        )
    return ok.assign(m=ok["mean"].round(9)).sort_values(
        ["m", "hidden", "lr"], ascending=[False, True, False]
    )


def with_intervals(
    table: pd.DataFrame, oof: pd.DataFrame, seed: int = 0, method: str = DEFAULT_METHOD
) -> pd.DataFrame:
    """Add each cell's pooled out-of-fold accuracy with a 95 % interval over subjects
    (groups, by ``method``): ``oof`` has one row per (lr, hidden, item) with ``correct`` and
    ``group``. The mean over folds stays the paper's Table 2 number; the pooled accuracy is
    what the interval is about (they differ slightly when fold sizes differ)."""
    rows = []
    keys = cell_keys(oof)
    for cell, d in oof.groupby(keys, sort=False):
        iv = accuracy_interval(
            d["correct"].to_numpy(bool), d["group"].to_numpy(), seed=seed, method=method
        )
        rows.append(
            {**dict(zip(keys, cell)), "pooled": iv.estimate, "low": iv.low, "high": iv.high,
             "n_items": iv.n_items, "n_groups": iv.n_groups}
        )  # fmt: skip
    return table.merge(pd.DataFrame(rows), on=keys, how="left")


def oof_table(trials: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    """Per cell and validation image: the last epoch's prediction (``val_preds``, one
    character per image of the trial's fold, in item order) and whether it was right."""
    if "diverged" in trials.columns:  # a cell with a diverged fold has no score (``table2``)
        keys = cell_keys(trials)
        bad = trials["diverged"].fillna(False).astype(bool).groupby(
            [trials[k] for k in keys]).transform("any")  # fmt: skip
        trials = trials[~bad]
    parts = []
    keys = cell_keys(trials)
    for t in trials.to_dict("records"):
        items = splits[splits["fold"] == t["fold"]]
        part = pd.DataFrame(
            {**{k: t[k] for k in keys}, "fold": t["fold"], "item": items["item"].to_numpy(),
             "group": items["group"].to_numpy(), "label": items["label"].to_numpy(),
             "pred": pred_text.decode(t["val_preds"])}
        )  # fmt: skip
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["correct"] = out["pred"] == out["label"]
    return out


def _cell(table: pd.DataFrame, i: int = 0) -> dict[str, Any]:
    """Row ``i`` of a ranked table as the chosen-cell dict (each value of its column's type: a
    row of a numeric frame as a Series would turn an integer searched key into a float)."""
    row = table.iloc[[i]].to_dict("records")[0]
    out = {
        "lr": float(row["lr"]),
        "hidden": int(row["hidden"]),
        "mean_val_acc": float(row["mean"]),
        "std_val_acc": float(row["std"]),
    }
    for k in ("pooled", "low", "high"):
        if k in row:
            out[k] = float(row[k])
    if "backbone" in row:
        out["backbone"] = str(row["backbone"])
    for k, v in row.items():
        if "." in k:  # a searched config key (search.space), as a plain YAML value
            out[k] = v.item() if hasattr(v, "item") else v
    return out


def choose(
    table: pd.DataFrame,
    rule: str = "best",
    paper: tuple[float, int] | None = None,
    backbone: str | None = None,
) -> dict[str, Any]:
    """The config the ensemble trains with, and both candidates.

    ``best``: the best mean; ties (to 1e-9) → fewer hidden units, then larger lr. ``paper``:
    the paper's own pick ``(lr, hidden)`` (seed 000 took 0.005 / 100 from a flat table). The
    returned dict is the chosen cell plus ``rule``, ``best`` and (when given) ``paper``; when the
    grid searched backbones, the paper's cell is taken on ``backbone``."""
    t = ranked(table)
    best = _cell(t)
    out: dict[str, Any] = {"best": best}
    if paper is not None:
        hit = table[(table["lr"] == paper[0]) & (table["hidden"] == paper[1])]
        if backbone is not None and "backbone" in table.columns:
            hit = hit[hit["backbone"] == backbone]
        if hit["mean"].notna().any():  # a diverged cell is never chosen; with searched
            out["paper"] = _cell(ranked(hit))  # keys, the paper's best cell
    chosen = out["paper"] if rule == "paper" and "paper" in out else best
    return {**chosen, "rule": rule, **out}


def runner_up_pairing(
    table: pd.DataFrame, oof: pd.DataFrame, seed: int = 0, method: str = DEFAULT_METHOD
) -> dict[str, Any]:
    """The best cell against the runner-up on the same out-of-fold images.

    Cells are ranked as ``choose`` ranks them (best mean, then fewer hidden units, then larger
    lr). Top cells often differ by a few images, and the best cell's own pooled interval is
    computed after picking it as the best, so it is optimistic; the paired difference says
    whether the pick beats the next cell at all. Returns both cells (``_cell`` form), the paired
    difference best - runner-up (``Interval.as_dict``, over ``group`` by ``method``) and McNemar's
    discordant counts (``b``: only the best right, ``c``: only the runner-up right).
    """
    t = ranked(table)
    if len(t) < 2:
        raise ValueError("the grid has one cell: no runner-up to compare with")
    best, second = t.iloc[0], t.iloc[1]
    keys = cell_keys(table)

    def rows(cell: pd.Series) -> pd.DataFrame:
        mask = pd.Series(True, index=oof.index)
        for k in keys:
            mask &= oof[k] == cell[k]
        return oof.loc[mask, ["item", "group", "correct"]].set_index("item")

    a, b = rows(best).reset_index(), rows(second).reset_index()
    both = a.merge(b[["item", "correct"]], on="item", suffixes=("", "_b"))
    if both.empty:
        raise ValueError("the two top cells share no out-of-fold image")
    ca, cb = both["correct"].to_numpy(bool), both["correct_b"].to_numpy(bool)
    diff = paired_difference(ca, cb, both["group"].to_numpy(), seed=seed, method=method)
    return {
        "best": _cell(t, 0),
        "runner_up": _cell(t, 1),
        "difference": diff.as_dict(),
        "mcnemar": mcnemar(ca, cb),
    }
