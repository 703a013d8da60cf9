"""The core stages' dry-run estimates: seconds from the probe timed in the driver
(``fer_ray.estimate.probe``) and the overheads measured on a 2-core machine, with a line each
for the plan.

Each hook takes the config and the dry run's facts (``images``, ``classes``, ``pool``,
``n_test``, ``probe``, ``trial_slots``, ``task_slots``) and returns (seconds per part, lines).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from fer_ray import layout

if TYPE_CHECKING:
    from fer_ray.config import Config

#: Seconds measured on a 2-core development machine (ray 2.60): Ray's start, a Tune
#: experiment's setup and its actors' start, what a trial pays besides training (model build
#: is probed), per reported epoch, per Ray task.
OVERHEADS = {
    "ray_start_local": 6.0,
    "ray_join": 2.0,
    "tune_experiment": 4.0,
    "actor_start": 5.0,
    "per_trial": 0.4,
    "per_report": 0.12,
    "per_task": 0.25,
    "report": 4.0,
}
#: Detection + crop per image on one CPU thread (the detector benchmark, 96-128 px).
CROP_S = {"groundtruth": 0.002, "center": 0.002, "haar": 0.005, "dlib": 0.006, "mtcnn": 0.011}

Estimate = tuple[dict[str, float], list[str]]


def tune_stage(trials: int, per_trial: float, slots: int, reports: int) -> tuple[float, int]:
    """Wall seconds of a Tune experiment: its setup and actors, then ``ceil(trials / slots)``
    waves of equal trials (each paying its overhead and reports). Returns (seconds, at once)."""
    at_once = max(1, min(trials, slots))
    waves = math.ceil(trials / at_once)
    one = per_trial + OVERHEADS["per_trial"] + reports * OVERHEADS["per_report"]
    return OVERHEADS["tune_experiment"] + OVERHEADS["actor_start"] + waves * one, at_once


def _epoch_s(facts: dict[str, Any], train_n: float, eval_n: float) -> float:
    pr = facts["probe"]
    return train_n * pr.train_s + eval_n * pr.eval_s


def prepare(cfg: Config, facts: dict[str, Any]) -> Estimate:
    n = facts["images"]
    seconds = 2.0 + n * CROP_S.get(cfg.faces.detector, 0.01) / facts["task_slots"]
    line = (
        f"prepare: {n} images, {cfg.faces.detector} crops to {cfg.faces.size} px, in chunks"
        f" of {cfg.faces.chunk_size} (Ray tasks)"
    )
    return {"prepare": seconds}, [line]


def grid(cfg: Config, facts: dict[str, Any]) -> Estimate:
    """The features (stand-in pretraining, trunk pass), the grid and, where asked, the search."""
    from fer_ray import search_space
    from fer_ray.stages.search import budget

    pr, t, slots = facts["probe"], cfg.train, facts["trial_slots"]
    est, lines = {}, []
    est["features"], lines = features(cfg, pr, facts["images"])
    fold_val = facts["pool"] / max(1, cfg.grid.folds)
    fold_train = facts["pool"] - fold_val
    per_epoch = _epoch_s(facts, fold_train, fold_val)
    ckpt_every = max(1, cfg.output.checkpoint_every)
    if cfg.search.algorithm == "grid" or cfg.search.compare_grid:
        n = search_space.grid_cells(cfg) * cfg.grid.folds
        per = pr.build_s + t.epochs * per_epoch + (t.epochs / ckpt_every) * pr.checkpoint_s
        est["grid"], k = tune_stage(n, per, slots, t.epochs)
        lines.append(f"grid: {n} trials x {t.epochs} epochs on ~{fold_train:.0f} training "
                     f"images (validation ~{fold_val:.0f}), {k} at a time")  # fmt: skip
    if cfg.search.algorithm != "grid":
        n, f = budget(cfg), cfg.grid.folds
        per = f * (pr.build_s + t.epochs * per_epoch) + f * pr.checkpoint_s
        est["search"], k = tune_stage(n, per, slots, f)
        lines.append(f"search: {n} {cfg.search.algorithm} trials x {f} folds x {t.epochs} "
                     f"epochs on ~{fold_train:.0f} images, {k} at a time"
                     + ("" if cfg.search.scheduler in ("none", "fifo") else
                        f" (scheduler {cfg.search.scheduler} may stop some early)"))  # fmt: skip
    return est, lines


def ensemble(cfg: Config, facts: dict[str, Any]) -> Estimate:
    pr, e, t = facts["probe"], cfg.ensemble, cfg.train
    pool, n_test = facts["pool"], facts["n_test"]
    n = e.members * e.holdout_repeats
    epochs = t.epochs + e.phase2_epochs
    val = pool * e.val_fraction
    evals = val + (n_test if e.selection == "test" else 0)
    ckpt_every = max(1, cfg.output.checkpoint_every)
    per = (
        pr.build_s
        + epochs * _epoch_s(facts, pool - val, evals)
        + (epochs / ckpt_every) * pr.checkpoint_s
    )
    seconds, k = tune_stage(n, per + (val + n_test) * pr.eval_s, facts["trial_slots"], epochs)
    line = (
        f"ensemble: {n} members x {epochs} epochs ({t.epochs} + {e.phase2_epochs}) on"
        f" ~{pool - val:.0f} training images, {k} at a time"
    )
    return {"ensemble": seconds}, [line]


def analyse(cfg: Config, facts: dict[str, Any]) -> Estimate:
    from fer_ray.analysis.per_model import ANALYSES

    members, kinds = cfg.ensemble.members, len(ANALYSES.names())
    n = members * kinds
    seconds = 2.0 + math.ceil(n / facts["task_slots"]) * OVERHEADS["per_task"] * 2
    return {"analyse": seconds}, [f"analyse: {n} Ray tasks ({members} members x {kinds} analyses)"]


def features(cfg: Config, pr: Any, n_images: int) -> tuple[float, list[str]]:
    """Seconds of the stand-in's pretraining (unless cached) and of the trunk's pass over every
    image (the feature cache), with a line each for the plan."""
    from fer_ray.models import weights
    from fer_ray.models.pretrain import pretrain_key

    r = cfg.resources
    threads = r.features_cpus
    scale = pr.threads / max(1, threads)  # the trunk was probed with the trial's threads
    seconds, notes = 1.0, []
    src = weights.source(cfg.model.weights)
    if src is not None and src.stand_in:
        gpus = r.features_gpus if r.features_gpus is not None else float(r.gpus_per_trial > 0)
        key = pretrain_key(cfg, "cuda" if gpus > 0 else "cpu", threads)
        images = cfg.model.pretrain_subjects * 14
        what = (
            f"{cfg.model.weights} stand-in: {cfg.model.pretrain_epochs} epochs on {images} images"
        )
        if (layout.cache_root(cfg, "weights") / f"{key}.pt").is_file():
            notes.append(f"weights: {what}, cached (reused)")
        else:
            seconds += cfg.model.pretrain_epochs * images * pr.full_train_s  # its own threads
            notes.append(f"weights: {what}, to train first ({threads} CPU task)")
    if pr.kind == "features":
        seconds += n_images * pr.trunk_s * scale
        notes.append(f"features: the frozen trunk once over {n_images} images (cached if seen)")
    return seconds, notes
