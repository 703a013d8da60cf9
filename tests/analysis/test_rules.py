"""Tests for the decision-tree rule extraction of seed 001 (fer_ray.analysis.rules)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_ray.analysis import rule_fidelity, rules
from fer_ray.errors import ConfigError, DataError

THRESHOLD = 0.41


def _threshold_task(n_train=300, n_test=200, n_features=8, seed=0):
    """The network says "happy" (1) iff f3 > 0.41, else "sad" (0).

    f3 avoids the gap (0.31, 0.51) and the training split holds 0.31 and 0.51 exactly, so
    CART's midpoint threshold is 0.41 and every test row falls on the right side of it.
    """
    rng = np.random.default_rng(seed)

    def draw(n):
        x = rng.normal(size=(n, n_features))
        low = rng.uniform(-2.0, 0.31, n)
        high = rng.uniform(0.51, 2.0, n)
        x[:, 3] = np.where(rng.random(n) < 0.4, high, low)
        return x

    x_tr, x_te = draw(n_train), draw(n_test)
    x_tr[0, 3], x_tr[1, 3] = 0.31, 0.51
    return x_tr, (x_tr[:, 3] > THRESHOLD).astype(int), x_te, (x_te[:, 3] > THRESHOLD).astype(int)


def _nested_task(n=400, seed=1):
    """Three classes: 0 iff f2 <= 0; else 1 iff f5 <= 0.5; else 2 (depth 2 is exact)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y = np.where(x[:, 2] <= 0, 0, np.where(x[:, 5] <= 0.5, 1, 2))
    return x, y


def _linear_network(n=600, n_features=12, n_classes=4, seed=2):
    """A random linear "network" on random features: no tree is exact."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_features))
    w = rng.normal(size=(n_features, n_classes))
    return x, (x @ w).argmax(axis=1)


def _walk(tree, row):
    """Reference traversal of a fitted sklearn tree, independent of predict_proba."""
    t = tree.tree_
    node = 0
    while t.children_left[node] != -1:
        go_left = np.float32(row[t.feature[node]]) <= t.threshold[node]
        node = t.children_left[node] if go_left else t.children_right[node]
    value = t.value[node, 0]
    classes = list(tree.classes_)
    return value[classes.index(True)] / value.sum() if True in classes else 0.0


def test_depth_one_recovers_a_single_threshold_exactly():
    x_tr, y_tr, x_te, y_te = _threshold_task()
    trees = rules.fit_class_trees(x_tr, y_tr, n_classes=2, max_depth=1, seed=0)
    fid = rule_fidelity.fidelity(trees, x_te, y_te, ["sad", "happy"])
    assert fid == {
        "per_class": {"sad": 1.0, "happy": 1.0},
        "mean_per_class": 1.0,
        "overall": 1.0,
        "n": 200,
    }
    (rule,) = rules.tree_rules(trees[1], None, "happy")
    (cond,) = rule.conditions
    assert (cond.feature, cond.name, cond.op) == (3, "f3", ">")
    assert cond.threshold == pytest.approx(THRESHOLD, abs=1e-6)
    assert rule.text == "IF f3 > 0.41 THEN happy"
    assert rule.n_support == int(y_tr.sum())
    assert rule.support == pytest.approx(y_tr.mean())
    assert rule.precision == 1.0
    (sad,) = rules.tree_rules(trees[0], None, "sad")
    assert sad.text == "IF f3 <= 0.41 THEN sad"


def test_feature_names_appear_in_rules():
    x_tr, y_tr, _, _ = _threshold_task()
    tree = rules.fit_class_tree(x_tr, y_tr, 1, max_depth=1, seed=0)
    names = [f"Feature{i + 1}" for i in range(8)]  # seed 001 counts from 1
    (rule,) = rules.tree_rules(tree, names, "happy")
    assert rule.text == "IF Feature4 > 0.41 THEN happy"
    with pytest.raises(DataError, match="8 feature names"):
        rules.tree_rules(tree, names[:5], "happy")


def test_depth_two_is_exact_on_nested_thresholds_and_depth_one_is_not():
    x, y = _nested_task()
    x_tr, y_tr, x_te, y_te = x[:250], y[:250], x[250:], y[250:]
    sweep = rule_fidelity.depth_sweep(x_tr, y_tr, x_te, y_te, [1, 2], ["a", "b", "c"], seed=0)
    d1, d2 = sweep.iloc[0], sweep.iloc[1]
    assert d2["fidelity"] > 0.97 and d2["train_fidelity"] == 1.0
    assert d1["train_fidelity"] < 0.9  # one split cannot separate three classes
    trees = rules.fit_class_trees(x_tr, y_tr, 3, max_depth=2, seed=0)
    # greedy CART may add a tiny extra leaf for an outlier; the main rule is the big one
    rule_b = max(rules.tree_rules(trees[1], None, "b"), key=lambda r: r.n_support)
    assert rule_b.support > 0.25 and rule_b.precision == 1.0
    assert [(c.name, c.op) for c in rule_b.conditions] == [("f2", ">"), ("f5", "<=")]
    assert rule_b.length == 2
    assert rule_b.text.startswith("IF f2 > ") and " AND f5 <= " in rule_b.text


def test_support_of_all_leaves_adds_up_to_the_training_set():
    x, y = _linear_network()
    for c in range(4):
        tree = rules.fit_class_tree(x, y, c, max_depth=4, seed=3)
        leaves = rules.tree_rules(tree, None, str(c), all_leaves=True)
        assert len(leaves) == tree.get_n_leaves()
        assert sum(r.n_support for r in leaves) == len(y)
        assert sum(r.support for r in leaves) == pytest.approx(1.0)
        # the rules partition the training rows, and each rule's counts are its own rows'
        cover = np.stack([r.covers(x) for r in leaves])
        assert (cover.sum(axis=0) == 1).all()
        for r, rows in zip(leaves, cover):
            assert rows.sum() == r.n_support
            agree = (y[rows] == c) if r.positive else (y[rows] != c)
            assert r.precision == pytest.approx(agree.mean())
        # support-weighted precision over all leaves is the tree's training agreement
        agree_all = sum(r.n_support * r.precision for r in leaves) / len(y)
        assert agree_all == pytest.approx(np.mean(tree.predict(x) == (y == c)))
        positives = rules.tree_rules(tree, None, str(c))
        assert positives == [r for r in leaves if r.positive]
        assert all(r.precision > 0.5 for r in positives)


def _leaf_depths(tree):
    t, depth, stack = tree.tree_, {}, [(0, 0)]
    while stack:
        node, d = stack.pop()
        if t.children_left[node] == -1:
            depth[node] = d
        else:
            stack += [(t.children_left[node], d + 1), (t.children_right[node], d + 1)]
    return depth


def test_repeated_feature_on_a_path_keeps_the_tightest_bound():
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, size=(400, 2))
    y = ((x[:, 0] > 0.3) & (x[:, 0] <= 0.6)).astype(int)  # a band on f0 needs two cuts
    tree = rules.fit_class_tree(x, y, 1, max_depth=3, seed=0)
    (rule,) = rules.tree_rules(tree, None, "band")
    assert sorted((c.name, c.op) for c in rule.conditions) == [("f0", "<="), ("f0", ">")]
    bounds = {c.op: c.threshold for c in rule.conditions}
    assert bounds[">"] == pytest.approx(0.3, abs=0.02)
    assert bounds["<="] == pytest.approx(0.6, abs=0.02)
    assert rule.precision == 1.0


def test_merged_rules_select_exactly_their_leaf():
    x, y = _linear_network(n_features=3)  # few features: deep paths reuse them
    merged = 0
    for c in range(4):
        tree = rules.fit_class_tree(x, y, c, max_depth=7, seed=0)
        depth = _leaf_depths(tree)
        leaf_of = tree.apply(x)
        for r in rules.tree_rules(tree, None, str(c), all_leaves=True):
            keys = [(cond.feature, cond.op) for cond in r.conditions]
            assert len(keys) == len(set(keys))
            np.testing.assert_array_equal(r.covers(x), leaf_of == r.leaf)
            merged += r.length < depth[r.leaf]
    assert merged > 0  # some path did repeat a bound, so merging was exercised


def test_fidelity_equals_a_direct_loop():
    x, y = _linear_network()
    x_tr, y_tr, x_te, y_te = x[:400], y[:400], x[400:], y[400:]
    trees = rules.fit_class_trees(x_tr, y_tr, 4, max_depth=3, seed=5)
    fid = rule_fidelity.fidelity(trees, x_te, y_te)
    per_class_hits = [0] * 4
    overall_hits = 0
    for row, label in zip(x_te, y_te):
        probs = [_walk(t, row) for t in trees]
        for c in range(4):
            per_class_hits[c] += (probs[c] > 0.5) == (label == c)
        best = max(range(4), key=lambda c: (probs[c], -c))  # highest P, ties: lowest c
        overall_hits += best == label
    n = len(y_te)
    for c in range(4):
        assert fid["per_class"][str(c)] == pytest.approx(per_class_hits[c] / n)
    assert fid["mean_per_class"] == pytest.approx(sum(per_class_hits) / (4 * n))
    assert fid["overall"] == pytest.approx(overall_hits / n)
    assert 0.3 < fid["overall"] < 1.0  # neither trivial nor exact on this problem
    np.testing.assert_array_equal(
        rule_fidelity.combined_predict(trees, x_te),
        [max(range(4), key=lambda c: (_walk(trees[c], r), -c)) for r in x_te],
    )


def test_deeper_trees_never_decrease_training_fidelity():
    x, y = _linear_network(seed=7)
    depths = [1, 2, 3, 4, 6, 8, 12]
    for c in range(4):
        train_fid = [
            rule_fidelity.class_tree_result(x, y, x, y, c, d, 0, ["a", "b", "c", "d"])[
                "train_fidelity"
            ]
            for d in depths
        ]
        assert all(b >= a for a, b in zip(train_fid, train_fid[1:]))
        assert train_fid[-1] > train_fid[0]
    sweep = rule_fidelity.depth_sweep(x, y, x[:100], y[:100], depths, ["a", "b", "c", "d"], seed=0)
    col = sweep["train_mean_per_class_fidelity"].to_numpy()
    assert (np.diff(col) >= 0).all()
    assert list(sweep["depth"]) == depths
    assert (np.diff(sweep["n_rules"].to_numpy()) >= 0).all()


def test_class_tree_result_is_json_and_matches_fidelity():
    x, y = _linear_network(seed=8)
    x_tr, y_tr, x_te, y_te = x[:400], y[:400], x[400:], y[400:]
    names = ["angry", "happy", "sad", "surprise"]
    results = [
        rule_fidelity.class_tree_result(x_tr, y_tr, x_te, y_te, c, 3, 11, names) for c in range(4)
    ]
    for res in results:
        json.dumps(res, allow_nan=False)  # plain types only, no NaN
        assert len(res["test_proba"]) == len(y_te)
        assert res["n_rules"] == len(res["rules"])
        assert res["depth_reached"] <= 3
    trees = rules.fit_class_trees(x_tr, y_tr, 4, max_depth=3, seed=11)
    assert rule_fidelity.fidelity_from_results(results[::-1], y_te) == rule_fidelity.fidelity(
        trees, x_te, y_te, names
    )
    sweep = rule_fidelity.depth_sweep(x_tr, y_tr, x_te, y_te, [3], names, seed=11)
    assert sweep.loc[0, "fidelity"] == pytest.approx(
        rule_fidelity.fidelity(trees, x_te, y_te)["overall"]
    )
    lengths = [len(r["conditions"]) for res in results for r in res["rules"]]
    assert sweep.loc[0, "n_rules"] == len(lengths)
    assert sweep.loc[0, "mean_rule_length"] == pytest.approx(np.mean(lengths))
    assert sweep.loc[0, "fidelity_happy"] == pytest.approx(results[1]["test_fidelity"])
    with pytest.raises(DataError, match="one result per class"):
        rule_fidelity.fidelity_from_results(results[:2] + results[3:], y_te)


def test_class_the_network_never_predicts_gives_no_rules_and_a_constant_no():
    # like seed 001's "Disgust" (100 % one-vs-rest): the tree always answers "not disgust"
    x, y = _linear_network(n_classes=3)
    trees = rules.fit_class_trees(x, y, 4, max_depth=3, seed=0)  # class 3 never predicted
    assert rules.tree_rules(trees[3], None, "disgust") == []
    assert (rule_fidelity.positive_proba(trees[3], x) == 0).all()
    fid = rule_fidelity.fidelity(trees, x, y)
    assert fid["per_class"]["3"] == 1.0
    assert fid["mean_per_class"] > fid["overall"]  # the mean flatters the combined figure
    res = rule_fidelity.class_tree_result(x, y, x, y, 3, 3, 0, ["a", "b", "c", "disgust"])
    assert res["n_rules"] == 0 and res["mean_rule_length"] is None
    assert (rule_fidelity.combined_predict(trees, x) != 3).all()


def test_bad_input_raises_clear_errors():
    x, y = _linear_network()
    with pytest.raises(ConfigError, match="depth must be >= 1"):
        rules.fit_class_tree(x, y, 0, max_depth=0, seed=0)
    with pytest.raises(DataError, match="one per row"):
        rules.fit_class_tree(x, y[:-1], 0, max_depth=2, seed=0)
    with pytest.raises(DataError, match="2-D"):
        rules.fit_class_tree(x[0], y[:1], 0, max_depth=2, seed=0)
    with pytest.raises(DataError, match="integer class indices"):
        rules.fit_class_tree(x, y.astype(float), 0, max_depth=2, seed=0)
    with pytest.raises(DataError, match=r"lie in 0\.\.2"):
        rules.fit_class_trees(x, y, 3, max_depth=2, seed=0)
    with pytest.raises(DataError, match="features"):
        rule_fidelity.class_tree_result(x, y, x[:, :3], y, 0, 2, 0, list("abcd"))
    tree = rules.fit_class_tree(x, y, 0, max_depth=2, seed=0)
    with pytest.raises(DataError, match="fitted on 12 features"):
        rule_fidelity.positive_proba(tree, x[:, :3])
    with pytest.raises(ConfigError, match="class_index"):
        rule_fidelity.class_tree_result(x, y, x, y, 4, 2, 0, list("abcd"))
