"""Experiment trackers (config key ``tracking``): TensorBoard, MLflow, Weights & Biases.

Why: people follow training in the tracker they already use. Each tracker is Ray Tune's own
callback (``fer_ray.stages.trackers`` builds them), attached to every Tune stage; this module
holds only the names, the config's shape and its checks, so loading a config imports neither
Ray nor a tracker's package.

``tracking`` is a list of names (``[tensorboard, mlflow]``) or a mapping name -> options
passed through to the tracker (``{mlflow: {tracking_uri: http://host:5000}}``); ``[]`` attaches
none. The default, ``[tensorboard]``, writes TensorBoard event files into every trial's folder.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from fer_ray.errors import ConfigError, DependencyError
from fer_ray.registry import Registry

# An option's value: what a YAML scalar, list of strings or string mapping can hold
Option = bool | int | float | str | list[str] | dict[str, str] | None
Tracking = list[str] | dict[str, dict[str, Option] | None]
DEFAULT = ("tensorboard",)

TRACKERS: Registry[Any] = Registry("tracker", "tracking")
# name -> (the module its callback needs, installed by the extra fer_ray[name]; what it writes)
_KINDS = {
    "tensorboard": ("tensorboardX", "TensorBoard event files in each trial's folder"),
    "mlflow": ("mlflow", "an MLflow run per trial; default store runs/<name>/mlflow.db, no server"),
    "wandb": ("wandb", "a W&B run per trial; offline into runs/<name>/wandb without an API key"),
}
for _name, (_, _help) in _KINDS.items():
    TRACKERS.register(
        _name, f"fer_ray.stages.trackers:{_name}", extra=f"'fer_ray[{_name}]'", help=_help
    )


def missing(name: str) -> DependencyError | None:
    """The error for tracker ``name`` when its package is not installed (found without
    importing it: a run checks this before any stage starts)."""
    module = _KINDS[name][0]
    if importlib.util.find_spec(module) is not None:
        return None
    return DependencyError(
        f"tracking: {name} needs {module}; install it with `pip install 'fer_ray[{name}]'`"
    )


def check_installed(tracking: Tracking) -> None:
    """Every tracker the config names can be imported."""
    for name in normalise(tracking):
        err = missing(name)
        if err is not None:
            raise err


def normalise(tracking: Tracking) -> dict[str, dict[str, Any]]:
    """``tracking`` as name -> options, whichever form the config used."""
    if isinstance(tracking, dict):
        return {name: dict(options or {}) for name, options in tracking.items()}
    return {name: {} for name in tracking}


def check(tracking: Tracking) -> None:
    """Every tracker name is registered (did-you-mean otherwise), none given twice."""
    if isinstance(tracking, list) and len(set(tracking)) < len(tracking):
        raise ConfigError(f"tracking lists a tracker twice: {tracking}")
    for name in normalise(tracking):
        TRACKERS.check(name)
