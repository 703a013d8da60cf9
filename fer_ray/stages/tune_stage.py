"""The one shape of a Tune stage: space → resources → settings → fit → one record per trial.

Grid, search, ensemble, clean and newfaces each describe their Tune run as a ``TuneStage``
(the trainable and its fixed parameters, the search space, the metric, when a trial counts as
finished, and how a finished trial becomes a record) and ``run_tune_stage`` runs it: the
trainable gets the per-trial resources, the run gets the shared settings (progress line, live
report, checkpoints, failures; ``fer_ray.stages.common.tune_settings``), an interrupted or
failed run stops with one clear line (``common.fit_tuner``), and each trial's checkpoint is
opened for its record. What a stage writes from its records (CSVs, summary, the line it
prints) stays the stage's own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import tune

from fer_ray.config import Config
from fer_ray.errors import StageError
from fer_ray.stages import common


def reported_final(result: tune.Result) -> bool:
    """A trial that ends with a ``final`` row (its scores and its checkpoint) is finished."""
    return bool(result.metrics.get("final"))


@dataclasses.dataclass
class TuneStage:
    """One stage's Tune run. ``record(result, checkpoint_dir)`` turns a finished trial into
    what the stage keeps (``checkpoint_dir`` is None unless ``open_checkpoint``); with
    ``need_final`` a trial without a ``final`` row is an error. ``search`` replaces the
    default ``TuneConfig``'s search keys (metric, mode, search_alg, scheduler, num_samples)."""

    name: str  # the Tune experiment (runs/<name>/tune/<name>) and the progress line's label
    trainable: Callable[..., None]
    params: dict[str, Any]  # the trainable's fixed arguments (tune.with_parameters)
    space: dict[str, Any]
    total: int  # trials, for the progress line and the live report
    record: Callable[[tune.Result, Path | None], Any]
    metric: str = "val_acc"
    finished: Callable[[tune.Result], bool] | None = reported_final
    open_checkpoint: bool = True
    need_final: bool = True
    search: dict[str, Any] | None = None


@dataclasses.dataclass
class TuneStageRun:
    """The records in Tune's trial order, and where the experiment lives."""

    records: list[Any]
    path: str


def run_tune_stage(cfg: Config, stage: TuneStage, resume: bool) -> TuneStageRun:
    """Run (or resume) ``stage``'s Tune experiment; one record per trial."""
    trainable = tune.with_resources(
        tune.with_parameters(stage.trainable, **stage.params), common.resources(cfg)
    )
    settings = common.tune_settings(cfg, stage.name, stage.metric, stage.total)
    if stage.search is not None:
        default = settings["tune_config"]
        settings["tune_config"] = tune.TuneConfig(
            reuse_actors=default.reuse_actors,
            max_concurrent_trials=default.max_concurrent_trials,
            **stage.search,
        )
    results = common.fit_tuner(trainable, stage.space, settings, resume, stage.finished)
    records = []
    for r in results:
        if stage.need_final and not r.metrics.get("final"):
            raise StageError(f"{stage.name} trial {r.config} ended without a result")
        if stage.open_checkpoint and r.checkpoint is not None:
            with r.checkpoint.as_directory() as d:
                records.append(stage.record(r, Path(d)))
        else:
            records.append(stage.record(r, None))
    return TuneStageRun(records, settings["path"])
