"""Trackers (config key ``tracking``): names checked against their registry, a missing package
named with its extra, Ray Tune's own callbacks built with defaults inside the run directory,
and (slow) a real run whose every trial is read back from MLflow."""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

from fer_ray import config, tracking, trial_logs
from fer_ray.errors import ConfigError, DependencyError
from fer_ray.layout import RunPaths
from fer_ray.stages import live, trackers
from tests.conftest import SMOKE, TINY, smoke_config

HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None


def test_the_default_keeps_tensorboard_and_a_list_or_mapping_both_work(tmp_path):
    assert config.load(SMOKE).tracking == ["tensorboard"]
    cfg = smoke_config(tmp_path, "tracking=[tensorboard, mlflow]")
    assert tracking.normalise(cfg.tracking) == {"tensorboard": {}, "mlflow": {}}
    cfg = smoke_config(tmp_path, "tracking={mlflow: {experiment_name: mine}, tensorboard: null}")
    assert tracking.normalise(cfg.tracking) == {
        "mlflow": {"experiment_name": "mine"},
        "tensorboard": {},
    }
    assert smoke_config(tmp_path, "tracking=[]").tracking == []


def test_an_unknown_tracker_is_a_config_error_with_did_you_mean(tmp_path):
    with pytest.raises(ConfigError) as e:
        smoke_config(tmp_path, "tracking=[tensorboard, mlfow]")
    assert "tracking='mlfow' is not a known tracker; did you mean 'mlflow'?" in str(e.value)
    assert "(known: tensorboard, mlflow, wandb)" in str(e.value)
    with pytest.raises(ConfigError, match="twice"):
        smoke_config(tmp_path, "tracking=[mlflow, mlflow]")


def test_a_missing_package_is_one_line_with_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    cfg = smoke_config(tmp_path, "tracking=[tensorboard, wandb]")
    with pytest.raises(DependencyError) as e:
        tracking.check_installed(cfg.tracking)
    assert str(e.value) == (
        "tracking: wandb needs wandb; install it with `pip install 'fer_ray[wandb]'`"
    )
    with pytest.raises(DependencyError, match=r"pip install 'fer_ray\[wandb\]'"):
        trackers.callbacks(cfg, "grid")
    tracking.check_installed(smoke_config(tmp_path).tracking)  # tensorboardX: ray[tune]'s


def test_every_tune_stage_gets_the_loggers_and_the_configured_trackers(tmp_path):
    def kinds(*overrides):
        cfg = smoke_config(tmp_path, *overrides)
        return [type(c) for c in live.callbacks(cfg, "grid", 4, "val_acc")]

    # the live report last: it reads what the loggers flushed
    loggers = [CSVLoggerCallback, JsonLoggerCallback]
    assert kinds() == [*loggers, TBXLoggerCallback, live.LiveReport]  # TensorBoard by default
    assert kinds("tracking=[]") == [*loggers, live.LiveReport]
    with pytest.raises(ConfigError, match="tracking.tensorboard takes no options"):
        kinds("tracking={tensorboard: {logdir: x}}")


@pytest.mark.slow  # MLflow creates its SQLite schema: seconds
@pytest.mark.skipif(not HAS_MLFLOW, reason="needs fer_ray[mlflow]")
def test_mlflow_defaults_stay_inside_the_run_directory(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    cfg = smoke_config(tmp_path / "out", "tracking=[mlflow]")
    (cb,) = trackers.callbacks(cfg, "grid")
    root = RunPaths.of(cfg).root.resolve()
    assert cb.tracking_uri == f"sqlite:///{root / trackers.MLFLOW_DB}"
    assert cb.experiment_name == "smoke/grid"
    assert cb.tags == {"fer_ray.run": "smoke", "fer_ray.experiment": "grid"}
    exp = MlflowClient(tracking_uri=cb.tracking_uri).get_experiment_by_name("smoke/grid")
    assert exp.artifact_location == (root / trackers.MLFLOW_ARTIFACTS).as_uri()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing in the cwd
    cfg = smoke_config(tmp_path / "out", "tracking={mlflow: {tracking_uri: http://h:5000}}")
    (cb,) = trackers.callbacks(cfg, "ensemble")  # a server: passed through, nothing created
    assert cb.tracking_uri == "http://h:5000" and cb.experiment_name == "smoke/ensemble"


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


TINY_MLFLOW = [*TINY, "tracking=[mlflow]"]


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MLFLOW, reason="needs fer_ray[mlflow]")
def test_a_run_logs_every_trial_to_mlflow(tmp_path, monkeypatch, shared_cache):
    """Every trial of every Tune stage is one finished MLflow run holding the trial's config
    as parameters and every value it reported, step by step, as in Tune's result.json."""
    from mlflow.tracking import MlflowClient

    from fer_ray.pipeline import run_pipeline

    monkeypatch.chdir(tmp_path)
    cfg = smoke_config(tmp_path / "out", *TINY_MLFLOW, f"faces.cache_dir={shared_cache / 'crops'}")
    run_pipeline(cfg)
    paths = RunPaths.of(cfg)
    client = MlflowClient(tracking_uri=trackers.mlflow_uri(cfg))
    names = sorted(e.name for e in client.search_experiments() if e.name != "Default")
    assert names == ["smoke/ensemble", "smoke/grid"]
    for stage, n_trials in (("grid", 2), ("ensemble", 1)):
        exp = client.get_experiment_by_name(f"smoke/{stage}")
        runs = {r.data.tags["trial_name"]: r for r in client.search_runs([exp.experiment_id])}
        trials = trial_logs.read_trials(paths.experiment(stage))
        assert len(trials) == len(runs) == n_trials
        for t in trials:
            trial_id = t.rows[-1]["trial_id"]
            (run,) = [r for name, r in runs.items() if name.endswith(trial_id)]
            assert run.info.status == "FINISHED"
            assert run.data.params == {k: str(v) for k, v in _flat(t.config).items()}
            history = client.get_metric_history(run.info.run_id, "val_acc")
            assert [m.value for m in history] == [r["val_acc"] for r in t.rows]
            last = _flat({k: v for k, v in t.rows[-1].items() if k != "config"})
            numeric = {k: v for k, v in last.items() if isinstance(v, (int, float))}
            assert "val_acc" in numeric and "training_iteration" in numeric
            for key, value in numeric.items():
                assert math.isclose(run.data.metrics[key], float(value), rel_tol=1e-12), key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing in the cwd


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="needs fer_ray[wandb]")
def test_wandb_runs_offline_into_the_run_directory_without_a_key(tmp_path, monkeypatch):
    for var in ("WANDB_API_KEY", "WANDB_MODE"):  # unset here, as they were after the test
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    cfg = smoke_config(tmp_path, "tracking=[wandb]")
    (cb,) = trackers.callbacks(cfg, "grid")
    assert (cb.project, cb.group) == ("smoke", "grid")
    assert cb.kwargs == {"dir": str(RunPaths.of(cfg).root.resolve()), "mode": "offline"}
    cb.setup()  # Ray's own check: without offline mode it asks for an API key
