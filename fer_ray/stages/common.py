"""What every stage shares: the Ray session, progress, Tune settings, task fan-out.

Stage results are files under ``runs/<name>/<stage>/`` (names in ``fer_ray.layout``) and a
stage is complete only when its ``done.json`` exists; that file is written last, so an
interrupted stage never looks finished.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import ray
import torch
from ray import tune

from fer_ray import files, layout, testhooks
from fer_ray.config import Config
from fer_ray.errors import StageError, unwrap
from fer_ray.layout import RunPaths
from fer_ray.models.factory import create_model
from fer_ray.stages import live
from fer_ray.stages.cluster import node_info
from fer_ray.train.checkpoint import read_state
from fer_ray.train.loop import CheckpointPolicy, torch_settings

os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "3600")


_last_line: dict[str, float] = {}
_bars: dict[str, Any] = {}  # stage -> its live tqdm bar on a terminal
THROTTLE_S = 15.0  # the least seconds between two lines of a stage in a log


def progress(
    stage: str, text: str, final: bool, done: int | None = None, total: int | None = None
) -> None:
    """One line per stage. On a terminal a live bar (tqdm) when ``done`` of ``total`` is known,
    else the line rewritten in place; in a log (CI, ``ray job logs``) one line at most every
    ``THROTTLE_S`` seconds, and always the ``final`` one."""
    if sys.stdout.isatty():
        if total:
            _bar(stage, text, final, done or 0, total)
        else:
            print(f"\r[{stage}] {text}".ljust(78), end="\n" if final else "", flush=True)
        return
    now = time.time()
    if final or now - _last_line.get(stage, 0.0) >= THROTTLE_S:
        _last_line[stage] = now
        print(f"[{stage}] {text}", flush=True)


def _bar(stage: str, text: str, final: bool, done: int, total: int) -> None:
    from tqdm import tqdm

    bar = _bars.get(stage)
    if bar is None or bar.total != total:
        if bar is not None:
            bar.close()
        fmt = f"[{stage}] {{percentage:3.0f}}%|{{bar:20}}| {{desc}}"  # the text is the desc
        bar = _bars[stage] = tqdm(total=total, bar_format=fmt, file=sys.stdout)
    bar.n = min(done, total)
    bar.set_description_str(text, refresh=True)
    if final:
        bar.close()
        _bars.pop(stage, None)


def eta_text(seconds: float | None) -> str:
    """``ETA 4m10s`` (``ETA ?`` before anything was measured)."""
    if seconds is None or seconds != seconds:
        return "ETA ?"
    s = max(0, round(seconds))
    return f"ETA {s // 60}m{s % 60:02d}s" if s >= 60 else f"ETA {s}s"


def short_config(config: dict[str, Any], limit: int = 60) -> str:
    """A trial's config in one short line: ``lr=0.001 hidden=256 fold=2``."""
    parts = []
    for k, v in (config or {}).items():
        if isinstance(v, dict | list | tuple):
            continue
        parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    line = " ".join(parts)
    return line if len(line) <= limit else line[: limit - 1] + "…"


class Progress(tune.Callback):
    """A Tune stage's progress: finished of total trials, the best reported metric so far and
    the config that reached it, and an ETA from the measured trial times and the trials that
    run at once. A live bar on a terminal, a line at most every ``THROTTLE_S`` s otherwise."""

    def __init__(self, stage: str, total: int, metric: str, mode: str = "max"):
        self.stage, self.total, self.metric, self.mode = stage, total, metric, mode
        self.done = 0
        self.started = time.time()
        self.best: tuple[float, dict[str, Any]] | None = None
        self.began: dict[str, float] = {}  # trial id -> when it started (this driver)
        self.seconds: list[float] = []  # finished trials' durations
        self.at_once = 1  # the most trials seen running together

    def on_trial_start(self, iteration, trials, trial, **info):  # noqa: ANN001
        self.began.setdefault(trial.trial_id, time.time())
        self._running(trials)

    def on_trial_result(self, iteration, trials, trial, result, **info):  # noqa: ANN001
        self._running(trials)
        value = result.get(self.metric)
        if isinstance(value, int | float) and value == value:
            better = self.best is None or (
                value > self.best[0] if self.mode == "max" else value < self.best[0]
            )
            if better:
                self.best = (float(value), dict(trial.config or {}))
        self._print(False)

    def on_trial_complete(self, iteration, trials, trial, **info):  # noqa: ANN001
        self.done += 1
        began = self.began.pop(trial.trial_id, None)
        if began is not None:
            self.seconds.append(time.time() - began)
        self._print(self.done >= self.total)

    def on_trial_error(self, iteration, trials, trial, **info):  # noqa: ANN001
        self.began.pop(trial.trial_id, None)
        print(f"\n[{self.stage}] trial {trial.trial_id} failed: see {trial.local_path}", flush=True)

    def _running(self, trials: list) -> None:
        n = sum(1 for t in trials or [] if getattr(t, "status", "") == "RUNNING")
        self.at_once = max(self.at_once, n)

    def eta(self) -> float | None:
        """Seconds left: the mean measured trial time x the rounds the trials left need."""
        if not self.seconds:
            return None
        left = max(0, self.total - self.done)
        return sum(self.seconds) / len(self.seconds) * -(-left // self.at_once)

    def text(self) -> str:
        elapsed = time.time() - self.started
        line = f"{self.done}/{self.total} trials · {elapsed:.0f}s"
        if self.best is not None:
            value, config = self.best
            line += f" · best {self.metric}={value:.3f} ({short_config(config)})"
        if self.done < self.total:
            line += f" · {eta_text(self.eta())}"
        return line

    def _print(self, final: bool) -> None:
        progress(self.stage, self.text(), final, self.done, self.total)


def tune_settings(cfg: Config, stage: str, metric: str, total: int) -> dict[str, Any]:
    """TuneConfig + RunConfig shared by the grid and ensemble stages."""
    exp = RunPaths.of(cfg).experiment(stage)
    storage, name = exp.rsplit("/", 1)
    tune_config = tune.TuneConfig(
        reuse_actors=True,  # about 5x faster for small trials on a 2-core machine
        max_concurrent_trials=cfg.resources.max_concurrent_trials,
    )
    run_config = tune.RunConfig(
        name=name,
        storage_path=storage,
        verbose=0,
        # the live report, then Tune's CSV/JSON/TensorBoard loggers (stages/live.py)
        callbacks=[Progress(stage, total, metric), *live.callbacks(cfg, stage, total, metric)],
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        failure_config=tune.FailureConfig(max_failures=2),
    )
    stage_dir = RunPaths.of(cfg).stage(stage)
    return {"tune_config": tune_config, "run_config": run_config, "path": exp, "dir": stage_dir}


def resources(cfg: Config) -> dict[str, float]:
    res = {"cpu": cfg.resources.cpus_per_trial}
    if cfg.resources.gpus_per_trial:
        res["gpu"] = cfg.resources.gpus_per_trial
    return res


def trial_device(cfg_gpus: float) -> str:
    return "cuda" if cfg_gpus > 0 and torch.cuda.is_available() else "cpu"


def release_accelerator(*objects: Any) -> float:
    """Free a finished trial's GPU memory before a reused actor takes the next trial.

    With ``reuse_actors`` the process lives on, so tensors that stay referenced (and CUDA's
    cache) would pile up trial after trial. Returns the bytes still allocated (0 on CPU)."""
    import gc

    if not torch.cuda.is_available():
        return 0.0  # host memory goes with the references (a full gc took ~0.2 s a trial)
    for obj in objects:
        if isinstance(obj, torch.nn.Module):
            obj.to("cpu")
    del objects
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    return float(torch.cuda.memory_allocated())


def where(metrics: dict[str, Any]) -> dict[str, Any]:
    """Node and duration of a finished trial, from its last reported metrics."""
    return {
        "node_id": metrics.get("node_id", ""),
        "node_ip": metrics.get("node_ip", ""),
        "seconds": round(float(metrics.get("time_total_s", 0.0)), 2),
    }


def write_work(stage_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Who did what where: one row per trial or task (unit, node id and IP, seconds, and for
    trials the epoch a restart resumed from), so the report can show the work per node. The
    result tables stay free of it, so they are identical from run to run."""
    cols = ["unit", "node_id", "node_ip", "seconds", "resumed_from_epoch"]
    frame = pd.DataFrame(rows, columns=cols)
    stage_dir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(stage_dir / layout.WORK, index=False)


def set_threads(cfg: Config, cpus: float) -> None:
    """A trial's or task's torch threads = the CPUs it asked Ray for (Ray pins it to 1)."""
    torch_settings(int(cpus), cfg.train.deterministic)


def checkpoint_policy(cfg: Config) -> CheckpointPolicy:
    """When a trial checkpoints (``output.checkpoint_every`` epochs or ``checkpoint_every_s``
    seconds, whichever comes first): pass it to ``fit(checkpoint=...)``."""
    return CheckpointPolicy(cfg.output.checkpoint_every, cfg.output.checkpoint_every_s)


def report_epoch(row: dict[str, Any], snapshot: Any, every: int = 1, last: bool = False) -> None:
    """``tune.report`` one epoch, with a checkpoint when ``fit``'s checkpoint policy marks the
    snapshot due (``snapshot.due``); a snapshot without a policy (``due`` None) is checkpointed
    every ``every`` epochs and at the ``last`` one."""
    row = {**row, **node_info()}
    due = getattr(snapshot, "due", None)
    if due is None:
        due = last or (every > 0 and row["step"] % every == 0)
    if due:
        with tempfile.TemporaryDirectory() as d:
            torch.save(snapshot(), Path(d) / "state.pt")
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(d))
    else:
        tune.report(row)
    inject_fault(row["step"])
    testhooks.reached(f"epoch:{tune.get_context().get_experiment_name()}:{row['step']}")


def inject_fault(step: int) -> None:
    """Test hook: crash one trial once after ``FER_RAY_FAULT_AT_STEP`` to prove resumption."""
    at, marker = os.environ.get("FER_RAY_FAULT_AT_STEP"), os.environ.get("FER_RAY_FAULT_MARKER")
    if at and marker and step == int(at):
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # first trial only
        except FileExistsError:
            return
        os.write(fd, tune.get_context().get_trial_id().encode())
        os.close(fd)
        raise RuntimeError(f"injected fault after step {step} (FER_RAY_FAULT_AT_STEP)")


def restore_state() -> dict[str, Any] | None:
    """The state saved in this trial's last checkpoint, when Tune restarted it (on any node:
    checkpoints live under the shared storage path)."""
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        return read_state(Path(d) / "state.pt")  # None when damaged: moved aside, named


def fit_tuner(
    trainable: Any,
    param_space: dict[str, Any],
    settings: dict[str, Any],
    resume: bool,
    finished: Callable[[tune.Result], bool] | None = None,
) -> tune.ResultGrid:
    """Run (or, with ``resume``, restore and finish) one Tune experiment."""
    path = settings["path"]
    if resume and tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=settings["tune_config"],
            run_config=settings["run_config"],
        )
    results = tuner.fit()
    n_done = sum(1 for r in results if r.error is None and (finished is None or finished(r)))
    if results.num_errors == 0 and n_done < len(results):
        # Tune catches Ctrl-C, saves its state and returns early
        raise StageError(
            f"interrupted with {n_done} of {len(results)} trials finished; "
            "rerun with --resume to continue from the last checkpoints"
        )
    errors = [r for r in results if r.error is not None]
    failures = settings["dir"] / layout.ERRORS
    failures.unlink(missing_ok=True)
    if errors:
        # named where the report finds them: a stage with missing trials never says "done"
        files.write_json(
            failures,
            [
                {"trial": r.path.rsplit("/", 1)[-1], "config": r.config, "error": _short(r.error)}
                for r in errors
            ],
        )
        cause = unwrap(errors[0].error)
        if cause is not None:  # the user's input, not the code: one line, no traceback
            raise cause
        raise StageError(
            f"{len(errors)} trial(s) failed, first: {errors[0].error!r}; "
            f"fix it and rerun with --resume (logs under {path})"
        )
    return results


def _short(error: BaseException) -> str:
    """The last line of an error's message (Ray wraps the cause in a long traceback)."""
    cause = unwrap(error) or getattr(error, "cause", None) or error
    lines = [x for x in str(cause).strip().splitlines() if x.strip()]
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}"


def drain(
    pending: dict[Any, Any],
    on_result: Callable[[Any, Any], str],
    stage: str,
    label: str,
    total: int,
) -> None:
    """Wait for Ray tasks as they finish; ``on_result(key, value)`` stores each at once (so a
    killed stage keeps every finished task) and returns a note for the progress line."""
    t0 = time.time()
    done = total - len(pending)
    if not pending:
        progress(stage, f"{label} {done}/{total} (all stored)", True, done, total)
    first = done
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        key = pending.pop(ready[0])
        note = on_result(key, ray.get(ready[0])) or ""
        testhooks.reached(f"task_stored:{stage}")
        done += 1
        elapsed = time.time() - t0
        eta = "" if not pending else " · " + eta_text(elapsed / (done - first) * len(pending))
        text = f"{label} {done}/{total} · {elapsed:.0f}s{eta}{note}"
        progress(stage, text, not pending, done, total)


def model_config(cfg: Config, chosen: dict | None = None, backbone: str | None = None) -> Any:
    """``cfg.model`` with the backbone a trial runs: ``backbone`` (a trial's own, e.g. the
    grid's or ``ensemble.backbones``' search space), else the grid's choice, else the config's."""
    bb = backbone or (chosen or {}).get("backbone")
    return dataclasses.replace(cfg.model, backbone=bb) if bb else cfg.model


def trained_module(model: Any, kind: str) -> Any:
    """What fit trains: the tail on cached trunk features, else the whole net."""
    return model.tail if kind == "features" else model


def trial_model(model_cfg: Any, data: Any, hidden: int, seed: int, device: Any) -> tuple[Any, Any]:
    """A trial's network on ``device`` (head seeded by ``seed``, the trunk from the bundle's
    backbone state) and the part of it that trains."""
    model = create_model(
        model_cfg, data.n_classes, hidden, head_seed=seed, backbone_state=data.backbone_state
    ).to(device)
    return model, trained_module(model, data.kind)


TRUNK_FACTS = ("inputs", "input_shape", "trainable_params")  # when the search varies the trunk


def trunk_facts(config: dict[str, Any], data: Any, module: Any) -> dict[str, Any]:
    """What a trial trains on when the search varies trunk keys (``search_space.trunk_id``):
    its bundle's inputs (trunk ``features`` or ``pixels``) and their shape per image, and the
    trainable parameters;
    nothing otherwise, so a run without such keys stores exactly what it did before."""
    from fer_ray import search_space

    if not search_space.trunk_id(config):
        return {}
    n = sum(p.numel() for p in module.parameters() if p.requires_grad)
    shape = "x".join(str(d) for d in data.x.shape[1:])
    return {"inputs": data.kind, "input_shape": shape, "trainable_params": int(n)}


def trunk_bundles(ctx: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A search stage's trial data: one bundle per trunk setting the space lists (``{"": ref}``
    when it lists none), and the facts of the first (with every setting's when several)."""
    from fer_ray import search_space

    settings = search_space.trunk_settings(search_space.resolve(ctx.cfg))
    if ctx.cfg.search.compare_grid and {} not in settings:  # the paper's grid beside the search
        settings.append({})  # runs on the config's own trunk
    built = {search_space.trunk_id(t): ctx.trial_data(t) for t in settings}
    refs = {k: ref for k, (ref, _) in built.items()}
    info = dict(next(iter(built.values()))[1])
    if len(built) > 1:
        info["trunk_settings"] = {k: facts for k, (_, facts) in built.items()}
    return refs, info
