"""descriptors: seed 000's baseline, a 10-50-7 net on SFEW.xlsx's LPQ/PHOG columns (sec. 2.1, 3.1).

Per repeat ``r`` the rows are split into ``descriptors.folds`` folds stratified by label and
grouped by movie (seed ``cfg.seed + r``); one Ray task per (repeat, fold) z-scores with the
training part's mean/std only, trains ``Head(10, hidden, 7)`` with Adam and keeps the
last-epoch weights (no epoch is selected on the held-out fold, so its accuracy is honest).
Then one Ray task per (model, analysis) runs the shared analysis code on the held-out fold:
Gedeon magnitude (Table 1), mean distinctiveness angle (Fig. 1a) and accuracy with inputs
eliminated in pairs (Fig. 1b). Every task result is written to ``descriptors/tasks/`` as it
arrives, so a resumed stage redoes only missing tasks; ``summary.json`` is written last.

Config keys read: ``seed``, ``data.root`` (when ``descriptors.path`` is None),
``descriptors.*``, ``analyse.absolute_angles`` and the sheet's bytes (hashed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import ray

from fer_ray import files, layout
from fer_ray.analysis import per_model, pruning
from fer_ray.analysis.summaries import descriptor_tables
from fer_ray.config import Config, TrainConfig
from fer_ray.data.descriptors import (
    CLASS_NAMES,
    FEATURES,
    PAPER_TABLE1,
    PAPER_TEST_ACC,
    read_sheet,
)
from fer_ray.data.descriptors import sheet_path as descriptor_sheet
from fer_ray.data.splits import assert_disjoint, grouped_folds
from fer_ray.layout import Descriptors, RunPaths
from fer_ray.seeds import fold_model_seed
from fer_ray.stages.common import drain, progress, write_work
from fer_ray.stages.task_results import store_json, timed, work_row
from fer_ray.train.descriptor_net import ACTIVATION, N_CLASSES, train_fold

STAGE = Descriptors.DIR
ANALYSES = ("magnitude", "angles", "pairs")
UNGROUPED_NOTE = (
    "NOT GROUPED BY MOVIE: the sheet has no image-name column, so folds split rows "
    "independently and one movie's images can sit on both sides (accuracy may be optimistic)"
)

if TYPE_CHECKING:
    from fer_ray.stages.context import StageContext


def sheet_path(cfg: Config) -> Path:
    return descriptor_sheet(cfg.descriptors.path, cfg.data.root)


def train_config(cfg: Config) -> TrainConfig:
    """The loop's settings for this net: Adam, no decay or augmentation, descriptor batch size."""
    d = cfg.descriptors
    return dataclasses.replace(
        cfg.train,
        optimizer="adam",
        weight_decay=0.0,
        batch_size=d.batch_size,
        epochs=d.epochs,
        recipe="none",
    )


@ray.remote
def _train_task(x, y, train_idx, val_idx, d, tcfg, seed):  # noqa: ANN001, ANN202
    return timed(train_fold, x, y, train_idx, val_idx, d, tcfg, seed)


@ray.remote
def _analysis_task(name: str, model: per_model.ModelData, s: per_model.Settings) -> dict:
    return timed(per_model.run, name, model, s, 0)


ARRAYS = (
    "w_hidden",
    "b_hidden",
    "w_out",
    "b_out",
    "val_features",
    "val_labels",
    "val_preds",
    "train_idx",
    "val_idx",
    "mean",
    "std",
)


def _key(r: int, f: int) -> str:
    return f"r{r}_f{f}"


def load_model(tasks_dir: Path, r: int, f: int) -> per_model.ModelData:
    """A stored model's head and its held-out (z-scored) features and labels."""
    with np.load(tasks_dir / f"{_key(r, f)}.npz") as z:
        head = pruning.HeadWeights(z["w_hidden"], z["b_hidden"], z["w_out"], z["b_out"], ACTIVATION)
        return per_model.ModelData(head, z["val_features"], z["val_labels"])


def _inputs_key(cfg: Config, path: Path) -> dict[str, Any]:
    return {
        "sheet": str(path),
        "sheet_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "seed": cfg.seed,
        "descriptors": dataclasses.asdict(cfg.descriptors),
        "absolute_angles": cfg.analyse.absolute_angles,
    }


def _prepare_tasks_dir(tasks_dir: Path, inputs: dict[str, Any], resume: bool) -> None:
    """Keep stored tasks only when resuming with the same inputs."""
    stored = tasks_dir / Descriptors.INPUTS
    if tasks_dir.is_dir():
        same = stored.is_file() and files.read_json(stored) == json.loads(json.dumps(inputs))
        if resume and not same:
            print(f"[{STAGE}] inputs changed since the stored tasks; recomputing all", flush=True)
        if not (resume and same):
            shutil.rmtree(tasks_dir)
    tasks_dir.mkdir(parents=True, exist_ok=True)
    files.write_json(stored, inputs)


def stage(ctx: StageContext) -> None:
    run(ctx.cfg, ctx.paths, ctx.resume)


def run(cfg: Config, paths: RunPaths, resume: bool = False) -> dict[str, Any]:
    """Train and analyse the descriptor baseline; Ray must be initialised by the caller."""
    t0 = time.time()
    d = cfg.descriptors
    out = paths.stage(STAGE)
    tasks_dir = out / layout.TASKS
    path = sheet_path(cfg)
    df = read_sheet(path)
    grouped = bool(df.attrs["grouped"])
    x = df[list(FEATURES)].to_numpy(dtype=np.float64)
    y = df["label"].to_numpy(dtype=np.int64)
    groups = df["group"].to_numpy()
    _prepare_tasks_dir(tasks_dir, _inputs_key(cfg, path), resume)
    (out / layout.SUMMARY).unlink(missing_ok=True)  # a stale summary must not look finished
    df[["name", "group", "label", "label_name"]].rename_axis("row").to_csv(out / Descriptors.ROWS)
    progress(
        STAGE,
        f"{path.name}: {len(df)} rows, {len(np.unique(groups))} "
        + ("movies" if grouped else "rows as groups (NOT GROUPED BY MOVIE)"),
        True,
    )
    if not grouped:
        print(f"[{STAGE}] WARNING: {path}: {UNGROUPED_NOTE}", flush=True)

    models = [(r, f) for r in range(d.repeats) for f in range(d.folds)]
    tcfg = train_config(cfg)
    x_ref, y_ref = ray.put(x), ray.put(y)
    spread = {"num_cpus": cfg.resources.cpus_per_task, "scheduling_strategy": "SPREAD"}
    train_task, analysis_task = _train_task.options(**spread), _analysis_task.options(**spread)
    pending: dict[Any, Any] = {}
    for r in range(d.repeats):
        folds = grouped_folds(y, groups, d.folds, seed=cfg.seed + r)
        for f in range(d.folds):
            assert_disjoint(groups, folds != f, folds == f)
            if (tasks_dir / f"{_key(r, f)}.json").is_file():
                continue
            for a in ANALYSES:  # a retrained model invalidates its analyses
                (tasks_dir / f"{_key(r, f)}_{a}.json").unlink(missing_ok=True)
            tr, va = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
            seed = fold_model_seed(cfg.seed, r, f)
            ref = train_task.remote(x_ref, y_ref, tr, va, d, tcfg, seed)
            pending[ref] = (r, f, seed)
    n_train = len(pending)

    def save_model(what: tuple[int, int, int], res: dict[str, Any]) -> str:
        r, f, seed = what
        files.savez(tasks_dir / f"{_key(r, f)}.npz", **{k: res[k] for k in ARRAYS})
        info = {k: v for k, v in res.items() if k not in ARRAYS}
        info.update(repeat=r, fold=f, seed=seed, n_train=len(res["train_idx"]))
        info["n_val"] = len(res["val_idx"])
        files.write_json(tasks_dir / f"{_key(r, f)}.json", info)  # last: the task's marker
        return f" · last val acc {res['val_acc']:.3f}"

    drain(pending, save_model, STAGE, "train", len(models))

    pending = {}
    s = per_model.Settings(absolute_angles=cfg.analyse.absolute_angles)
    for r, f in models:
        todo = [a for a in ANALYSES if not (tasks_dir / f"{_key(r, f)}_{a}.json").is_file()]
        if not todo:
            continue
        model_ref = ray.put(load_model(tasks_dir, r, f))
        for a in todo:
            pending[analysis_task.remote(a, model_ref, s)] = tasks_dir / f"{_key(r, f)}_{a}.json"
    n_analyses = len(pending)

    drain(pending, store_json, STAGE, "analyses", len(models) * len(ANALYSES))

    summary = aggregate(cfg, out, models, df, path)
    summary["computed"] = {"train": n_train, "analyses": n_analyses}
    summary["seconds"] = round(time.time() - t0, 2)
    files.write_json(out / layout.SUMMARY, summary)  # last: the stage's results are complete
    progress(
        STAGE,
        f"{len(models)} models · CV acc {100 * summary['cv_acc_mean']:.2f} ± "
        f"{100 * summary['cv_acc_std']:.2f} % (chance {100 * summary['chance_majority']:.2f} %) "
        f"· magnitude sum {summary['magnitude_sum']:.4f}"
        + ("" if grouped else " · NOT GROUPED BY MOVIE"),
        True,
    )
    return summary


TABLE_FILES = {
    "folds": Descriptors.FOLDS,
    "magnitude_models": Descriptors.MAGNITUDE_MODELS,
    "angles_models": Descriptors.ANGLES_MODELS,
    "table1": Descriptors.TABLE1,
    "angles": Descriptors.ANGLES,
    "pairs": Descriptors.PAIRS,
}


def aggregate(
    cfg: Config, out: Path, models: list[tuple[int, int]], df: pd.DataFrame, path: Path
) -> dict[str, Any]:
    """Per-task files → folds.csv, table1_magnitude.csv, angles.csv, pairs.csv; the summary."""
    td = out / layout.TASKS
    infos = [files.read_json(td / f"{_key(r, f)}.json") for r, f in models]
    tasks = {
        a: [files.read_json(td / f"{_key(r, f)}_{a}.json") for r, f in models] for a in ANALYSES
    }
    tables, facts = descriptor_tables(
        infos, tasks, models, df["label"].to_numpy(), FEATURES, N_CLASSES
    )
    for name, frame in tables.items():
        frame.to_csv(out / TABLE_FILES[name], index=False)
    write_work(
        out,
        [work_row(f"train r{r} f{f}", i) for (r, f), i in zip(models, infos)]
        + [work_row(f"{a} r{r} f{f}", t) for a in ANALYSES for (r, f), t in zip(models, tasks[a])],
    )
    grouped = bool(df.attrs["grouped"])
    d = cfg.descriptors
    counts = facts.pop("class_counts")
    return {
        "sheet": str(path),
        "grouped": grouped,
        "grouping_note": "grouped by movie (image-name prefix)" if grouped else UNGROUPED_NOTE,
        "n_rows": int(len(df)),
        "n_groups": int(df["group"].nunique()),
        "class_counts": dict(zip(CLASS_NAMES, counts)),
        "topology": f"{len(FEATURES)}-{d.hidden}-{N_CLASSES}",
        "folds": d.folds,
        "repeats": d.repeats,
        "lr": d.lr,
        "epochs": d.epochs,
        "batch_size": d.batch_size,
        "absolute_angles": cfg.analyse.absolute_angles,
        **facts,
        "paper_test_acc": PAPER_TEST_ACC,
        "paper_table1": list(PAPER_TABLE1),
    }
