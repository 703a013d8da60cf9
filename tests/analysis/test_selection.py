"""Choosing the grid cell (seed 000's Table 2), without Ray: the rule and its tie-break."""

import numpy as np
import pandas as pd
import pytest

from fer_ray.analysis.selection import choose, oof_table, table2, with_intervals


def _trials(cells):
    return pd.DataFrame(
        [{"lr": lr, "hidden": h, "fold": f, "val_acc": a} for (lr, h), accs in cells.items()
         for f, a in enumerate(accs)]
    )  # fmt: skip


def test_table2_is_mean_and_sample_std_over_folds():
    t = table2(_trials({(0.005, 100): [0.5, 0.7], (0.001, 100): [0.6, 0.6]}))
    row = t[(t["lr"] == 0.005)].iloc[0]
    assert row["mean"] == pytest.approx(0.6) and row["std"] == pytest.approx(np.sqrt(0.02))
    assert (t["count"] == 2).all()


def test_ties_go_to_fewer_hidden_units_then_the_larger_lr():
    t = table2(
        _trials(
            {(0.001, 300): [0.6, 0.7], (0.001, 200): [0.7, 0.6], (0.005, 200): [0.65, 0.65],
             (0.0005, 100): [0.5, 0.5]}
        )
    )  # fmt: skip
    chosen = choose(t)
    assert (chosen["lr"], chosen["hidden"]) == (0.005, 200)  # three tie; 200 < 300; 0.005 > 0.001
    assert chosen["rule"] == "best" and chosen["best"]["lr"] == 0.005


def test_the_paper_rule_takes_the_papers_cell_and_keeps_the_best_beside_it():
    t = table2(_trials({(0.005, 100): [0.5, 0.5], (0.001, 200): [0.7, 0.7]}))
    chosen = choose(t, "paper", (0.005, 100))
    assert (chosen["lr"], chosen["hidden"], chosen["rule"]) == (0.005, 100, "paper")
    assert (chosen["best"]["lr"], chosen["best"]["hidden"]) == (0.001, 200)
    assert chosen["paper"]["mean_val_acc"] == pytest.approx(0.5)


def test_out_of_fold_predictions_give_the_pooled_accuracy_and_its_interval():
    splits = pd.DataFrame(
        {"item": range(8), "label": [0, 1, 0, 1, 0, 1, 0, 1], "group": list("aabbccdd"),
         "fold": [0, 0, 1, 1, 0, 0, 1, 1], "test": False}
    )  # fmt: skip
    trials = pd.DataFrame(
        [{"lr": 0.1, "hidden": 5, "fold": 0, "val_acc": 0.75, "val_preds": "0100"},
         {"lr": 0.1, "hidden": 5, "fold": 1, "val_acc": 0.5, "val_preds": "0011"}]
    )  # fmt: skip
    oof = oof_table(trials, splits)
    assert oof["correct"].tolist() == [True, True, True, False, True, False, False, True]
    t = with_intervals(table2(trials), oof)
    row = t.iloc[0]
    assert row["pooled"] == pytest.approx(5 / 8) and row["n_items"] == 8 and row["n_groups"] == 4
    assert row["low"] <= row["pooled"] <= row["high"]
    assert row["mean"] == pytest.approx(0.625)  # equal fold sizes: pooled == mean over folds
