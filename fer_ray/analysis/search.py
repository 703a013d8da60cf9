"""A searcher's trials → its table, history and parameter importances (pure).

Only proposals that ran every fold have an objective comparable with a grid cell; proposals a
scheduler stopped early keep their partial fold mean, marked, and never become "best".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fer_ray.analysis import pred_text
from fer_ray.analysis.intervals import accuracy_interval

METRIC = "fold_mean_val_acc"


def search_table(
    trials: pd.DataFrame, splits: pd.DataFrame, folds: int, seed: int = 0
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per trial: lr, hidden, fold mean, complete or stopped early, and for complete ones the
    pooled out-of-fold accuracy with its subject interval; and the best complete trial."""
    t = trials.sort_values("order").reset_index(drop=True)
    t["complete"] = t["folds_done"] == folds
    pooled, low, high = [], [], []
    for row in t.itertuples():
        if not row.complete or not row.fold_preds:
            pooled.append(np.nan), low.append(np.nan), high.append(np.nan)
            continue
        correct, groups = [], []
        for f, text in enumerate(row.fold_preds.split("|")):
            items = splits[splits["fold"] == f]
            preds = pred_text.decode(text)
            correct.append(preds == items["label"].to_numpy())
            groups.append(items["group"].astype(str).to_numpy())
        iv = accuracy_interval(np.concatenate(correct), np.concatenate(groups), seed=seed)
        pooled.append(iv.estimate), low.append(iv.low), high.append(iv.high)
    t["pooled"], t["low"], t["high"] = pooled, low, high
    done = t[t["complete"]]
    if done.empty:
        from fer_ray.errors import StageError

        raise StageError("the search finished no proposal over every fold")
    b = done.loc[done[METRIC].idxmax()]
    accs = [float(a) for a in str(b["fold_accs"]).split(",") if a]
    best = {
        "lr": float(b["lr"]),
        "hidden": int(b["hidden"]),
        "mean_val_acc": float(b[METRIC]),
        "std_val_acc": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
        "pooled": float(b["pooled"]),
        "low": float(b["low"]),
        "high": float(b["high"]),
        "trial": str(b["trial"]),
    }
    return t, best


def search_history(table: pd.DataFrame) -> pd.DataFrame:
    """The objective in the order trials were proposed, and the best complete one so far."""
    h = table[["order", "lr", "hidden", METRIC, "complete"]].copy()
    best = h[METRIC].where(h["complete"]).cummax().ffill()
    h["best_so_far"] = best
    return h


PARAMS = ("lr", "hidden")
EMPTY = ("parameter", "importance", "method")
VARIANCE_MIN_BIN = 3  # trials per value bin on average: fewer and every bin explains everything


def importances(
    table: pd.DataFrame, search: Any, seed: int = 0, fanova: bool = True
) -> pd.DataFrame:
    """Importance of each searched parameter over the complete trials, summing to one: Optuna's
    fANOVA (``fanova``, for an Optuna search; 3 complete trials at least) or the model-free
    variance share (6 at least); otherwise empty."""
    done = table[table["complete"]]
    if len(done) < (3 if fanova else 2 * VARIANCE_MIN_BIN):
        return pd.DataFrame(columns=list(EMPTY))
    imp = fanova_importances(done, search, seed) if fanova else variance_importances(done)
    return pd.DataFrame(
        {"parameter": list(imp), "importance": [float(v) for v in imp.values()],
         "method": "fanova" if fanova else "variance"}
    )  # fmt: skip


def variance_importances(done: pd.DataFrame, bins: int = 3) -> dict[str, float]:
    """Per parameter, the share of the objective's variance between its value bins (eta squared:
    categorical values as they are, numbers in up to ``bins`` quantile bins of about
    ``VARIANCE_MIN_BIN`` trials or more; lr on a log scale),
    normalised to sum to one (equal shares when the objective does not vary)."""
    bins = max(1, min(bins, len(done) // VARIANCE_MIN_BIN))
    y = done[METRIC].to_numpy(dtype=float)
    total = float(((y - y.mean()) ** 2).sum())
    eta = {}
    for p in PARAMS:
        x = done[p].to_numpy(dtype=float)
        x = np.log(x) if p == "lr" else x
        groups = x
        if len(np.unique(x)) > bins:
            edges = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])
            groups = np.searchsorted(edges, x, side="right")
        between = sum(
            (groups == g).sum() * (y[groups == g].mean() - y.mean()) ** 2 for g in np.unique(groups)
        )
        eta[p] = float(between / total) if total > 0 else 1.0
    s = sum(eta.values())
    return {
        p: (v / s if s > 0 else 1 / len(eta)) for p, v in sorted(eta.items(), key=lambda kv: -kv[1])
    }


def fanova_importances(done: pd.DataFrame, search: Any, seed: int) -> dict[str, float]:
    """fANOVA importance (Optuna's evaluator, on a study rebuilt from the stored trials)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    hidden = (
        CategoricalDistribution(list(search.hidden_choices))
        if search.hidden_choices
        else IntDistribution(search.hidden_range[0], search.hidden_range[1])
    )
    dists = {"lr": FloatDistribution(search.lr_range[0], search.lr_range[1], log=True),
             "hidden": hidden}  # fmt: skip
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for r in done.itertuples():
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": float(r.lr), "hidden": int(r.hidden)},
                distributions=dists,
                value=float(getattr(r, METRIC)),
            )
        )
    return dict(
        optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed)
        )
    )
