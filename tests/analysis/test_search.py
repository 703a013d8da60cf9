"""A search's table, history and importances (fANOVA and variance share), from constructed
trials."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from fer_ray.analysis.search import (
    importances,
    pareto_front,
    runner_up,
    search_history,
    search_table,
)
from fer_ray.config import Config
from fer_ray.search_space import Domain, default_cell

# a searcher's default space: lr log-uniform over search.lr_range, hidden an integer range
SPACE = default_cell(Config(search=dataclasses.replace(Config().search, algorithm="random")))
SPLITS = pd.DataFrame(
    {"item": range(6), "label": [0, 1, 0, 1, 0, 1], "group": list("aabbcc"),
     "fold": [0, 0, 1, 1, 2, 2]}
)  # fmt: skip


def _trials():
    return pd.DataFrame(
        [
            {"trial": "t0", "lr": 0.001, "hidden": 100, "folds_done": 3,
             "fold_mean_val_acc": 0.5, "fold_accs": "1.0,0.5,0.0", "fold_preds": "01|00|10",
             "order": 0},
            {"trial": "t1", "lr": 0.002, "hidden": 200, "folds_done": 1,
             "fold_mean_val_acc": 0.9, "fold_accs": "", "fold_preds": "", "order": 1},
            {"trial": "t2", "lr": 0.003, "hidden": 150, "folds_done": 3,
             "fold_mean_val_acc": 2 / 3, "fold_accs": "1.0,1.0,0.0", "fold_preds": "01|01|10",
             "order": 2},
        ]
    )  # fmt: skip


def test_only_complete_proposals_compete_and_get_a_pooled_interval():
    table, best = search_table(_trials(), SPLITS, folds=3)
    assert table["complete"].tolist() == [True, False, True]
    assert best["trial"] == "t2"  # t1's 0.9 is a one-fold partial mean: not comparable
    assert best["pooled"] == pytest.approx(4 / 6)  # 01 01 10 against labels 01 01 01
    assert best["low"] <= best["pooled"] <= best["high"]
    assert best["std_val_acc"] == pytest.approx(np.std([1.0, 1.0, 0.0], ddof=1))
    assert np.isnan(table.loc[1, "pooled"])


def test_history_keeps_the_best_complete_proposal_so_far():
    table, _ = search_table(_trials(), SPLITS, folds=3)
    h = search_history(table)
    assert h["best_so_far"].tolist() == pytest.approx([0.5, 0.5, 2 / 3])


def test_importances_need_three_complete_proposals_and_sum_to_one():
    table, _ = search_table(_trials(), SPLITS, folds=3)
    assert importances(table, SPACE).empty
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(12):
        lr, h = float(10 ** rng.uniform(-3.3, -2.3)), int(rng.integers(100, 301))
        rows.append({"lr": lr, "hidden": h, "fold_mean_val_acc": h / 300, "complete": True})
    imp = importances(pd.DataFrame(rows), SPACE, seed=0).set_index("parameter")
    assert imp["importance"].sum() == pytest.approx(1.0)
    assert imp.loc["hidden", "importance"] > imp.loc["lr", "importance"]  # only hidden matters


def test_variance_importances_give_the_parameter_that_moves_the_objective_its_share():
    rows = []
    for i, lr in enumerate([0.001, 0.002, 0.004] * 4):
        h = 100 + 50 * (i // 3)  # 100, 150, 200, 250: the objective follows hidden only
        rows.append({"lr": lr, "hidden": h, "fold_mean_val_acc": h / 1000, "complete": True})
    imp = importances(pd.DataFrame(rows), SPACE, fanova=False).set_index("parameter")
    assert (imp["method"] == "variance").all()
    # lr's three values each see every hidden once: no variance between them
    assert imp.loc["lr", "importance"] == pytest.approx(0.0)
    assert imp.loc["hidden", "importance"] == pytest.approx(1.0)
    few = pd.DataFrame(rows[:5])  # fewer than 6: each bin would hold one or two trials
    assert importances(few, SPACE, fanova=False).empty
    flat = pd.DataFrame(rows).assign(fold_mean_val_acc=0.5)
    imp = importances(flat, SPACE, fanova=False).set_index("parameter")
    assert imp["importance"].tolist() == pytest.approx([0.5, 0.5])  # nothing moves: equal


def test_a_searched_config_key_gets_its_importance_and_reaches_the_best_trial():
    """A categorical searched key (``train.optimizer``) that alone moves the objective takes the
    whole variance share; the best trial carries its value."""
    rows = []
    for i in range(12):
        opt = ("adam", "sgd")[i % 2]
        rows.append({"trial": f"t{i}", "lr": 0.001 * (1 + i % 3), "hidden": 100 + 100 * (i // 6),
                     "train.optimizer": opt, "folds_done": 2, "order": i,
                     "fold_mean_val_acc": 0.5 if opt == "adam" else 0.6,
                     "fold_accs": "0.5,0.5", "fold_preds": ""})  # fmt: skip
    space = {**SPACE, "train.optimizer": Domain("choice", ("adam", "sgd"))}
    table, best = search_table(pd.DataFrame(rows).assign(fold_preds="0|1"), SPLITS.iloc[:4]
                               .assign(fold=[0, 0, 1, 1]), folds=2)  # fmt: skip
    assert best["train.optimizer"] == "sgd"
    assert "train.optimizer" in search_history(table).columns
    imp = importances(table, space, fanova=False).set_index("parameter")
    assert imp.loc["train.optimizer", "importance"] == pytest.approx(1.0)
    assert imp.loc["lr", "importance"] == pytest.approx(0.0)
    fan = importances(table, space, seed=0).set_index("parameter")
    assert set(fan.index) == {"lr", "hidden", "train.optimizer"}
    assert fan["importance"].idxmax() == "train.optimizer"


def test_the_pareto_front_keeps_exactly_the_undominated_complete_trials():
    t = pd.DataFrame(
        {"acc": [0.9, 0.8, 0.8, 0.7, 0.95, 0.6], "params": [300, 100, 200, 50, 400, 10],
         "complete": [True, True, True, True, False, True]}
    )  # fmt: skip
    front = pareto_front(t, {"acc": "max", "params": "min"})
    # (0.8, 200) is dominated by (0.8, 100); the incomplete 0.95 is never on the front
    assert front.tolist() == [True, True, False, True, False, True]


def test_the_best_proposal_is_paired_with_the_runner_up_on_the_same_images():
    table, best = search_table(_trials(), SPLITS, folds=3)
    pair = runner_up(table, best, SPLITS, seed=0)
    # t2 gets items 0-3 right, t0 items 0, 1, 2 (t1 stopped early: not a runner-up)
    assert pair["runner_up"]["trial"] == "t0"
    assert pair["difference"]["estimate"] == pytest.approx(1 / 6)
    assert (pair["mcnemar"]["b"], pair["mcnemar"]["c"]) == (1, 0)
    assert runner_up(table[table["trial"] != "t0"], best, SPLITS) is None  # nobody to pair
