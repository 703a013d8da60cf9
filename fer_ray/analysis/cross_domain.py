"""Seed 002's "new faces" as a cross-data-set test: the pure parts of stage ``newfaces``.

Why: seed 002 reports 90 % on a test split drawn from the data sets it trained on and 34.7 %
on the face of someone photographed elsewhere ("new lighting and photography angles"). The
honest version of that observation is a matrix: train on data set A or B, test on A's and
B's held-out subjects, so the within-data-set accuracy (the diagonal) stands beside the
cross-data-set accuracy (off the diagonal) on the very same test images, with intervals over
the test set's subjects.

Both data sets are reduced to the classes they share (``shared_classes``), in A's order, so
one network head means the same thing on both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fer_ray.analysis.intervals import DEFAULT_METHOD, accuracy_interval
from fer_ray.analysis.metrics import confusion, soft_vote
from fer_ray.errors import DataError

#: Columns of the matrix table, one row per (train, test) cell.
MATRIX_COLUMNS = (
    "train", "test", "kind", "members", "member_mean", "member_std", "vote_acc", "low", "high",
    "n_items", "n_groups", "unit",
)  # fmt: skip


def shared_classes(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """The classes both data sets have, in A's order (a label means the same on both)."""
    shared = [c for c in a if c in set(b)]
    if len(shared) < 2:
        raise DataError(
            f"the two data sets share {len(shared)} class(es) ({', '.join(shared) or 'none'});"
            f" a cross-data-set test needs at least 2 (A: {list(a)}, B: {list(b)})"
        )
    return shared


def relabel(label_names: Sequence[str], classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(keep mask, labels 0..len(classes)-1 of the kept items) under the shared class map."""
    names = np.asarray(label_names, dtype=object)
    index = {c: i for i, c in enumerate(classes)}
    keep = np.array([n in index for n in names], dtype=bool)
    labels = np.array([index[n] for n in names[keep]], dtype=np.int64)
    return keep, labels


def cell(
    probs: Sequence[np.ndarray], labels: np.ndarray, groups: np.ndarray, seed: int = 0,
    method: str = DEFAULT_METHOD,
) -> dict[str, float | int | str]:  # fmt: skip
    """One matrix cell: the members' mean ± std accuracy and the soft vote's accuracy with a
    95 % interval over the test set's groups (subjects), by ``method``."""
    labels = np.asarray(labels)
    if not len(probs) or any(len(p) != len(labels) for p in probs):
        raise DataError("every member needs one probability row per test image")
    accs = np.array([(np.asarray(p).argmax(1) == labels).mean() for p in probs])
    vote = soft_vote(list(probs)).argmax(1) == labels
    iv = accuracy_interval(vote, groups, seed=seed, method=method)
    return {
        "members": len(probs),
        "member_mean": float(accs.mean()),
        "member_std": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
        "vote_acc": iv.estimate,
        "low": iv.low,
        "high": iv.high,
        "n_items": iv.n_items,
        "n_groups": iv.n_groups,
        "unit": iv.unit,
    }


def matrix(
    probs: dict[tuple[str, str], list[np.ndarray]],
    truth: dict[str, tuple[np.ndarray, np.ndarray]],
    domains: Sequence[str],
    seed: int = 0,
    method: str = DEFAULT_METHOD,
) -> pd.DataFrame:
    """The train-on × test-on table: ``probs[(train, test)]`` are the members' probabilities
    on test set ``test`` (a domain's held-out subjects, or ``<domain>:all`` for every image of
    a domain the model never trained on); ``truth[test]`` = (labels, groups). ``kind`` says
    whether a cell is ``within`` (same data set) or ``cross``."""
    rows = []
    for train in domains:
        for test in [*domains, *(f"{d}:all" for d in domains)]:
            if (train, test) not in probs:
                continue
            labels, groups = truth[test]
            kind = "within" if test == train else "cross"
            rows.append(
                {"train": train, "test": test, "kind": kind,
                 **cell(probs[train, test], labels, groups, seed, method)}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=list(MATRIX_COLUMNS))


def vote_confusion(
    probs: Sequence[np.ndarray], labels: np.ndarray, classes: Sequence[str]
) -> pd.DataFrame:
    """The soft vote's confusion matrix (rows true, columns predicted) as a labelled table."""
    cm = confusion(labels, soft_vote(list(probs)).argmax(1), len(classes))
    out = pd.DataFrame(cm, columns=list(classes))
    out.insert(0, "true", list(classes))
    return out
