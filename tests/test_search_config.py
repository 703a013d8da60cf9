"""search.algorithm / search.scheduler: Ray Tune's names, one clear line for a wrong name or a
missing package."""

from __future__ import annotations

import pytest

from fer_ray import config_checks
from fer_ray.config import from_dict
from fer_ray.errors import ConfigError, DependencyError


def test_the_names_are_the_installed_rays():
    from ray.tune.schedulers import SCHEDULER_IMPORT
    from ray.tune.search import SEARCH_ALG_IMPORT

    assert set(config_checks.SEARCHERS) == {"grid", *SEARCH_ALG_IMPORT}
    known = {*config_checks.SCHEDULERS, *config_checks.MUTATING_SCHEDULERS}
    assert known == {"none", "asha", *SCHEDULER_IMPORT}
    assert set(config_checks.SEARCHER_PACKAGES) <= set(SEARCH_ALG_IMPORT)


def test_options_pass_through():
    cfg = from_dict(
        {"search": {"algorithm": "hyperopt", "options": {"n_initial_points": 3},
                    "scheduler": "median_stopping_rule",
                    "scheduler_options": {"min_samples_required": 3}}}
    )  # fmt: skip
    assert cfg.search.options == {"n_initial_points": 3}
    assert cfg.search.scheduler_options == {"min_samples_required": 3}


@pytest.mark.parametrize(
    ("key", "value", "hint"),
    [("algorithm", "hyperop", "did you mean 'hyperopt'?"),
     ("scheduler", "async_hyperbnd", "did you mean 'async_hyperband'?")],
)  # fmt: skip
def test_an_unknown_name_is_one_line_with_the_choices(key, value, hint):
    with pytest.raises(ConfigError) as e:
        from_dict({"search": {key: value}})
    msg = str(e.value)
    assert "\n" not in msg and f"search.{key}" in msg and hint in msg
    assert (
        ("grid, random, variant_generator, optuna, hyperopt" in msg)
        if key == "algorithm"
        else ("median_stopping_rule" in msg)
    )


def test_a_population_based_scheduler_is_refused():
    with pytest.raises(ConfigError, match="mix settings"):
        from_dict({"search": {"scheduler": "pbt"}})


def test_a_missing_searcher_package_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(
        config_checks.SEARCHER_PACKAGES, "zoopt", (("zoopt_not_here",), "pip install zoopt")
    )
    with pytest.raises(DependencyError) as e:
        config_checks.search_dependency("zoopt")
    assert str(e.value) == (
        "search.algorithm=zoopt needs the zoopt_not_here package: pip install zoopt"
    )
    config_checks.search_dependency("random")  # Ray's own: nothing to install
    config_checks.search_dependency("hyperopt")  # installed with fer_ray[search]
