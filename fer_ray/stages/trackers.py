"""The trackers of ``fer_ray.tracking`` as Ray Tune callbacks, one per Tune stage.

Each factory takes the config, the Tune experiment's name and the user's options (passed
through to Ray's callback) and fills in defaults that keep everything inside the run directory
and need no server or account: MLflow's store is ``runs/<name>/mlflow.db`` (SQLite, artifacts
beside it; ``tracking: {mlflow: {tracking_uri: ...}}`` names a server instead), W&B runs offline into ``runs/<name>/wandb`` unless an API key is set. A missing
package is one line naming the extra to install.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ray import tune

from fer_ray import tracking
from fer_ray.config import Config
from fer_ray.errors import ConfigError
from fer_ray.layout import MLFLOW_DB, RunPaths

MLFLOW_ARTIFACTS = "mlflow-artifacts"


def _need(name: str) -> None:
    err = tracking.missing(name)
    if err is not None:
        raise err


def _run_root(cfg: Config) -> Path:
    return RunPaths.of(cfg).root.resolve()


def tensorboard(cfg: Config, experiment: str, **options: Any) -> tune.Callback:
    """Tune's TensorBoard logger: event files in each trial's folder (tensorboardX)."""
    if options:
        raise ConfigError(f"tracking.tensorboard takes no options, got {sorted(options)}")
    _need("tensorboard")
    from ray.tune.logger import TBXLoggerCallback

    return TBXLoggerCallback()


def mlflow_uri(cfg: Config) -> str:
    """The default MLflow tracking store: a SQLite file in the run directory."""
    return f"sqlite:///{_run_root(cfg) / MLFLOW_DB}"


def mlflow(cfg: Config, experiment: str, **options: Any) -> tune.Callback:
    """Ray's MLflow logger: one MLflow run per trial (its config as parameters, every
    reported metric by step) in the MLflow experiment ``<run name>/<Tune experiment>``."""
    _need("mlflow")
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    options.setdefault("experiment_name", f"{cfg.name}/{experiment}")
    options.setdefault("tags", {"fer_ray.run": cfg.name, "fer_ray.experiment": experiment})
    if not options.get("tracking_uri"):  # always explicit: Ray's callback resets MLflow's
        # URI to its ./mlflow.db default otherwise (MLFLOW_TRACKING_URI included)
        options["tracking_uri"] = mlflow_uri(cfg)
        _mlflow_experiment(options["tracking_uri"], options["experiment_name"], cfg)
    return MLflowLoggerCallback(**options)


def _mlflow_experiment(uri: str, name: str, cfg: Config) -> None:
    """Create the experiment with its artifacts in the run directory (MLflow's own default
    is ``./mlruns`` under the current folder); an existing one is kept."""
    from mlflow.tracking import MlflowClient

    _run_root(cfg).mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name(name) is None:
        artifacts = (_run_root(cfg) / MLFLOW_ARTIFACTS).as_uri()
        client.create_experiment(name, artifact_location=artifacts)


def wandb(cfg: Config, experiment: str, **options: Any) -> tune.Callback:
    """Ray's W&B logger: one W&B run per trial, project ``<run name>``, group ``<Tune
    experiment>``; offline (synchronise later with ``wandb sync``) when no API key is set."""
    _need("wandb")
    from ray.air.integrations.wandb import WandbLoggerCallback

    options.setdefault("project", cfg.name)
    options.setdefault("group", experiment)
    options.setdefault("dir", str(_run_root(cfg)))
    keyed = options.get("api_key") or options.get("api_key_file") or os.environ.get("WANDB_API_KEY")
    if not keyed and "mode" not in options:
        options["mode"] = "offline"
    if options.get("mode") == "offline":
        os.environ.setdefault("WANDB_MODE", "offline")  # Ray asks for a key unless this is set
    _run_root(cfg).mkdir(parents=True, exist_ok=True)
    return WandbLoggerCallback(**options)


def callbacks(cfg: Config, experiment: str) -> list[tune.Callback]:
    """The callbacks of every tracker ``cfg.tracking`` names, for one Tune experiment."""
    return [
        tracking.TRACKERS.create(name, cfg, experiment, **options)
        for name, options in tracking.normalise(cfg.tracking).items()
    ]
