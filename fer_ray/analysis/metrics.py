"""Classification metrics and ensemble voting for the 15-model experiments (paper sec. 3.2).

Thin wrappers over ``sklearn.metrics`` that fix the label set (so a class missing from a
small test split still gets its row) and return plain numpy / pandas objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

__all__ = ["confusion", "mean_std", "per_class_report", "soft_vote", "vote_accuracy"]


def confusion(labels: ArrayLike, preds: ArrayLike, n_classes: int) -> np.ndarray:
    """Confusion matrix (n_classes, n_classes) of int64 counts; rows true, columns predicted.

    Classes are ``0..n_classes-1`` even if absent from ``labels``/``preds``.
    """
    cm = confusion_matrix(
        np.asarray(labels).ravel(), np.asarray(preds).ravel(), labels=np.arange(n_classes)
    )
    return cm.astype(np.int64)


def per_class_report(
    labels: ArrayLike, preds: ArrayLike, class_names: Sequence[str]
) -> pd.DataFrame:
    """Per-class precision, recall, f1 and support; index = class names (class i = name i).

    ``zero_division=0``: a class never predicted (or never present) gets 0, not a warning.
    """
    precision, recall, f1, support = precision_recall_fscore_support(
        np.asarray(labels).ravel(),
        np.asarray(preds).ravel(),
        labels=np.arange(len(class_names)),
        zero_division=0,
    )
    return pd.DataFrame(
        {
            "precision": precision.astype(np.float64),
            "recall": recall.astype(np.float64),
            "f1": f1.astype(np.float64),
            "support": support.astype(np.int64),
        },
        index=pd.Index(list(class_names), name="class"),
    )


def soft_vote(probs_list: Sequence[ArrayLike]) -> np.ndarray:
    """Soft-voting ensemble: the mean of M member probability arrays, M x (N, C) -> (N, C)."""
    if len(probs_list) == 0:
        raise ValueError("soft_vote needs at least one member")
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in probs_list])
    if stacked.ndim != 3:
        raise ValueError(f"each member must be (N, C), got stacked shape {stacked.shape}")
    return stacked.mean(axis=0)


def vote_accuracy(probs_list: Sequence[ArrayLike], labels: ArrayLike) -> float:
    """Accuracy (0-1) of the soft-voted ensemble's argmax (ties: lowest class index)."""
    preds = soft_vote(probs_list).argmax(axis=1)
    y = np.asarray(labels).ravel()
    if y.shape[0] != preds.shape[0]:
        raise ValueError(f"{preds.shape[0]} predictions but {y.shape[0]} labels")
    return float(np.mean(preds == y))


def mean_std(values: ArrayLike) -> tuple[float, float]:
    """Mean and *sample* std (ddof=1) across repeated runs, as in Table 3 (15 models).

    A single value has no spread estimate; its std is reported as 0.0 rather than NaN.
    Empty input raises ValueError.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("mean_std of no values")
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return float(v.mean()), std


def ensemble_summary(
    member_accs: ArrayLike, probs_list: Sequence[ArrayLike], labels: ArrayLike
) -> dict[str, float | int]:
    """Member mean ± std, soft-vote accuracy and both chance levels on one test set.

    Chance is given twice because a skewed test set makes "always the majority class" a
    stronger baseline than uniform guessing.
    """
    vote = soft_vote(probs_list)
    y = np.asarray(labels).ravel()
    mean, std = mean_std(member_accs)
    counts = np.bincount(y, minlength=vote.shape[1])
    return {
        "test_acc_mean": mean,
        "test_acc_std": std,
        "vote_acc": float((vote.argmax(1) == y).mean()),
        "n_test": int(len(y)),
        "chance_uniform": 1.0 / vote.shape[1],
        "chance_majority": float(counts.max() / counts.sum()),
    }
