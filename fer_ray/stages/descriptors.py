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
from typing import Any

import numpy as np
import pandas as pd
import ray

from fer_ray.analysis import gedeon, pruning
from fer_ray.config import Config, TrainConfig
from fer_ray.data.datasets import DataError
from fer_ray.data.descriptors import (
    CLASS_NAMES,
    FEATURES,
    PAPER_TABLE1,
    PAPER_TEST_ACC,
    read_sheet,
)
from fer_ray.data.splits import assert_disjoint, grouped_folds
from fer_ray.faces.cache import atomic_savez
from fer_ray.stages.common import RunPaths, node_ip, progress, read_json, write_json
from fer_ray.train.descriptor_net import ACTIVATION, N_CLASSES, train_fold

STAGE = "descriptors"
ANALYSES = ("magnitude", "angles", "pairs")
UNGROUPED_NOTE = (
    "NOT GROUPED BY MOVIE: the sheet has no image-name column, so folds split rows "
    "independently and one movie's images can sit on both sides (accuracy may be optimistic)"
)


def sheet_path(cfg: Config) -> Path:
    """``descriptors.path``, else ``<data.root>/SFEW.xlsx``."""
    if cfg.descriptors.path:
        return Path(cfg.descriptors.path).expanduser().resolve()
    if cfg.data.root:
        return (Path(cfg.data.root).expanduser() / "SFEW.xlsx").resolve()
    raise DataError(
        "descriptors.enabled needs the SFEW.xlsx sheet: set descriptors.path (or data.root)"
    )


def model_seed(cfg: Config, repeat: int, fold: int) -> int:
    """One independent seed per (cfg.seed, repeat, fold) for the head init and batch order."""
    return int(np.random.SeedSequence([cfg.seed % 2**32, repeat, fold]).generate_state(1)[0])


def train_config(cfg: Config) -> TrainConfig:
    """The loop's settings for this net: Adam, no decay or augmentation, descriptor batch size."""
    d = cfg.descriptors
    return dataclasses.replace(
        cfg.train,
        optimizer="adam",
        weight_decay=0.0,
        batch_size=d.batch_size,
        epochs=d.epochs,
        augment="none",
    )


def run_analysis(
    name: str, head: pruning.HeadWeights, feats: np.ndarray, labels: np.ndarray, absolute: bool
) -> dict[str, Any]:
    """One analysis of one model with the shared measures; JSON-serialisable."""
    if name == "magnitude":
        values = gedeon.feature_contributions(head.w_hidden, head.w_out)
        return {"values": values.tolist(), "sum": float(values.sum())}
    if name == "angles":
        mat = gedeon.angle_matrix(head.w_hidden, absolute=absolute)
        return {
            "values": gedeon.mean_angles(head.w_hidden, absolute=absolute).tolist(),
            "matrix": mat.tolist(),
        }
    if name == "pairs":
        return {
            "full": pruning.accuracy(feats, labels, head),
            "matrix": pruning.pair_elimination(feats, labels, head).tolist(),
        }
    raise ValueError(f"unknown analysis {name!r}")


@ray.remote
def _train_task(x, y, train_idx, val_idx, d, tcfg, seed):  # noqa: ANN001, ANN202
    t0 = time.time()
    out = train_fold(x, y, train_idx, val_idx, d, tcfg, seed)
    return {**out, "node": node_ip(), "seconds": round(time.time() - t0, 3)}


@ray.remote
def _analysis_task(name, head, feats_labels, absolute):  # noqa: ANN001, ANN202
    t0 = time.time()
    out = run_analysis(name, head, feats_labels[0], feats_labels[1], absolute)
    return {**out, "node": node_ip(), "seconds": round(time.time() - t0, 3)}


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


def load_model(
    tasks_dir: Path, r: int, f: int
) -> tuple[pruning.HeadWeights, np.ndarray, np.ndarray]:
    """A stored model's head and its held-out (z-scored) features and labels."""
    with np.load(tasks_dir / f"{_key(r, f)}.npz") as z:
        head = pruning.HeadWeights(z["w_hidden"], z["b_hidden"], z["w_out"], z["b_out"], ACTIVATION)
        return head, z["val_features"], z["val_labels"]


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
    stored = tasks_dir / "inputs.json"
    if tasks_dir.is_dir():
        same = stored.is_file() and read_json(stored) == json.loads(json.dumps(inputs))
        if resume and not same:
            print(f"[{STAGE}] inputs changed since the stored tasks; recomputing all", flush=True)
        if not (resume and same):
            shutil.rmtree(tasks_dir)
    tasks_dir.mkdir(parents=True, exist_ok=True)
    write_json(stored, inputs)


def _drain(pending: dict[Any, Any], on_result: Any, label: str, total: int, t0: float) -> None:
    done = total - len(pending)
    if not pending:
        progress(STAGE, f"{label} {done}/{total} (all stored)", True)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        what = pending.pop(ready[0])
        note = on_result(what, ray.get(ready[0]))
        done += 1
        text = f"{label} {done}/{total} · {time.time() - t0:4.0f}s{note}"
        progress(STAGE, text, not pending)


def run(cfg: Config, paths: RunPaths, resume: bool = False) -> dict[str, Any]:
    """Train and analyse the descriptor baseline; Ray must be initialised by the caller."""
    t0 = time.time()
    d = cfg.descriptors
    out = paths.stage(STAGE)
    tasks_dir = out / "tasks"
    path = sheet_path(cfg)
    df = read_sheet(path)
    grouped = bool(df.attrs["grouped"])
    x = df[list(FEATURES)].to_numpy(dtype=np.float64)
    y = df["label"].to_numpy(dtype=np.int64)
    groups = df["group"].to_numpy()
    _prepare_tasks_dir(tasks_dir, _inputs_key(cfg, path), resume)
    (out / "summary.json").unlink(missing_ok=True)  # a stale summary must not look finished
    df[["name", "group", "label", "label_name"]].rename_axis("row").to_csv(out / "rows.csv")
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
            seed = model_seed(cfg, r, f)
            pending[_train_task.remote(x_ref, y_ref, tr, va, d, tcfg, seed)] = (r, f, seed)
    n_train = len(pending)

    def save_model(what: tuple[int, int, int], res: dict[str, Any]) -> str:
        r, f, seed = what
        atomic_savez(tasks_dir / f"{_key(r, f)}.npz", **{k: res[k] for k in ARRAYS})
        info = {k: v for k, v in res.items() if k not in ARRAYS}
        info.update(repeat=r, fold=f, seed=seed, n_train=len(res["train_idx"]))
        info["n_val"] = len(res["val_idx"])
        write_json(tasks_dir / f"{_key(r, f)}.json", info)  # written last: the task's marker
        return f" · last val acc {res['val_acc']:.3f}"

    _drain(pending, save_model, "train", len(models), time.time())

    pending = {}
    for r, f in models:
        todo = [a for a in ANALYSES if not (tasks_dir / f"{_key(r, f)}_{a}.json").is_file()]
        if not todo:
            continue
        head, feats, labels = load_model(tasks_dir, r, f)
        head_ref, data_ref = ray.put(head), ray.put((feats, labels))
        for a in todo:
            ref = _analysis_task.remote(a, head_ref, data_ref, cfg.analyse.absolute_angles)
            pending[ref] = tasks_dir / f"{_key(r, f)}_{a}.json"
    n_analyses = len(pending)

    def save_analysis(dst: Path, res: dict[str, Any]) -> str:
        write_json(dst, res)
        return ""

    _drain(pending, save_analysis, "analyses", len(models) * len(ANALYSES), time.time())

    summary = aggregate(cfg, out, models, df, path)
    summary["computed"] = {"train": n_train, "analyses": n_analyses}
    summary["seconds"] = round(time.time() - t0, 2)
    write_json(out / "summary.json", summary)  # last: the stage's results are complete
    progress(
        STAGE,
        f"{len(models)} models · CV acc {100 * summary['cv_acc_mean']:.2f} ± "
        f"{100 * summary['cv_acc_std']:.2f} % (chance {100 * summary['chance_majority']:.2f} %) "
        f"· magnitude sum {summary['magnitude_sum']:.4f}"
        + ("" if grouped else " · NOT GROUPED BY MOVIE"),
        True,
    )
    return summary


def _std(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """Sample std over models (0 for a single model)."""
    return a.std(axis=axis, ddof=1) if a.shape[axis] > 1 else np.zeros_like(a.mean(axis=axis))


def _per_input_table(values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "input": np.arange(1, len(FEATURES) + 1),
            "feature": FEATURES,
            "mean": values.mean(0),
            "std": _std(values),
        }
    )


def _per_model_csv(models: list[tuple[int, int]], values: np.ndarray, path: Path) -> None:
    frame = pd.DataFrame(values, columns=list(FEATURES))
    frame.insert(0, "fold", [f for _, f in models])
    frame.insert(0, "repeat", [r for r, _ in models])
    frame.to_csv(path, index=False)


def pair_rows(full: np.ndarray, mats: np.ndarray) -> pd.DataFrame:
    """(models,) full accuracies and (models, F, F) eliminated accuracies → pairs.csv rows.

    Inputs are numbered 1-10 as in the paper; the "full" row (nothing eliminated) has i = j = 0
    and the "single" rows i == j. ``drop_vs_full`` > 0 means accuracy was lost.
    """
    rows = []

    def add(kind: str, i: int, j: int, acc: np.ndarray) -> None:
        rows.append(
            {
                "kind": kind,
                "i": i,
                "j": j,
                "name_i": FEATURES[i - 1] if i else "-",
                "name_j": FEATURES[j - 1] if j else "-",
                "acc_mean": float(acc.mean()),
                "acc_std": float(_std(acc)),
                "drop_vs_full": float((full - acc).mean()),
            }
        )

    add("full", 0, 0, full)
    n = mats.shape[1]
    for i in range(n):
        add("single", i + 1, i + 1, mats[:, i, i])
    for i in range(n):
        for j in range(i + 1, n):
            add("pair", i + 1, j + 1, mats[:, i, j])
    return pd.DataFrame(rows)


def aggregate(
    cfg: Config, out: Path, models: list[tuple[int, int]], df: pd.DataFrame, path: Path
) -> dict[str, Any]:
    """Per-task files → folds.csv, table1_magnitude.csv, angles.csv, pairs.csv; the summary."""
    td = out / "tasks"
    infos = [read_json(td / f"{_key(r, f)}.json") for r, f in models]

    def load(a: str) -> list[dict[str, Any]]:
        return [read_json(td / f"{_key(r, f)}_{a}.json") for r, f in models]

    cols = ["repeat", "fold", "n_train", "n_val", "val_acc", "node"]
    extra = ["train_acc", "val_acc_best_epoch", "best_epoch", "seed", "seconds"]
    folds = pd.DataFrame(infos)[cols + extra]
    folds.to_csv(out / "folds.csv", index=False)

    mag = np.array([t["values"] for t in load("magnitude")])
    ang = np.array([t["values"] for t in load("angles")])
    pairs = load("pairs")
    _per_model_csv(models, mag, out / "magnitude_models.csv")
    _per_model_csv(models, ang, out / "angles_models.csv")
    table1 = _per_input_table(mag)
    table1.to_csv(out / "table1_magnitude.csv", index=False)
    _per_input_table(ang).to_csv(out / "angles.csv", index=False)
    full = np.array([p["full"] for p in pairs])
    mats = np.array([p["matrix"] for p in pairs])
    pt = pair_rows(full, mats)
    pt.to_csv(out / "pairs.csv", index=False)

    acc = folds["val_acc"].to_numpy()
    per_model_sums = mag.sum(axis=1)
    only_pairs = pt[pt["kind"] == "pair"]
    worst = only_pairs.loc[only_pairs["drop_vs_full"].idxmax()]
    counts = np.bincount(df["label"].to_numpy(), minlength=N_CLASSES)
    grouped = bool(df.attrs["grouped"])
    d = cfg.descriptors
    return {
        "sheet": str(path),
        "grouped": grouped,
        "grouping_note": "grouped by movie (image-name prefix)" if grouped else UNGROUPED_NOTE,
        "n_rows": int(len(df)),
        "n_groups": int(df["group"].nunique()),
        "class_counts": dict(zip(CLASS_NAMES, counts.tolist())),
        "topology": f"{len(FEATURES)}-{d.hidden}-{N_CLASSES}",
        "folds": d.folds,
        "repeats": d.repeats,
        "lr": d.lr,
        "epochs": d.epochs,
        "batch_size": d.batch_size,
        "absolute_angles": cfg.analyse.absolute_angles,
        "n_models": len(models),
        "cv_acc_mean": float(acc.mean()),
        "cv_acc_std": float(_std(acc)),
        "cv_acc_best_epoch_mean": float(folds["val_acc_best_epoch"].mean()),
        "chance_majority": float(counts.max() / counts.sum()),
        "chance_uniform": 1.0 / N_CLASSES,
        "magnitude_sum": float(table1["mean"].sum()),
        "magnitude_sum_expected": N_CLASSES,
        "magnitude_sum_max_dev": float(np.abs(per_model_sums - N_CLASSES).max()),
        "magnitude_sum_ok": bool(np.abs(per_model_sums - N_CLASSES).max() < 1e-6),
        "angle_mean": float(ang.mean()),
        "pairs_full_acc": float(full.mean()),
        "pairs_mean_drop": float(only_pairs["drop_vs_full"].mean()),
        "pairs_worst": {
            "inputs": [int(worst["i"]), int(worst["j"])],
            "names": [worst["name_i"], worst["name_j"]],
            "drop": float(worst["drop_vs_full"]),
        },
        "paper_test_acc": PAPER_TEST_ACC,
        "paper_table1": list(PAPER_TABLE1),
    }
