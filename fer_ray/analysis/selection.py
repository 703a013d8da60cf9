"""Choosing a config from the grid (seed 000's Table 2).

A cell's score is the held-out fold's validation accuracy at the last epoch (no epoch is picked
on the fold that scores it); the chosen config has the best mean over folds, ties going to the
simpler model (fewer hidden units, then the larger learning rate, as seed 000 argues).
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def table2(trials: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std (over folds) of the last-epoch validation accuracy per lr × hidden."""
    g = trials.groupby(["lr", "hidden"])["val_acc"]
    t = g.agg(["mean", "std", "count"]).reset_index()
    t["std"] = t["std"].fillna(0.0)
    return t


def choose(table: pd.DataFrame) -> dict[str, Any]:
    """Best mean; ties (to 1e-9) → fewer hidden units, then larger lr."""
    t = table.assign(m=table["mean"].round(9)).sort_values(
        ["m", "hidden", "lr"], ascending=[False, True, False]
    )
    best = t.iloc[0]
    return {
        "lr": float(best["lr"]),
        "hidden": int(best["hidden"]),
        "mean_val_acc": float(best["mean"]),
        "std_val_acc": float(best["std"]),
    }
