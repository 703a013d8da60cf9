"""The search stage's searcher and scheduler from the config (no Ray cluster): options pass
through, the Optuna study lives in one SQLite file a second searcher (a resumed run) reopens,
and the schedulers count folds."""

from __future__ import annotations

import pytest

from fer_ray.config import from_dict
from fer_ray.errors import ConfigError
from fer_ray.stages.search import METRIC, scheduler, searcher, space


def _cfg(**search):
    return from_dict({"name": "study1", "grid": {"folds": 3}, "search": search})


def test_a_second_optuna_searcher_reopens_the_stored_study(tmp_path):
    import optuna

    cfg = _cfg(algorithm="optuna", options={"n_startup_trials": 1})
    first = searcher(cfg, tmp_path)
    assert first._sampler._n_startup_trials == 1  # a TPESampler keyword goes to the sampler
    first.set_search_properties(METRIC, "max", space(cfg))
    proposal = first.suggest("t1")
    first.on_trial_complete("t1", {METRIC: 0.25, "folds_done": 3})
    again = searcher(cfg, tmp_path)  # a resumed run: the study exists, it is loaded
    again.set_search_properties(METRIC, "max", space(cfg))
    url = f"sqlite:///{(tmp_path / 'search_study.db').resolve()}"
    study = optuna.load_study(storage=url, study_name="study1")
    (trial,) = study.trials
    assert trial.value == 0.25 and trial.params == proposal
    assert len(again._ot_study.trials) == 1


def test_searcher_options_are_checked_against_its_constructor(tmp_path):
    with pytest.raises(ConfigError, match="random does not take 'n_startup_trials'"):
        searcher(_cfg(algorithm="random", options={"n_startup_trials": 2}), tmp_path)
    hyperopt = searcher(_cfg(algorithm="hyperopt", options={"n_initial_points": 4}), tmp_path)
    assert hyperopt.algo.keywords["n_startup_jobs"] == 4
    seeded = searcher(_cfg(algorithm="hyperopt"), tmp_path).rstate.randint(2**31 - 1)
    assert seeded == __import__("numpy").random.RandomState(0).randint(2**31 - 1)  # cfg.seed


def test_schedulers_count_folds():
    assert scheduler(_cfg()) is None and scheduler(_cfg(scheduler="fifo")) is None
    asha = scheduler(_cfg(scheduler="asha"))  # the old name, now async_hyperband's alias
    assert type(asha).__name__ == "AsyncHyperBandScheduler"
    assert asha._time_attr == "folds_done" and asha._max_t == 3
    median = scheduler(_cfg(scheduler="median_stopping_rule",
                            scheduler_options={"min_samples_required": 4}))  # fmt: skip
    assert median._time_attr == "folds_done" and median._grace_period == 1
    assert median._min_samples_required == 4
