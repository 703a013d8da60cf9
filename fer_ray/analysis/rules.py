"""If-then rules that mimic the network, read off depth-limited decision trees (seed 001 sec. 2.4).

Seed 001 explains its ResNet-18 by fitting, per class, a one-vs-rest decision tree to the
512-d penultimate features and turning root-to-leaf paths into rules ("Angry: Feature181 <=
1.024 & Feature303 > 1.304 & feature429 > 0.838").  The trees learn the NETWORK's predicted
classes, not the true labels: the rules explain the network, and their agreement with it
(fidelity) is what seed 001 reports (Tab. 1, 96.64 % = the mean of the seven one-vs-rest
accuracies).  Fits use the training split; fidelity is measured on the test split.

Seed 001 never combines the seven trees into one classifier, and its mean one-vs-rest
accuracy flatters rare classes (a tree that always answers "not disgust" scores 1 minus the
disgust rate).  ``combined_predict`` therefore also gives a multi-class prediction, and
``fidelity`` reports both numbers.  One (class, depth) fit is ``class_tree_result``: a
JSON-serialisable dict (``fer_ray.analysis.rule_fidelity``), so the pipeline can run one Ray task per (member, class, depth) and
assemble the fidelities with ``fidelity_from_results``.  Pure numpy/pandas/scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.tree import DecisionTreeClassifier

from fer_ray.errors import ConfigError, DataError

__all__ = [
    "Condition",
    "Rule",
    "as_class_names",
    "as_depth",
    "as_features",
    "as_preds",
    "default_feature_names",
    "fit_class_tree",
    "fit_class_trees",
    "positive_index",
    "tree_rules",
]


@dataclass(frozen=True)
class Condition:
    """One test on a path: ``features[:, feature] <= threshold`` or ``> threshold``."""

    feature: int
    name: str
    op: Literal["<=", ">"]
    threshold: float

    @property
    def text(self) -> str:
        return f"{self.name} {self.op} {self.threshold:.4g}"

    def holds(self, features: np.ndarray) -> np.ndarray:
        """Bool mask over rows; compared in float32 as scikit-learn's trees do."""
        col = np.asarray(features, dtype=np.float32)[:, self.feature]
        return col <= self.threshold if self.op == "<=" else col > self.threshold


@dataclass(frozen=True)
class Rule:
    """A root-to-leaf path of one class's tree, read as IF conditions THEN conclusion.

    ``positive`` rules conclude ``class_name``; the others (``all_leaves=True`` only)
    conclude "not class_name".  ``n_support``/``support``: training items reaching the
    leaf (count, fraction of the training set).  ``precision``: fraction of them on which
    the network agrees with the conclusion (for a positive rule, the fraction the network
    called ``class_name``).
    """

    class_name: str
    positive: bool
    conditions: tuple[Condition, ...]
    n_support: int
    support: float
    precision: float
    leaf: int

    @property
    def conclusion(self) -> str:
        return self.class_name if self.positive else f"not {self.class_name}"

    @property
    def text(self) -> str:
        body = " AND ".join(c.text for c in self.conditions) or "TRUE"
        return f"IF {body} THEN {self.conclusion}"

    @property
    def length(self) -> int:
        return len(self.conditions)

    def covers(self, features: ArrayLike) -> np.ndarray:
        """Bool mask of the rows (N, F) that satisfy every condition."""
        x = np.asarray(features)
        mask = np.ones(x.shape[0], dtype=bool)
        for cond in self.conditions:
            mask &= cond.holds(x)
        return mask

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.class_name,
            "positive": self.positive,
            "text": self.text,
            "conditions": [
                {"feature": c.feature, "name": c.name, "op": c.op, "threshold": c.threshold}
                for c in self.conditions
            ],
            "n_support": self.n_support,
            "support": self.support,
            "precision": self.precision,
            "leaf": self.leaf,
        }


def default_feature_names(n_features: int) -> list[str]:
    """``f0 .. f{n-1}``: the column index, so a rule points straight at the feature.

    Seed 001 numbers its features from 1 ("Feature181" is column 180).
    """
    return [f"f{i}" for i in range(n_features)]


def feature_columns(columns: Sequence[str]) -> list[str]:
    """The columns named like ``default_feature_names`` (``f0`` .. ``f{D-1}``), in order."""
    return [c for c in columns if c.startswith("f") and c[1:].isdigit()]


# --------------------------------------------------------------------------- checks


def as_features(x: ArrayLike, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{what} must be a non-empty 2-D array (N, F), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{what} must be finite (no NaN/inf)")
    return arr


def as_preds(p: ArrayLike, n: int, what: str, n_classes: int | None = None) -> np.ndarray:
    arr = np.asarray(p)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise DataError(f"{what} must be 1-D with {n} entries (one per row), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{what} must be integer class indices, got dtype {arr.dtype}")
    if n_classes is not None and arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise DataError(f"{what} must lie in 0..{n_classes - 1}")
    return arr.astype(np.int64)


def as_depth(max_depth: int) -> int:
    if isinstance(max_depth, bool) or not isinstance(max_depth, (int, np.integer)):
        raise ConfigError(f"tree depth must be an int >= 1, got {max_depth!r}")
    if max_depth < 1:
        raise ConfigError(f"tree depth must be >= 1, got {max_depth}")
    return int(max_depth)


def as_class_names(class_names: Sequence[str] | None, n_classes: int) -> list[str]:
    if class_names is None:
        return [str(c) for c in range(n_classes)]
    names = [str(c) for c in class_names]
    if len(names) != n_classes:
        raise DataError(f"expected {n_classes} class names, got {len(names)}")
    return names


# --------------------------------------------------------------------------- fitting


def fit_class_tree(
    features: ArrayLike,
    network_preds: ArrayLike,
    class_index: int,
    max_depth: int,
    seed: int,
) -> DecisionTreeClassifier:
    """One-vs-rest tree for ``class_index`` fitted to the network's predictions.

    Target: ``network_preds == class_index`` (bool), CART with Gini impurity and no class
    weighting, so leaf probabilities are plain fractions of training items.  ``seed`` fixes
    scikit-learn's random feature order, which decides ties between equally good splits.
    """
    x = as_features(features, "features")
    y = as_preds(network_preds, x.shape[0], "network_preds")
    depth = as_depth(max_depth)
    tree = DecisionTreeClassifier(max_depth=depth, random_state=int(seed))
    return tree.fit(x, y == int(class_index))


def fit_class_trees(
    features: ArrayLike,
    network_preds: ArrayLike,
    n_classes: int,
    max_depth: int,
    seed: int,
) -> list[DecisionTreeClassifier]:
    """One tree per class (``trees[c]`` is class c's), as seed 001 fits them."""
    y = as_preds(network_preds, np.asarray(features).shape[0], "network_preds", n_classes)
    return [fit_class_tree(features, y, c, max_depth, seed) for c in range(n_classes)]


# --------------------------------------------------------------------------- rules


def _merge(path: list[Condition]) -> tuple[Condition, ...]:
    """Keep the tightest bound per (feature, op): ``f3 > 0.2 AND f3 > 0.5`` is ``f3 > 0.5``.

    Conditions stay in the order their feature first appears on the path.
    """
    best: dict[tuple[int, str], Condition] = {}
    for cond in path:
        key = (cond.feature, cond.op)
        old = best.get(key)
        tighter = old is None or (
            cond.threshold < old.threshold if cond.op == "<=" else cond.threshold > old.threshold
        )
        if tighter:
            best[key] = cond
    first = {}
    for i, cond in enumerate(path):
        first.setdefault((cond.feature, cond.op), i)
    return tuple(best[k] for k in sorted(best, key=first.__getitem__))


def positive_index(tree: DecisionTreeClassifier) -> int | None:
    """Column of ``True`` in the tree's classes, None when training had no positive."""
    classes = list(tree.classes_)
    return classes.index(True) if True in classes else None


def tree_rules(
    tree: DecisionTreeClassifier,
    feature_names: Sequence[str] | None,
    class_name: str,
    *,
    all_leaves: bool = False,
) -> list[Rule]:
    """Rules of one fitted one-vs-rest tree, one per leaf predicting the class.

    A leaf predicts the class when the tree does (``tree.predict``: the larger of the two
    training fractions, a tie going to "not").  ``all_leaves=True`` also returns the
    negative leaves; the rules then partition the training set.  Support and precision come
    from the tree's stored training counts, so the tree must be fitted without sample
    weights (``fit_class_tree`` does).  Leaves are listed in depth-first order.
    """
    if not hasattr(tree, "tree_"):
        raise DataError("tree_rules needs a fitted DecisionTreeClassifier")
    n_features = int(tree.n_features_in_)
    names = default_feature_names(n_features) if feature_names is None else list(feature_names)
    if len(names) != n_features:
        raise DataError(f"expected {n_features} feature names, got {len(names)}")
    t = tree.tree_
    pos = positive_index(tree)
    n_total = int(t.n_node_samples[0])
    rules: list[Rule] = []
    stack: list[tuple[int, list[Condition]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        left, right = int(t.children_left[node]), int(t.children_right[node])
        if left != -1:  # split node: push right first so the left branch is listed first
            f, thr = int(t.feature[node]), float(t.threshold[node])
            stack.append((right, [*path, Condition(f, names[f], ">", thr)]))
            stack.append((left, [*path, Condition(f, names[f], "<=", thr)]))
            continue
        value = np.asarray(t.value[node, 0], dtype=np.float64)
        frac = value / value.sum()
        p_pos = float(frac[pos]) if pos is not None else 0.0
        positive = pos is not None and int(np.argmax(frac)) == pos
        if not (positive or all_leaves):
            continue
        n = int(t.n_node_samples[node])
        rules.append(
            Rule(
                class_name=str(class_name),
                positive=positive,
                conditions=_merge(path),
                n_support=n,
                support=n / n_total,
                precision=p_pos if positive else 1.0 - p_pos,
                leaf=node,
            )
        )
    return rules


# --------------------------------------------------------------------------- prediction
