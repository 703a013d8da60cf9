"""One member trainer: with seed 004's ``train.*`` (class weights, ``lr: auto``, custom phases)
the clean stage's ``none`` members are the ensemble's members, to the digit.

The config is tune_configs/fer2013_seed004.yaml on its on-disk format, shrunk as
tests/test_recipe_configs.py shrinks it, with two members so more than one seed is compared.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fer_ray import config
from fer_ray.pipeline import run_pipeline
from fer_ray.stages import training_choices
from tests.conftest import ROOT
from tests.data import fixtures
from tests.test_recipe_configs import EXTRA, SHRINK

MEMBERS = 2


def test_member_epochs_count_every_phase() -> None:
    cfg = config.from_dict({"train": {"epochs": 4}, "ensemble": {"phase2_epochs": 3}})
    assert training_choices.member_epochs(cfg) == 7
    phases = [{"epochs": 2, "train": "head"}, {"epochs": 5, "lr": 1e-4, "train": "tail"}]
    cfg = config.from_dict({"train": {"epochs": 4, "phases": phases}})
    assert training_choices.member_epochs(cfg) == 7


@pytest.mark.slow
def test_clean_none_members_are_the_ensembles_under_seed004_training(tmp_path) -> None:
    root = tmp_path / "data"
    fixtures.write_fer2013(root, n=60)
    cfg = config.load(
        ROOT / "tune_configs" / "fer2013_seed004.yaml",
        [
            f"data.root={root}",
            f"output.runs_dir={tmp_path / 'runs'}",
            f"output.reports_dir={tmp_path / 'reports'}",
            *SHRINK,
            *EXTRA["fer2013_seed004"],
            f"ensemble.members={MEMBERS}",
            f"clean.members={MEMBERS}",
        ],
    )
    assert cfg.train.lr == "auto" and cfg.train.class_weights == "seed004" and cfg.train.phases
    run_pipeline(cfg)
    run_dir = tmp_path / "runs" / cfg.name

    # both stages ran the LR range test on the same split and seed: the same lr
    ens_lr = json.loads((run_dir / "ensemble" / "lr_finder.json").read_text())
    clean_lr = json.loads((run_dir / "clean" / "lr_finder.json").read_text())
    assert clean_lr["suggested_lr"] == ens_lr["suggested_lr"] > 0
    assert clean_lr["losses"] == ens_lr["losses"]

    members = pd.read_csv(run_dir / "ensemble" / "members.csv").set_index("member")
    retrain = pd.read_csv(run_dir / "clean" / "retrain.csv")
    none = retrain[retrain["variant"] == "none"].set_index("member")
    assert sorted(none.index) == list(range(MEMBERS)) == sorted(members.index)
    for col in ("seed", "n_train", "n_val", "test_acc", "val_acc", "selected_phase",
                "selected_epoch"):  # fmt: skip
        assert none[col].tolist() == members.loc[none.index, col].tolist(), col
    # the two phases ran (head, then tail): a member's curve has both phases' epochs
    curves = pd.read_csv(run_dir / "ensemble" / "curves.csv")
    assert curves.groupby("member")["phase"].nunique().tolist() == [2] * MEMBERS

    # the soft vote of the none members is the ensemble's, probability for probability
    votes = np.load(run_dir / "clean" / "votes.npz")
    probs = []
    for k in range(MEMBERS):
        with np.load(run_dir / "ensemble" / "members" / f"member_{k:02d}" / "member.npz") as z:
            probs.append(z["test_probs"])
            labels = z["test_labels"]
    np.testing.assert_array_equal(votes["labels"], labels)
    np.testing.assert_array_equal(votes["probs_none"], np.mean(probs, axis=0))
