"""How well the rules mimic the network: fidelity, per class and combined, and depth sweeps.

The trees come from ``fer_ray.analysis.rules``; a tree's positive probability for a row is the
fraction of training items in its leaf that the network called that class. One (class, depth)
fit is ``class_tree_result`` (JSON-serialisable, one Ray task each); ``fidelity_from_results``
assembles the fidelities of one (member, depth) from those results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.tree import DecisionTreeClassifier

from fer_ray.analysis.rules import (
    as_class_names,
    as_depth,
    as_features,
    as_preds,
    fit_class_tree,
    positive_index,
    tree_rules,
)
from fer_ray.errors import ConfigError, DataError

__all__ = [
    "class_tree_result",
    "combined_predict",
    "depth_sweep",
    "fidelity",
    "fidelity_from_results",
    "positive_proba",
]


def positive_proba(tree: DecisionTreeClassifier, features: ArrayLike) -> np.ndarray:
    """P(network says the tree's class) per row: the training fraction of the row's leaf."""
    x = as_features(features, "features")
    if x.shape[1] != tree.n_features_in_:
        raise DataError(f"the tree was fitted on {tree.n_features_in_} features, got {x.shape[1]}")
    pos = positive_index(tree)
    if pos is None:
        return np.zeros(x.shape[0])
    return tree.predict_proba(x)[:, pos].astype(np.float64)


def _combine(proba: np.ndarray) -> np.ndarray:
    return np.argmax(proba, axis=1).astype(np.int64)  # ties: the lowest class index


def combined_predict(trees: Sequence[DecisionTreeClassifier], features: ArrayLike) -> np.ndarray:
    """Multi-class prediction of the one-vs-rest trees: the class whose tree is most sure.

    Row i gets ``argmax_c P_c(i)``, ``P_c`` the positive fraction of the leaf class c's tree
    puts row i in (ties: lowest class index).  Each ``P_c`` estimates P(network says c |
    leaf), so the argmax is the plug-in guess of the network's answer, and every row gets
    exactly one class: voting by the trees' yes/no answers leaves rows that no tree or
    several trees claim undefined.  Seed 001 defines no combination at all (its 96.64 % is
    the mean of per-class one-vs-rest accuracies).
    """
    if len(trees) == 0:
        raise DataError("combined_predict needs at least one tree")
    x = as_features(features, "features")
    return _combine(np.column_stack([positive_proba(t, x) for t in trees]))


def _fidelity_dict(
    proba: np.ndarray, network_preds: np.ndarray, names: list[str]
) -> dict[str, Any]:
    per_class = {
        name: float(np.mean((proba[:, c] > 0.5) == (network_preds == c)))
        for c, name in enumerate(names)
    }
    return {
        "per_class": per_class,
        "mean_per_class": float(np.mean(list(per_class.values()))),
        "overall": float(np.mean(_combine(proba) == network_preds)),
        "n": int(network_preds.shape[0]),
    }


def fidelity(
    trees: Sequence[DecisionTreeClassifier],
    features: ArrayLike,
    network_preds: ArrayLike,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Agreement of the trees with the network; pass the TEST split.

    ``per_class``: {class name: one-vs-rest agreement of that tree's yes/no with "network
    says c"} (seed 001 Tab. 1); ``mean_per_class``: their mean (seed 001's 96.64 %);
    ``overall``: agreement of ``combined_predict`` with the network; ``n``: rows.  A tree's
    yes is ``tree.predict``: positive fraction > 0.5.
    """
    if len(trees) == 0:
        raise DataError("fidelity needs at least one tree")
    x = as_features(features, "features")
    y = as_preds(network_preds, x.shape[0], "network_preds", len(trees))
    proba = np.column_stack([positive_proba(t, x) for t in trees])
    return _fidelity_dict(proba, y, as_class_names(class_names, len(trees)))


# --------------------------------------------------------------------------- pipeline unit


def _summarise(
    tree: DecisionTreeClassifier,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    c: int,
    max_depth: int,
    seed: int,
    names: list[str],
    feature_names: Sequence[str] | None,
) -> dict[str, Any]:
    x_tr, y_tr, x_te, y_te = data
    rules = tree_rules(tree, feature_names, names[c])
    p_tr, p_te = positive_proba(tree, x_tr), positive_proba(tree, x_te)
    return {
        "class": names[c],
        "class_index": c,
        "depth": int(max_depth),
        "seed": int(seed),
        "depth_reached": int(tree.get_depth()),
        "n_leaves": int(tree.get_n_leaves()),
        "n_rules": len(rules),
        "mean_rule_length": float(np.mean([r.length for r in rules])) if rules else None,
        "train_fidelity": float(np.mean((p_tr > 0.5) == (y_tr == c))),
        "test_fidelity": float(np.mean((p_te > 0.5) == (y_te == c))),
        "rules": [r.to_dict() for r in rules],
        "test_proba": p_te.tolist(),
    }


def _split_data(
    train_feats: ArrayLike,
    train_preds: ArrayLike,
    test_feats: ArrayLike,
    test_preds: ArrayLike,
    n_classes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x_tr = as_features(train_feats, "train_feats")
    x_te = as_features(test_feats, "test_feats")
    if x_te.shape[1] != x_tr.shape[1]:
        raise DataError(f"test_feats have {x_te.shape[1]} features, train_feats {x_tr.shape[1]}")
    y_tr = as_preds(train_preds, x_tr.shape[0], "train_preds", n_classes)
    y_te = as_preds(test_preds, x_te.shape[0], "test_preds", n_classes)
    return x_tr, y_tr, x_te, y_te


def class_tree_result(
    train_feats: ArrayLike,
    train_preds: ArrayLike,
    test_feats: ArrayLike,
    test_preds: ArrayLike,
    class_index: int,
    max_depth: int,
    seed: int,
    class_names: Sequence[str],
    feature_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Fit one (class, depth) tree and summarise it as plain JSON types (one Ray task).

    Keys: class, class_index, depth, seed, depth_reached, n_leaves, n_rules,
    mean_rule_length (None without rules), train_fidelity and test_fidelity (one-vs-rest),
    rules (``Rule.to_dict`` of the positive rules), test_proba (the tree's ``P_c`` per test
    row, which ``fidelity_from_results`` combines across classes).
    """
    names = [str(c) for c in class_names]
    data = _split_data(train_feats, train_preds, test_feats, test_preds, len(names))
    if not 0 <= int(class_index) < len(names):
        raise ConfigError(f"class_index must lie in 0..{len(names) - 1}, got {class_index}")
    c = int(class_index)
    tree = fit_class_tree(data[0], data[1], c, max_depth, seed)
    return _summarise(tree, data, c, max_depth, seed, names, feature_names)


def fidelity_from_results(
    results: Sequence[Mapping[str, Any]], test_preds: ArrayLike
) -> dict[str, Any]:
    """``fidelity`` rebuilt from the ``class_tree_result`` dicts of one (member, depth).

    Needs exactly one result per class index 0..C-1, all of the same depth.
    """
    if not results:
        raise DataError("fidelity_from_results needs the results of every class")
    by_class = sorted(results, key=lambda r: int(r["class_index"]))
    if [int(r["class_index"]) for r in by_class] != list(range(len(by_class))):
        raise DataError(
            "need exactly one result per class index 0..C-1, got "
            f"{sorted(int(r['class_index']) for r in results)}"
        )
    if len({int(r["depth"]) for r in by_class}) != 1:
        raise DataError("results mix tree depths; pass one depth at a time")
    proba = np.column_stack([np.asarray(r["test_proba"], dtype=np.float64) for r in by_class])
    y = as_preds(test_preds, proba.shape[0], "test_preds", len(by_class))
    return _fidelity_dict(proba, y, [str(r["class"]) for r in by_class])


def depth_sweep(
    train_feats: ArrayLike,
    train_preds: ArrayLike,
    test_feats: ArrayLike,
    test_preds: ArrayLike,
    depths: Sequence[int],
    class_names: Sequence[str],
    seed: int,
) -> pd.DataFrame:
    """Fidelity and rule size against the depth limit, one row per depth (input order).

    Columns: depth; fidelity (test, combined prediction); mean_per_class_fidelity (test,
    seed 001's measure); train_fidelity (combined, training split);
    train_mean_per_class_fidelity; n_rules (positive rules over all classes);
    mean_rule_length (conditions per rule, same-feature bounds merged; NaN without rules);
    then ``fidelity_<class>`` per class (test, one-vs-rest).  Rows come from the same
    per-tree summary as ``class_tree_result``, so they match the per-task pipeline.

    Each class's training fidelity cannot fall with depth: with the same seed a deeper
    greedy tree repeats the shallower one's splits (barring exact ties between candidate
    splits) and refines its leaves.  The combined ``train_fidelity`` has no such guarantee.
    """
    depths = [as_depth(d) for d in depths]
    if not depths:
        raise ConfigError("depth_sweep needs at least one depth")
    names = [str(c) for c in class_names]
    data = _split_data(train_feats, train_preds, test_feats, test_preds, len(names))
    x_tr, y_tr, _, y_te = data
    rows = []
    for depth in depths:
        trees = [fit_class_tree(x_tr, y_tr, c, depth, seed) for c in range(len(names))]
        results = [_summarise(t, data, c, depth, seed, names, None) for c, t in enumerate(trees)]
        fid = fidelity_from_results(results, y_te)
        lengths = [len(r["conditions"]) for res in results for r in res["rules"]]
        row = {
            "depth": depth,
            "fidelity": fid["overall"],
            "mean_per_class_fidelity": fid["mean_per_class"],
            "train_fidelity": float(np.mean(combined_predict(trees, x_tr) == y_tr)),
            "train_mean_per_class_fidelity": float(np.mean([r["train_fidelity"] for r in results])),
            "n_rules": len(lengths),
            "mean_rule_length": float(np.mean(lengths)) if lengths else float("nan"),
        }
        row.update({f"fidelity_{n}": v for n, v in fid["per_class"].items()})
        rows.append(row)
    return pd.DataFrame(rows)
