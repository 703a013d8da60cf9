"""Intervals for the ensemble's analyses: per-class recall of the vote, pruning rules against
no pruning (paired), and where the pruning sweep falls off.

Every interval is over subjects (groups) of the one test set all members share, by the
``method`` of ``fer_ray.analysis.intervals`` (default: the cluster t-interval, whose coverage
was measured): the members are not independent samples of the test set, so their spread says
nothing about it. Accuracies and shares are clipped to [0, 1], differences to [-1, 1]. For a
quantity averaged over members (pruned accuracy) the per-image value is the fraction of
members (and random draws) that got the image right, which keeps the pairing image by image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from fer_ray.analysis.intervals import (
    DEFAULT_METHOD,
    accuracy_interval,
    holm,
    mcnemar,
    mean_interval,
    p_below_zero,
    paired_difference,
)
from fer_ray.analysis.pruning import falloff_fixed_sequence, unbits

RULES = ("none", "magnitude", "angle", "random")


def class_recall_intervals(
    labels: np.ndarray, preds: np.ndarray, groups: np.ndarray, class_names: Sequence[str],
    seed: int = 0, method: str = DEFAULT_METHOD,
) -> pd.DataFrame:  # fmt: skip
    """Recall of each class with an interval over subjects (n images of the class)."""
    rows = []
    for c, name in enumerate(class_names):
        mask = labels == c
        if not mask.any():
            rows.append({"class": name, "recall": np.nan, "low": np.nan, "high": np.nan, "n": 0})
            continue
        iv = accuracy_interval(preds[mask] == c, groups[mask], seed=seed, method=method)
        rows.append(
            {"class": name, "recall": iv.estimate, "low": iv.low, "high": iv.high,
             "n": iv.n_items}
        )  # fmt: skip
    return pd.DataFrame(rows)


def pruning_intervals(
    baselines: Sequence[dict[str, Any]], groups: np.ndarray, seed: int = 0,
    method: str = DEFAULT_METHOD,
) -> pd.DataFrame:  # fmt: skip
    """Per rule: member-mean accuracy with its interval, and the paired difference to no
    pruning (same images, same resamples) with its interval."""
    frac = {
        rule: np.mean([unbits(b[rule]["correct"]) for b in baselines], axis=0) for rule in RULES
    }
    rows = []
    for rule in RULES:
        acc = mean_interval(frac[rule], groups, seed=seed, method=method, bounds=(0.0, 1.0))
        diff = mean_interval(
            frac[rule] - frac["none"], groups, seed=seed, method=method, bounds=(-1.0, 1.0)
        )
        rows.append(
            {"rule": rule, "accuracy": acc.estimate, "low": acc.low, "high": acc.high,
             "diff_vs_none": diff.estimate, "diff_low": diff.low, "diff_high": diff.high}
        )  # fmt: skip
    return pd.DataFrame(rows)


def sweep_falloff(
    sweeps: Sequence[pd.DataFrame], baselines: Sequence[dict[str, Any]], groups: np.ndarray,
    seed: int = 0, method: str = DEFAULT_METHOD,
) -> tuple[pd.DataFrame, int | None]:  # fmt: skip
    """Random-order sweep: per kept-feature count, the paired difference to no pruning.

    Returns the table and where accuracy falls off, measured (instead of a fixed "within 1
    point" that may be below the resolution of one test image) by a rule that survives testing
    every count: ``pruning.falloff_fixed_sequence``. ``significant``: the count's interval lies
    below 0 (one-sided 2.5 %, uncorrected); ``p_one_sided``: the p-value of a loss by the same
    method (and resamples); ``p_holm``: Holm-adjusted over the pruned counts (unpruned rows: NaN).
    """
    none = np.mean([unbits(b["none"]["correct"]) for b in baselines], axis=0)
    both = pd.concat(list(sweeps), ignore_index=True)
    rows = []
    for n_kept, d in both.groupby("n_kept", sort=True):
        frac = np.mean([unbits(c) for c in d["correct"]], axis=0)
        acc = mean_interval(frac, groups, seed=seed, method=method, bounds=(0.0, 1.0))
        diff = mean_interval(frac - none, groups, seed=seed, method=method, bounds=(-1.0, 1.0))
        rows.append(
            {"n_kept": int(n_kept), "ratio": float(d["ratio"].iloc[0]),
             "accuracy": float(frac.mean()), "low": acc.low, "high": acc.high,
             "diff_vs_none": diff.estimate, "diff_low": diff.low, "diff_high": diff.high,
             "significant": diff.high < 0,
             "p_one_sided": p_below_zero(frac - none, groups, seed=seed, method=method)}
        )  # fmt: skip
    table = pd.DataFrame(rows).sort_values("n_kept", ascending=False).reset_index(drop=True)
    pruned = table["ratio"] > 0
    table["p_holm"] = holm(table["p_one_sided"].where(pruned))
    return table, falloff_fixed_sequence(table)


def pruned_on_average(values: np.ndarray) -> int:
    """Features below mean - std of the MODEL-AVERAGED scores: the paper's own count (its
    "87" thresholds the 15-model average, not each model)."""
    avg = np.asarray(values).mean(axis=0)
    return int(np.count_nonzero(avg < avg.mean() - avg.std()))


def holdout_spread(holdouts: pd.DataFrame) -> dict[str, float | int]:
    """Member-to-member spread (within a holdout) against holdout-to-holdout spread (of the
    member mean and of the vote): the second is the test-set variance one holdout hides."""
    return {
        "repeats": int(len(holdouts)),
        "member_spread": float(holdouts["member_std"].mean()),
        "holdout_spread_member_mean": float(holdouts["member_mean"].std(ddof=1)),
        "holdout_spread_vote": float(holdouts["vote_acc"].std(ddof=1)),
        "member_mean_over_holdouts": float(holdouts["member_mean"].mean()),
        "vote_over_holdouts": float(holdouts["vote_acc"].mean()),
    }


def member_accuracy_intervals(
    probs: Sequence[np.ndarray], labels: np.ndarray, groups: np.ndarray, seed: int = 0,
    method: str = DEFAULT_METHOD,
) -> list[tuple[float, float]]:  # fmt: skip
    """Each member's test accuracy interval over subjects (bootstrap: same resamples)."""
    out = []
    for p in probs:
        iv = accuracy_interval(np.asarray(p).argmax(1) == labels, groups, seed=seed, method=method)
        out.append((iv.low, iv.high))
    return out


def ensemble_intervals(
    probs: Sequence[np.ndarray], labels: np.ndarray, groups: np.ndarray, val_accs: Sequence[float],
    seed: int = 0, method: str = DEFAULT_METHOD,
) -> dict[str, Any]:  # fmt: skip
    """Member mean and soft vote on the shared test set, each with an interval over subjects
    (``method``, named in each stored interval), and the vote against the best member by VALIDATION accuracy (choosing the best
    member on the test set would flatter it), paired on the same images, with McNemar.

    The best member by validation is close to a member drawn at random (validation accuracies
    differ by a few images), so the vote is also paired against the members' MEAN:
    ``vote_minus_member_mean`` resamples, per image, the vote's 0/1 minus the share of members
    that got the image right (same subjects, same resamples)."""
    correct = np.array([np.asarray(p).argmax(1) == labels for p in probs])
    vote = np.mean(np.stack([np.asarray(p, np.float64) for p in probs]), axis=0).argmax(1)
    vote_correct = vote == labels
    best = int(np.argmax(val_accs))
    kw = {"seed": seed, "method": method}
    member = mean_interval(correct.mean(axis=0), groups, bounds=(0.0, 1.0), **kw)
    vote_iv = accuracy_interval(vote_correct, groups, **kw)
    paired = paired_difference(vote_correct, correct[best], groups, **kw)
    over_mean = mean_interval(vote_correct - correct.mean(axis=0), groups, bounds=(-1.0, 1.0), **kw)
    return {
        "n_images": int(len(labels)),
        "n_groups": int(len(np.unique(groups))),
        "resolution": 1.0 / len(labels),
        "member_mean": member.as_dict(),
        "vote": vote_iv.as_dict(),
        "best_member_by_val": best,
        "vote_minus_best_member": paired.as_dict(),
        "vote_minus_member_mean": over_mean.as_dict(),
        "mcnemar_vote_vs_best_member": mcnemar(vote_correct, correct[best]),
    }


def architecture_tables(
    by_backbone: dict[str, tuple[Sequence[np.ndarray], Sequence[float]]],
    labels: np.ndarray,
    groups: np.ndarray,
    seed: int = 0,
    method: str = DEFAULT_METHOD,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Backbones side by side on one test set (seed 002's comparison): member mean and soft
    vote with subject intervals, the vote's recall per class, and its confusion matrix."""
    summary, per_class, confusion = [], [], []
    n_classes = int(max(np.asarray(p).shape[1] for ps, _ in by_backbone.values() for p in ps))
    for backbone, (probs, val_accs) in by_backbone.items():
        iv = ensemble_intervals(probs, labels, groups, val_accs, seed, method)
        accs = [float((np.asarray(p).argmax(1) == labels).mean()) for p in probs]
        summary.append(
            {"backbone": backbone, "members": len(probs),
             "test_acc_mean": float(np.mean(accs)),
             "test_acc_std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
             "member_low": iv["member_mean"]["low"], "member_high": iv["member_mean"]["high"],
             "vote_acc": iv["vote"]["estimate"], "vote_low": iv["vote"]["low"],
             "vote_high": iv["vote"]["high"]}
        )  # fmt: skip
        vote = np.mean(np.stack([np.asarray(p, np.float64) for p in probs]), axis=0).argmax(1)
        rec = class_recall_intervals(labels, vote, groups, list(range(n_classes)), seed, method)
        per_class.append(rec.rename(columns={"class": "class_index"}).assign(backbone=backbone))
        conf = np.zeros((n_classes, n_classes), dtype=np.int64)
        np.add.at(conf, (labels, vote), 1)
        confusion += [
            {"backbone": backbone, "true": t, "pred": q, "count": int(conf[t, q])}
            for t in range(n_classes)
            for q in range(n_classes)
        ]
    return pd.DataFrame(summary), pd.concat(per_class, ignore_index=True), pd.DataFrame(confusion)
