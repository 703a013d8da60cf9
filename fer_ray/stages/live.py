"""The report while the run goes on, and the logs people know (TensorBoard, Parquet).

Why: a grid of 45 trials runs for minutes to hours; a user should not wait for the end to see
where it stands. So the report folder is rewritten after every stage (``after_stage``, called
by the pipeline) and, during a Tune stage, as trials finish (``LiveReport``, a Tune callback
in the driver), at most every ``output.live_report_s`` seconds. Both build it from stored files
only, exactly as ``python -m fer_ray.report`` does; the report marks itself partial until the
last stage is done, and the pipeline's final report replaces it.

Every reported result of a Tune stage also goes to ``<stage>/results.parquet`` (one row per
report, every trial, with the trial's config), read from Tune's own ``result.json`` files. The
trackers the config's ``tracking`` names (TensorBoard by default) are Tune callbacks too.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from fer_ray import files, layout, testhooks, trial_logs
from fer_ray.config import Config
from fer_ray.layout import RunPaths
from fer_ray.stages import trackers

_last_write: dict[str, float] = {}  # report folder -> monotonic time of its last live write
_building: threading.Thread | None = None  # a rewrite started from a Tune callback


def report_dir(cfg: Config) -> Path:
    return layout.report_dir(cfg)


def _build(cfg: Config) -> Path | None:
    """Rebuild the report; a failure prints one line and the run goes on: a report is worth
    less than the hours of training it describes."""
    from fer_ray.report.build import build_report

    try:
        return build_report(RunPaths.of(cfg).root, report_dir(cfg))
    except Exception as e:  # noqa: BLE001 - see the docstring
        print(f"[report] live report not written: {type(e).__name__}: {e}", flush=True)
        return None


def write_report(cfg: Config, force: bool, point: str = "live_report") -> Path | None:
    """Rebuild the run's report from its stored files.

    ``force`` (after a stage): now, in this thread, once any rewrite still running is done.
    Otherwise (a trial finished): only when the last rewrite is ``output.live_report_s`` old and
    none is running, in a background thread, so that Tune's loop goes on starting trials
    while the page is drawn (seconds on a busy machine), which then reaches the test hook
    ``point``. Returns the folder when written here.
    """
    global _building
    key = str(report_dir(cfg).resolve())
    now = time.monotonic()
    if force:
        wait_for_report()
        _last_write[key] = now
        return _build(cfg)
    busy = _building is not None and _building.is_alive()
    every = cfg.output.live_report_s
    if busy or now - _last_write.get(key, -every) < every:
        return None
    _last_write[key] = now
    _building = threading.Thread(target=_build_live, args=(cfg, point), name="fer_ray-live-report")
    _building.daemon = True  # never keeps a finished or failed driver alive
    _building.start()
    return None


def _build_live(cfg: Config, point: str) -> None:
    if _build(cfg) is not None:
        testhooks.reached(point)  # the rewrite is on disk; a forced one waits while held here


def wait_for_report() -> None:
    """Until a background rewrite (if any) is done."""
    if _building is not None:
        _building.join()


def write_results(cfg: Config, stage: str, experiments: tuple[str, ...]) -> Path | None:
    """``<stage>/results.parquet``: every result every trial of the stage's Tune experiments
    reported (None for a stage that ran no Tune experiment)."""
    paths = RunPaths.of(cfg)
    frames = [
        trial_logs.results_frame(trial_logs.read_trials(paths.experiment(e)), e)
        for e in experiments
    ]
    frames = [f for f in frames if len(f)]
    if not frames:
        return None
    table = pd.concat(frames, ignore_index=True)
    for col in [c for c in table.columns if pd.api.types.is_object_dtype(table[c])]:
        # a column mixing kinds (a list config value, numbers and strings) is stored as text
        kinds = {type(v) for v in table[col].dropna()}
        if len(kinds) > 1 or kinds & {list, dict, tuple}:
            table[col] = table[col].map(lambda v: None if _missing(v) else str(v))
    dest = paths.stage(stage) / layout.RESULTS
    tmp = dest.with_name(f".{dest.name}.tmp")
    table.to_parquet(tmp, index=False)
    tmp.replace(dest)
    return dest


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def after_stage(cfg: Config, stage: str, experiments: tuple[str, ...], report: bool = True) -> None:
    """What the pipeline does once a stage is done: its results as Parquet, then (unless the
    pipeline writes the final report next) the report."""
    try:
        write_results(cfg, stage, experiments)
    except Exception as e:  # noqa: BLE001 - a log table must not stop the run
        print(f"[{stage}] results.parquet not written: {type(e).__name__}: {e}", flush=True)
    if report:
        write_report(cfg, force=True)
    else:
        wait_for_report()  # the final report must not race a rewrite still being drawn


class LiveReport(tune.Callback):
    """Counts one experiment's trials into ``<run>/<experiment>/progress.json`` as they start
    and end, and rewrites the report when a trial finishes (at most every
    ``output.live_report_s``)."""

    def __init__(self, cfg: Config, experiment: str, total: int, metric: str):
        self.cfg, self.experiment, self.total, self.metric = cfg, experiment, total, metric
        self.path = RunPaths.of(cfg).stage(experiment) / layout.PROGRESS

    def on_trial_start(self, iteration, trials, trial, **info):  # noqa: ANN001
        self._write(trials)
        self.started = getattr(self, "started", 0) + 1
        testhooks.reached(f"trial_start:{self.experiment}:{self.started}")

    def on_trial_complete(self, iteration, trials, trial, **info):  # noqa: ANN001
        self._write(trials)
        write_report(self.cfg, force=False, point=f"live_report:{self.experiment}")
        testhooks.reached(f"trial_complete:{self.experiment}")  # its results are stored

    def on_trial_error(self, iteration, trials, trial, **info):  # noqa: ANN001
        self._write(trials)

    def on_experiment_end(self, trials, **info):  # noqa: ANN001
        # the stage writes its tables next: no rewrite may read them half-written
        wait_for_report()

    def _write(self, trials: list[Any]) -> None:
        status = [str(t.status) for t in trials]
        files.write_json(
            self.path,
            {
                "experiment": self.experiment,
                "total": self.total,
                "finished": status.count("TERMINATED"),
                "running": status.count("RUNNING"),
                "errored": status.count("ERROR"),
                "metric": self.metric,
                "updated": time.time(),
            },
        )


def loggers() -> list[tune.Callback]:
    """Tune's CSV and JSON loggers, named so that they stay on even where
    ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS`` is set: the report and ``results.parquet`` read
    ``result.json``. The trackers (TensorBoard, MLflow, W&B) are the config's ``tracking``."""
    return [CSVLoggerCallback(), JsonLoggerCallback()]


def callbacks(cfg: Config, experiment: str, total: int, metric: str) -> list[tune.Callback]:
    """The callbacks ``tune_settings`` adds to every Tune stage: the live report, the loggers,
    the trackers ``cfg.tracking`` names (``fer_ray.stages.trackers``)."""
    return [  # the live report last: a finished trial's logs are flushed before it reads them
        *loggers(),
        *trackers.callbacks(cfg, experiment),
        LiveReport(cfg, experiment, total, metric),
    ]
