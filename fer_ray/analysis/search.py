"""A searcher's trials → its table, history and parameter importances (pure).

Only proposals that ran every fold have an objective comparable with a grid cell; proposals a
scheduler stopped early keep their partial fold mean, marked, and never become "best".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fer_ray.analysis import pred_text
from fer_ray.analysis.intervals import (
    DEFAULT_METHOD,
    accuracy_interval,
    mcnemar,
    paired_difference,
)

METRIC = "fold_mean_val_acc"


def search_table(
    trials: pd.DataFrame,
    splits: pd.DataFrame,
    folds: int,
    seed: int = 0,
    objectives: dict[str, str] | None = None,
    method: str = DEFAULT_METHOD,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per trial: lr, hidden, fold mean, complete or stopped early, and for complete ones the
    pooled out-of-fold accuracy with its subject interval; and the best complete trial.

    With several ``objectives`` ({column: max | min}, the first the primary), the complete
    trials on the Pareto front are marked (``pareto``) and the best is the front's best on the
    primary objective (ties: the next objectives)."""
    t = trials.sort_values("order").reset_index(drop=True)
    t["complete"] = t["folds_done"] == folds
    pooled, low, high = [], [], []
    for row in t.itertuples():
        if not row.complete or not row.fold_preds:
            pooled.append(np.nan), low.append(np.nan), high.append(np.nan)
            continue
        correct, groups = out_of_fold(row.fold_preds, splits)
        iv = accuracy_interval(correct, groups, seed=seed, method=method)
        pooled.append(iv.estimate), low.append(iv.low), high.append(iv.high)
    t["pooled"], t["low"], t["high"] = pooled, low, high
    done = t[t["complete"]]
    if done.empty:
        from fer_ray.errors import StageError

        raise StageError("the search finished no proposal over every fold")
    pick = done[METRIC].idxmax()
    if objectives and len(objectives) > 1:
        t["pareto"] = pareto_front(t, objectives) & t["complete"]
        front = t[t["pareto"]]
        signs = [v == "max" for v in objectives.values()]
        pick = front.sort_values(list(objectives), ascending=[not s for s in signs]).index[0]
    b = t.loc[[pick]].to_dict("records")[0]  # each value of its own type
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
        **{k: _plain(v) for k, v in b.items() if "." in k},  # searched config keys
    }
    return t, best


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def out_of_fold(fold_preds: str, splits: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A complete proposal's predictions (``"|"``-joined per fold) → whether each out-of-fold
    image was right, and its group, in fold then item order."""
    correct, groups = [], []
    for f, text in enumerate(fold_preds.split("|")):
        items = splits[splits["fold"] == f]
        correct.append(pred_text.decode(text) == items["label"].to_numpy())
        groups.append(items["group"].astype(str).to_numpy())
    return np.concatenate(correct), np.concatenate(groups)


def runner_up(table: pd.DataFrame, best: dict[str, Any], splits: pd.DataFrame,
              seed: int = 0, method: str = DEFAULT_METHOD) -> dict[str, Any] | None:  # fmt: skip
    """The best proposal against the next most accurate complete one, paired on the same
    out-of-fold images (as the grid pairs its two top cells): the difference best - runner-up
    with its interval over groups, and McNemar's discordant counts. None with one proposal."""
    done = table[table["complete"] & (table["trial"] != best["trial"])]
    if done.empty or "fold_preds" not in table:
        return None
    second = done.loc[done[METRIC].idxmax()]
    a, groups = out_of_fold(str(table.loc[table["trial"] == best["trial"], "fold_preds"].iloc[0]),
                            splits)  # fmt: skip
    b, _ = out_of_fold(str(second["fold_preds"]), splits)
    diff = paired_difference(a, b, groups, seed=seed, method=method)
    return {"runner_up": {"trial": str(second["trial"]), "lr": float(second["lr"]),
                          "hidden": int(second["hidden"]), METRIC: float(second[METRIC])},
            "difference": diff.as_dict(), "mcnemar": mcnemar(a, b)}  # fmt: skip


def pareto_front(table: pd.DataFrame, objectives: dict[str, str]) -> pd.Series:
    """Whether each complete row is on the Pareto front of ``objectives`` ({column: max | min}):
    no other complete row is at least as good on every objective and better on one."""
    done = table[table["complete"]] if "complete" in table else table
    signs = np.array([1.0 if m == "max" else -1.0 for m in objectives.values()])
    v = done[list(objectives)].to_numpy(float) * signs  # larger is better in every column
    front = pd.Series(False, index=table.index)
    for i, row in zip(done.index, v, strict=True):
        dominated = ((v >= row).all(axis=1) & (v > row).any(axis=1)).any()
        front[i] = not dominated
    return front


def search_history(table: pd.DataFrame) -> pd.DataFrame:
    """The objective in the order trials were proposed, and the best complete one so far."""
    h = table[["order", *params(table), METRIC, "complete"]].copy()
    best = h[METRIC].where(h["complete"]).cummax().ffill()
    h["best_so_far"] = best
    return h


def params(table: pd.DataFrame) -> list[str]:
    """The searched parameters: lr, hidden and the searched config keys (dotted columns)."""
    return ["lr", "hidden", *(c for c in table.columns if "." in c)]


EMPTY = ("parameter", "importance", "method")
VARIANCE_MIN_BIN = 3  # trials per value bin on average: fewer and every bin explains everything


def importances(
    table: pd.DataFrame, domains: dict[str, Any], seed: int = 0, fanova: bool = True
) -> pd.DataFrame:
    """Importance of each searched parameter over the complete trials, summing to one: Optuna's
    fANOVA (``fanova``, for an Optuna search; 3 complete trials at least) or the model-free
    variance share (6 at least); otherwise empty."""
    done = table[table["complete"]]
    if len(done) < (3 if fanova else 2 * VARIANCE_MIN_BIN):
        return pd.DataFrame(columns=list(EMPTY))
    imp = fanova_importances(done, domains, seed) if fanova else variance_importances(done)
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
    for p in params(done):
        x = done[p].to_numpy()
        numeric = pd.api.types.is_numeric_dtype(done[p]) and not pd.api.types.is_bool_dtype(done[p])
        if numeric:
            x = x.astype(float)
            x = np.log(x) if p == "lr" or (x > 0).all() and x.max() / x.min() > 100 else x
        else:
            x = pd.factorize(done[p])[0]  # categorical values as they are
        groups = x
        if numeric and len(np.unique(x)) > bins:
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


def fanova_importances(done: pd.DataFrame, domains: dict[str, Any], seed: int) -> dict[str, float]:
    """fANOVA importance (Optuna's evaluator, on a study rebuilt from the stored trials);
    ``domains``: ``fer_ray.search_space.resolve``'s, one per searched parameter."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {k: _distribution(d) for k, d in domains.items()}
    study = optuna.create_study(direction="maximize")
    for r in done.to_dict("records"):
        study.add_trial(
            optuna.trial.create_trial(
                params={k: _plain(r[k]) for k in dists}, distributions=dists, value=float(r[METRIC])
            )
        )
    return dict(
        optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed)
        )
    )


def _distribution(d: Any) -> Any:
    """A ``search_space.Domain`` as Optuna's distribution."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    a = d.args
    if d.values is not None:
        return CategoricalDistribution(list(d.values))
    if d.kind in ("randint", "qrandint"):
        return IntDistribution(int(a[0]), int(a[1]), step=int(a[2]) if d.kind == "qrandint" else 1)
    return FloatDistribution(float(a[0]), float(a[1]), log=d.kind == "loguniform")
