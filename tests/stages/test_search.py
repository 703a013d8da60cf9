"""The search stage end to end on the tiny config: Optuna's TPE with its study stored in the
run (read back with optuna.load_study), scored as grid cells, the grid beside it, reproducible
one proposal at a time; random search under ASHA on the fold count; hyperopt; searched config
keys (search.space) in a searcher and in the grid, a trunk key with a bundle per value; two
objectives with their Pareto front; and the report's sections."""

import json

import pandas as pd
import pytest

from fer_ray.pipeline import run_pipeline
from tests.conftest import TINY, smoke_config

pytestmark = pytest.mark.slow

ONE_AT_A_TIME = [*TINY, "resources.max_concurrent_trials=1", "search.lr_range=[0.001, 0.05]",
                 "search.hidden_range=[8, 32]"]  # fmt: skip
OPTUNA = [
    "search.algorithm=optuna",
    "search.trials=3",
    "search.options.n_startup_trials=2",
    "search.compare_grid=true",
]
RANDOM = ["search.algorithm=random", "search.trials=4", "search.scheduler=async_hyperband",
          "search.space.train.optimizer={choice: [adam, sgd]}",
          "search.space.model.head_dropout={uniform: [0.0, 0.5]}"]  # fmt: skip
HYPEROPT = ["search.algorithm=hyperopt", "search.trials=3", "search.options.n_initial_points=2",
            "search.space.train.weight_decay={loguniform: [1.0e-5, 1.0e-2]}"]  # fmt: skip
# the grid over two more keys, 2 x 2 cells of lr 0.01 / hidden 16, each on 2 folds; one is a
# trunk key: the whole small CNN trained on pixels (-1) or its last conv on trunk features (1)
SPACE = ["search.space.train.epochs={grid: [1, 2]}",
         "search.space.model.train_last_convs={grid: [-1, 1]}"]  # fmt: skip
# two objectives: Optuna's multi-objective TPE trades accuracy against the head's size
PARETO = ["search.algorithm=optuna", "search.trials=4", "search.options.n_startup_trials=2",
          "search.metrics={val_acc: max, trainable_params: min}"]  # fmt: skip
RUNS = {"a": OPTUNA, "b": OPTUNA, "random": RANDOM, "hyperopt": HYPEROPT, "space": SPACE,
        "pareto": PARETO}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_cache, ray_session):  # one Ray for the module's runs
    out = {}
    for name, keys in RUNS.items():
        tmp = tmp_path_factory.mktemp(name)
        cfg = smoke_config(tmp, *ONE_AT_A_TIME, *keys, f"faces.cache_dir={shared_cache / 'crops'}")
        run_pipeline(cfg)
        out[name] = tmp
    return out


def _grid(tmp):
    return tmp / "runs" / "smoke" / "grid"


def _check_trials(t: pd.DataFrame, folds: int = 2) -> None:
    for row in t[t["complete"]].itertuples():
        accs = [float(x) for x in row.fold_accs.split(",")]
        assert len(accs) == folds and row.folds_done == folds
        assert row.fold_mean_val_acc == pytest.approx(sum(accs) / len(accs))
        assert row.low <= row.pooled <= row.high
    assert (t.loc[~t["complete"], "folds_done"] < folds).all()


def test_optuna_trials_are_scored_like_grid_cells_and_reproducible(runs):
    a, b = _grid(runs["a"]), _grid(runs["b"])
    ta, tb = (pd.read_csv(d / "search_trials.csv").drop(columns="trial") for d in (a, b))
    assert len(ta) == 3 and ta["complete"].all()
    pd.testing.assert_frame_equal(ta, tb)  # one proposal at a time: the same search twice
    _check_trials(ta)
    chosen = json.loads((a / "chosen.json").read_text())
    best = ta.loc[ta["fold_mean_val_acc"].idxmax()]
    assert chosen["algorithm"] == "optuna" and chosen["lr"] == pytest.approx(best["lr"])
    assert "grid" in chosen["other"]  # the grid ran on the same data, for comparison
    summary = json.loads((a / "search.json").read_text())
    assert summary["options"] == {"n_startup_trials": 2} and summary["importance"] == "fanova"
    members = pd.read_csv(a.parent / "ensemble" / "members.csv")
    assert len(members) == 1


def test_the_optuna_study_is_stored_in_the_run_and_matches_the_trials(runs):
    import optuna

    d = _grid(runs["a"])
    storage = optuna.storages.RDBStorage(f"sqlite:///{d / 'search_study.db'}")
    study = optuna.load_study(storage=storage, study_name="smoke")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    table = pd.read_csv(d / "search_trials.csv")
    assert len(done) == len(table) == 3
    stored = sorted((t.params["lr"], t.params["hidden"], t.value) for t in done)
    csv = sorted(zip(table["lr"], table["hidden"], table["fold_mean_val_acc"], strict=True))
    for (lr, h, v), (lr2, h2, v2) in zip(stored, csv, strict=True):
        assert (lr, h) == (pytest.approx(lr2, rel=1e-12), h2) and v == pytest.approx(v2)


def test_random_search_under_asha_stops_on_the_fold_count(runs):
    d = _grid(runs["random"])
    t = pd.read_csv(d / "search_trials.csv")
    assert len(t) == 4 and t["complete"].any()
    _check_trials(t)
    assert set(t["train.optimizer"]) <= {"adam", "sgd"}
    assert (
        t["model.head_dropout"].between(0.0, 0.5).all() and t["model.head_dropout"].nunique() == 4
    )
    assert not (d / "search_study.db").exists()  # only Optuna keeps a study
    summary = json.loads((d / "search.json").read_text())
    assert summary["algorithm"] == "random" and summary["scheduler"] == "async_hyperband"
    imp = pd.read_csv(d / "search_importance.csv")  # model-free; needs 6 complete trials
    assert list(imp.columns) == ["parameter", "importance", "method"] and imp.empty
    chosen = json.loads((d / "chosen.json").read_text())
    assert chosen["algorithm"] == "random" and "other" not in chosen
    report = (runs["random"] / "reports" / "smoke" / "report.md").read_text()
    assert "## Search: random" in report and "scheduler async_hyperband" in report


def test_hyperopt_runs_its_proposals(runs):
    d = _grid(runs["hyperopt"])
    t = pd.read_csv(d / "search_trials.csv")
    assert len(t) == 3 and t["complete"].all()
    _check_trials(t)
    assert t["lr"].between(0.001, 0.05).all() and t["hidden"].between(8, 32).all()
    assert t["train.weight_decay"].between(1e-5, 1e-2).all()  # a searched config key
    assert t["train.weight_decay"].nunique() == 3
    assert json.loads((d / "search.json").read_text())["options"] == {"n_initial_points": 2}


def test_report_shows_the_search_beside_the_grid(runs):
    report = (runs["a"] / "reports" / "smoke" / "report.md").read_text()
    assert "## Search: optuna" in report and "The grid on the same data" in report
    assert "Against the runner-up (lr " in report  # the best proposal paired with the next
    assert "grid/search_study.db (optuna-dashboard opens it)" in report
    assert (runs["a"] / "reports" / "smoke" / "search_history.png").stat().st_size > 5000


def test_the_grid_searches_more_keys_and_the_ensemble_trains_with_the_whole_choice(runs):
    """search.space crosses train.epochs and model.train_last_convs with lr x hidden: each trial
    ran with its values (its epoch count shows it), Table 2 has a cell per combination, and the
    chosen values reach the members (their phase-1 epochs) and the report."""
    run = runs["space"] / "runs" / "smoke"
    trials = pd.read_csv(run / "grid" / "trials.csv")
    assert len(trials) == 8
    assert sorted(set(zip(trials["train.epochs"], trials["model.train_last_convs"]))) == [
        (1, -1), (1, 1), (2, -1), (2, 1)]  # fmt: skip
    assert (trials["epochs"] == trials["train.epochs"]).all()  # the searched value took effect
    params = [json.loads(p.read_text()) for p in run.glob("**/grid_trainable*/params.json")]
    assert sorted(p["train.epochs"] for p in params) == [1, 1, 1, 1, 2, 2, 2, 2]
    t2 = pd.read_csv(run / "grid" / "table2.csv")
    assert len(t2) == 4 and {"train.epochs", "model.train_last_convs"} <= set(t2.columns)
    chosen = json.loads((run / "grid" / "chosen.json").read_text())
    best = t2.sort_values(["mean", "hidden", "lr"], ascending=[False, True, False]).iloc[0]
    assert chosen["train.epochs"] == best["train.epochs"]
    assert chosen["model.train_last_convs"] == best["model.train_last_convs"]
    curves = pd.read_csv(run / "ensemble" / "curves.csv")
    phase1 = curves[curves["phase"] == 1].groupby("member")["epoch"].max()
    assert (phase1 == chosen["train.epochs"]).all()
    report = (runs["space"] / "reports" / "smoke" / "report.md").read_text()
    assert (f"Chosen config: lr 0.01, hidden 16, train.epochs {chosen['train.epochs']}, "
            f"model.train_last_convs {chosen['model.train_last_convs']}") in report  # fmt: skip


def _trainable(convs: int) -> tuple[int, str]:
    """Independently: the parameters a trial of the TINY config trains with
    ``model.train_last_convs=convs``, and what it reads (trunk features or pixels)."""
    from fer_ray import config
    from fer_ray.models.factory import create_model
    from fer_ray.stages.common import trained_module
    from fer_ray.train.features import cache_applicable

    cfg = config.load(None, [*TINY, f"model.train_last_convs={convs}"])
    kind = "features" if cache_applicable(cfg.model, cfg.train)[0] else "pixels"
    module = trained_module(create_model(cfg.model, 7, 16, head_seed=0), kind)
    return sum(p.numel() for p in module.parameters() if p.requires_grad), kind


def test_each_trunk_setting_trains_on_its_own_bundle_and_the_members_on_the_chosen_one(runs):
    """model.train_last_convs is searched: each value gets its own trial data (pixels for the
    whole network, trunk features for the last conv), no trial reads another value's, and the
    ensemble trains on the chosen value's."""
    run = runs["space"] / "runs" / "smoke"
    trials = pd.read_csv(run / "grid" / "trials.csv")
    assert sorted(trials["model.train_last_convs"]) == [-1] * 4 + [1] * 4
    for row in trials.to_dict("records"):
        params, kind = _trainable(row["model.train_last_convs"])
        assert (row["trainable_params"], row["inputs"]) == (params, kind)
    by_setting = trials.groupby("model.train_last_convs")
    assert by_setting["trainable_params"].nunique().eq(1).all()
    # each setting read its own bundle: the whole net the 32 px crops, the tail trunk features
    shapes = by_setting["input_shape"].unique()
    assert list(shapes[-1]) == ["32x32x3"] and len(shapes[1]) == 1 and shapes[1][0] != "32x32x3"
    assert trials["trainable_params"].nunique() == 2
    facts = json.loads((run / "grid" / "features.json").read_text())
    assert set(facts["trunk_settings"]) == {"model.train_last_convs=-1", "model.train_last_convs=1"}
    chosen = json.loads((run / "grid" / "chosen.json").read_text())
    members = pd.read_csv(run / "ensemble" / "members.csv")
    assert len(members) == 1 and chosen["model.train_last_convs"] in (-1, 1)
    import torch

    # the member's trained part is the chosen setting's: the whole net on pixels, or the tail
    convs = chosen["model.train_last_convs"]
    state = torch.load(run / "ensemble" / "members" / "member_00" / "model.pt", weights_only=True)
    trained = sum(
        v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k
    )
    assert trained == _trainable(convs)[0]


def test_two_objectives_give_a_pareto_front_and_the_ensemble_trains_its_most_accurate(runs):
    import optuna

    d = _grid(runs["pareto"])
    t = pd.read_csv(d / "search_trials.csv")
    assert len(t) == 4 and t["complete"].all()
    # the trainable parameters follow the proposal's hidden width (a 16-unit-wide input head)
    assert t.sort_values("hidden")["trainable_params"].is_monotonic_increasing
    for row in t.itertuples():  # independently: a front point is dominated by no other
        others = t.drop(row.Index)
        dominated = (
            (others["fold_mean_val_acc"] >= row.fold_mean_val_acc)
            & (others["trainable_params"] <= row.trainable_params)
            & ((others["fold_mean_val_acc"] > row.fold_mean_val_acc)
               | (others["trainable_params"] < row.trainable_params))
        ).any()  # fmt: skip
        assert row.pareto == (not dominated)
    chosen = json.loads((d / "chosen.json").read_text())
    front = t[t["pareto"]]
    assert chosen["lr"] == pytest.approx(
        front.sort_values(["fold_mean_val_acc", "trainable_params"], ascending=[False, True])
        .iloc[0]["lr"])  # fmt: skip
    study = optuna.load_study(
        storage=optuna.storages.RDBStorage(f"sqlite:///{d / 'search_study.db'}"),
        study_name="smoke",
    )
    up, down = optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE
    assert study.directions == [up, down]
    assert len(study.trials) == 4 and all(len(t.values) == 2 for t in study.trials)
    report = (runs["pareto"] / "reports" / "smoke" / "report.md").read_text()
    assert "Several objectives: fold_mean_val_acc (max), trainable_params (min)" in report
    assert (runs["pareto"] / "reports" / "smoke" / "search_pareto.png").stat().st_size > 5000
