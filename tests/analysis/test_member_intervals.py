"""Intervals of the ensemble's analyses on constructed members with known answers."""

import numpy as np
import pandas as pd
import pytest

from fer_ray.analysis import member_intervals as mi
from fer_ray.analysis.pruning import bits

GROUPS = np.repeat(np.arange(6), 5).astype(str)  # 30 test images of 6 subjects


def _baselines(none, rules):
    return [
        {"none": {"correct": bits(none)}, **{r: {"correct": bits(c)} for r, c in rules.items()}}
    ]


def test_a_rule_that_changes_nothing_has_a_zero_paired_difference():
    right = np.arange(30) % 3 != 0
    b = _baselines(right, {"magnitude": right, "angle": right, "random": ~right})
    t = mi.pruning_intervals(b, GROUPS).set_index("rule")
    assert t.loc["magnitude", "accuracy"] == pytest.approx(right.mean())
    assert (t.loc["magnitude", ["diff_vs_none", "diff_low", "diff_high"]] == 0).all()
    assert t.loc["random", "diff_high"] < 0  # flipping every answer is significantly worse


def test_sweep_falloff_is_the_largest_kept_count_significantly_below_unpruned():
    right = np.ones(30, bool)
    rows = []
    for n_kept, wrong in ((512, 0), (100, 1), (50, 20), (10, 30)):
        c = right.copy()
        c[:wrong] = False
        rows.append({"ratio": 1 - n_kept / 512, "n_kept": n_kept, "correct": bits(c)})
    table, falls = mi.sweep_falloff([pd.DataFrame(rows)], _baselines(right, {}), GROUPS)
    assert table["n_kept"].tolist() == [512, 100, 50, 10]
    assert table["significant"].tolist() == [False, False, True, True]  # 1 image: not significant
    assert falls == 50


def test_recall_per_class_and_the_papers_average_threshold():
    labels = np.array([0] * 10 + [1] * 20)
    preds = np.array([0] * 5 + [1] * 5 + [1] * 20)
    t = mi.class_recall_intervals(labels, preds, GROUPS, ["a", "b"]).set_index("class")
    assert t.loc["a", "recall"] == 0.5 and t.loc["b", "recall"] == 1.0 and t.loc["a", "n"] == 10
    values = np.array([[0.0, 1, 1, 1], [0.0, 1, 1, 1]])  # average: one feature far below
    assert mi.pruned_on_average(values) == 1


def test_ensemble_intervals_compare_the_vote_with_the_best_member_by_validation():
    labels = np.zeros(30, int)
    good = np.tile([0.9, 0.1], (30, 1))
    bad = np.tile([0.2, 0.8], (30, 1))
    out = mi.ensemble_intervals([bad, good, good], labels, GROUPS, val_accs=[0.9, 0.5, 0.6])
    assert out["best_member_by_val"] == 0  # chosen on validation, though it is the worst on test
    assert out["vote"]["estimate"] == 1.0
    assert out["member_mean"]["estimate"] == pytest.approx(2 / 3)
    assert out["vote_minus_best_member"]["estimate"] == 1.0
    assert out["mcnemar_vote_vs_best_member"]["b"] == 30 and out["n_groups"] == 6


def test_holdout_spread_separates_members_from_holdouts():
    h = pd.DataFrame(
        {"member_mean": [0.6, 0.7], "member_std": [0.01, 0.03], "vote_acc": [0.62, 0.72]}
    )
    s = mi.holdout_spread(h)
    assert s["member_spread"] == pytest.approx(0.02)
    assert s["holdout_spread_member_mean"] == pytest.approx(np.std([0.6, 0.7], ddof=1))


def test_architecture_tables_score_each_backbones_vote_on_the_shared_test_set():
    labels = np.arange(30) % 3
    onehot = np.eye(3)[labels]
    wrong = np.eye(3)[(labels + 1) % 3]
    # "a": two perfect members; "b": one perfect and one always wrong but less confident
    by_bb = {
        "a": ([onehot, onehot], [0.9, 0.8]),
        "b": ([onehot, 0.6 * wrong + 0.4 / 3], [0.7, 0.6]),
    }
    summary, recall, confusion = mi.architecture_tables(by_bb, labels, GROUPS)
    s = summary.set_index("backbone")
    assert s.loc["a", "test_acc_mean"] == 1.0 and s.loc["a", "vote_acc"] == 1.0
    assert s.loc["b", "test_acc_mean"] == pytest.approx(0.5)
    assert s.loc["b", "test_acc_std"] == pytest.approx(np.std([1.0, 0.0], ddof=1))
    assert s.loc["b", "vote_acc"] == 1.0  # the confident member wins every vote
    assert (s["vote_low"] <= s["vote_acc"]).all() and (s["vote_acc"] <= s["vote_high"]).all()
    assert set(recall["backbone"]) == {"a", "b"} and (recall["recall"] == 1.0).all()
    diag = confusion[confusion["true"] == confusion["pred"]]
    assert diag.groupby("backbone")["count"].sum().tolist() == [30, 30]
    assert confusion["count"].sum() == 60


def test_the_vote_is_paired_with_the_member_mean():
    labels = np.zeros(30, int)
    good = np.tile([0.9, 0.1], (30, 1))
    bad = np.tile([0.2, 0.8], (30, 1))
    out = mi.ensemble_intervals([bad, good, good], labels, GROUPS, val_accs=[0.9, 0.5, 0.6])
    # every image: vote right (1) minus 2 of 3 members right = 1/3, in every resample
    d = out["vote_minus_member_mean"]
    assert (d["estimate"], d["low"], d["high"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert d["n_groups"] == 6


def test_the_falloff_table_carries_one_sided_and_holm_p_values():
    right = np.ones(30, bool)
    rows = []
    for n_kept, wrong in ((512, 0), (100, 1), (50, 20), (10, 30)):
        c = right.copy()
        c[:wrong] = False
        rows.append({"ratio": 1 - n_kept / 512, "n_kept": n_kept, "correct": bits(c)})
    table, _ = mi.sweep_falloff(
        [pd.DataFrame(rows)], _baselines(right, {}), GROUPS, method="percentile"
    )
    t = table.set_index("n_kept")
    assert t.loc[512, "p_one_sided"] == 1.0 and np.isnan(t.loc[512, "p_holm"])
    # 10 kept: every image wrong, every resample below 0: p = 1 / 2001
    assert t.loc[10, "p_one_sided"] == pytest.approx(1 / 2001)
    # the t method (the default): every subject loses everything, no spread, p = 0
    by_t = mi.sweep_falloff([pd.DataFrame(rows)], _baselines(right, {}), GROUPS)[0]
    assert by_t.set_index("n_kept").loc[10, "p_one_sided"] == 0.0
    pruned = t.loc[[100, 50, 10], "p_one_sided"].to_numpy()
    from fer_ray.analysis.intervals import holm

    assert t.loc[[100, 50, 10], "p_holm"].tolist() == pytest.approx(holm(pruned).tolist())
