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


def test_the_best_cell_is_paired_with_the_runner_up_on_the_same_images():
    from fer_ray.analysis.selection import runner_up_pairing

    t = pd.DataFrame(
        {"lr": [0.01, 0.001, 0.01], "hidden": [100, 50, 200], "mean": [0.8, 0.7, 0.7],
         "std": [0.0, 0.0, 0.0]}
    )  # fmt: skip
    items = np.arange(10)
    groups = np.where(items < 5, "a", "b")
    right = {(0.01, 100): items < 8, (0.001, 50): items < 6, (0.01, 200): items < 2}
    oof = pd.concat(
        [
            pd.DataFrame({"lr": lr, "hidden": h, "item": items[::-1], "group": groups[::-1],
                          "correct": c[::-1]})
            for (lr, h), c in right.items()
        ]
    )  # fmt: skip
    out = runner_up_pairing(t, oof, seed=0)
    assert (out["best"]["lr"], out["best"]["hidden"]) == (0.01, 100)
    # the tie at 0.7 goes to fewer hidden units, as in choose
    assert (out["runner_up"]["lr"], out["runner_up"]["hidden"]) == (0.001, 50)
    # items 6 and 7 (subject b) only the best gets right: +2/10; per subject the difference is
    # 0 (a) and 2/5 (b), so a bootstrap resample's mean is 0, 0.2 or 0.4; the cluster
    # t-interval (the default) over 2 subjects has 1 degree of freedom: the whole range
    d = out["difference"]
    assert d["estimate"] == pytest.approx(0.2)
    assert (d["low"], d["high"], d["method"]) == (-1.0, 1.0, "t")
    assert (d["n_items"], d["n_groups"]) == (10, 2)
    assert (out["mcnemar"]["b"], out["mcnemar"]["c"]) == (2, 0)
    with pytest.raises(ValueError, match="one cell"):
        runner_up_pairing(t.iloc[:1], oof)


def test_a_diverged_cell_has_no_mean_and_is_never_chosen():
    import math

    from fer_ray.errors import StageError

    trials = pd.DataFrame(
        {"lr": [1e3, 1e3, 1e-3, 1e-3], "hidden": [10, 10, 10, 10], "fold": [0, 1, 0, 1],
         "val_acc": [float("nan"), 0.90, 0.40, 0.50], "diverged": [True, None, None, None]}
    )  # fmt: skip
    t = table2(trials).set_index("lr")
    assert t.loc[1e3, "diverged"] == 1 and t.loc[1e3, "count"] == 2
    assert math.isnan(t.loc[1e3, "mean"])  # not 0.90: the other fold alone would flatter it
    assert t.loc[1e-3, "mean"] == pytest.approx(0.45) and t.loc[1e-3, "diverged"] == 0
    chosen = choose(t.reset_index(), rule="paper", paper=(1e3, 10))
    assert chosen["lr"] == 1e-3 and "paper" not in chosen
    with pytest.raises(StageError, match="every one of the 2 searched cells diverged"):
        choose(table2(trials.assign(diverged=True)))
    assert "diverged" not in table2(trials.drop(columns="diverged")).columns


def test_a_cell_with_a_diverged_fold_gives_no_out_of_fold_rows():
    splits = pd.DataFrame({"item": [0, 1, 2, 3], "group": ["a", "b", "c", "d"],
                           "label": [0, 1, 0, 1], "fold": [0, 0, 1, 1]})  # fmt: skip
    trials = pd.DataFrame(
        {"lr": [1e3, 1e3, 1e-3, 1e-3], "hidden": [10] * 4, "fold": [0, 1, 0, 1],
         "val_acc": [float("nan"), 1.0, 0.5, 0.5], "val_preds": ["", "01", "00", "11"],
         "diverged": [True, None, None, None]}
    )  # fmt: skip
    oof = oof_table(trials, splits)
    assert set(oof["lr"]) == {1e-3} and oof["correct"].tolist() == [True, False, False, True]
