import math

import numpy as np
import pandas as pd
import pytest

from fer_ray.analysis import rule_tables

NET = np.array([0, 0, 1, 1])  # the member's test predictions


def result(c, depth, proba, rule_lengths, train_fid):
    name = "ab"[c]
    rules = [
        {"text": f"{name} rule {i}", "conditions": [{}] * n, "n_support": 3, "support": 0.3,
         "precision": 0.9}
        for i, n in enumerate(rule_lengths)
    ]  # fmt: skip
    test_fid = float(np.mean((np.array(proba) > 0.5) == (c == NET)))
    return {"class": name, "class_index": c, "depth": depth, "test_proba": proba, "rules": rules,
            "train_fidelity": train_fid, "test_fidelity": test_fid, "node_id": "n",
            "node_ip": "ip", "seconds": 0.5}  # fmt: skip


PERFECT = [result(0, 2, [1, 1, 0, 0], [1], 1.0), result(1, 2, [0, 0, 1, 1], [3], 1.0)]
RESULTS = {
    (0, 1): [
        result(0, 1, [0.9, 0.2, 0.1, 0.3], [2], 1.0),
        result(1, 1, [0.1, 0.6, 0.8, 0.2], [], 0.8),
    ],
    (0, 2): PERFECT,
    (1, 1): [{**r, "depth": 1} for r in PERFECT],
    (1, 2): PERFECT,
}


def test_fidelity_rows_match_hand_counts():
    t = rule_tables.rule_tables(RESULTS, {0: NET, 1: NET}, depth=1)
    row = t.fidelity.iloc[0].to_dict()
    # tree a says yes on item 0 only (3 of 4 agree with "net says a"); tree b on items 1-2
    # (2 of 4); the argmax of (P_a, P_b) gives 0, 1, 1, 0 against 0, 0, 1, 1: 2 of 4
    assert row == pytest.approx({"member": 0, "depth": 1, "overall": 0.5, "mean_per_class": 0.625,
        "train_mean_per_class": 0.9, "n_rules": 1, "mean_rule_length": 2.0, "n_test": 4,
        "fidelity_a": 0.75, "fidelity_b": 0.5})  # fmt: skip
    assert t.fidelity[["member", "depth"]].values.tolist() == [[0, 1], [0, 2], [1, 1], [1, 2]]
    assert t.fidelity["overall"].tolist() == [0.5, 1.0, 1.0, 1.0]
    assert len(t.rules) == 1 + 2 * 3 and t.rules["length"].tolist()[:3] == [2, 1, 3]


def test_sweep_is_mean_and_sample_std_over_members_per_depth():
    t = rule_tables.rule_tables(RESULTS, {0: NET, 1: NET}, depth=1)
    sweep = t.sweep.set_index("depth")
    assert sweep.loc[1, "overall_mean"] == pytest.approx(0.75)
    assert sweep.loc[1, "overall_std"] == pytest.approx(math.sqrt(2 * 0.25**2))
    assert sweep.loc[2, "overall_std"] == 0.0 and sweep.loc[2, "n_rules_mean"] == 2.0
    one = rule_tables.sweep_table(t.fidelity[t.fidelity["member"] == 0])
    assert (one.filter(like="_std").to_numpy() == 0).all()  # one member: std 0, not NaN


def test_text_lists_the_reported_depth_and_says_when_a_class_has_no_rule():
    t = rule_tables.rule_tables(RESULTS, {0: NET, 1: NET}, depth=1)
    assert t.text[:4] == ["member 0 · a (test fidelity 75.00 %)", "  a rule 0",
                          "member 0 · b (test fidelity 50.00 %)", "  (no rule: never)"]  # fmt: skip
    assert len(t.text) == 8


def test_summary_at_depth_and_paper_figures():
    t = rule_tables.rule_tables(RESULTS, {0: NET, 1: NET}, depth=1)
    s = rule_tables.summary(t.fidelity, [0, 1], [1, 2], 1, ["a", "b"], 512)
    at = s["at_depth"]
    assert at["overall_mean"] == pytest.approx(0.75)
    assert at["mean_per_class_mean"] == pytest.approx((0.625 + 1.0) / 2)
    assert at["per_class"] == pytest.approx({"a": 0.875, "b": 0.75})
    assert s["n_test"] == 4 and s["n_features"] == 512
    paper = s["paper"]
    assert np.mean(list(paper["per_class"].values())) == pytest.approx(
        paper["mean_per_class"], abs=1e-4
    )


def test_member_split_takes_the_feature_columns_of_train_and_test_rows():
    frame = pd.DataFrame({"item": [0, 1, 2], "role": ["train", "val", "test"], "label": [0, 1, 1],
                          "pred": [1, 0, 1], "p_pred": 0.5, "f0": [1.0, 2.0, 3.0],
                          "f1": [4.0, 5.0, 6.0]})  # fmt: skip
    x_tr, p_tr, x_te, p_te = rule_tables.member_split(frame)
    assert x_tr.tolist() == [[1.0, 4.0]] and p_tr.tolist() == [1]
    assert x_te.tolist() == [[3.0, 6.0]] and p_te.tolist() == [1]
    assert x_tr.dtype == np.float32 and p_te.dtype == np.int64
