"""analyse: one Ray task per (member, analysis), from stored member results.

Each member's head weights and pooled test features are put into the object
store once; every task reads them by reference. Each task's result is written
to ``analyse/tasks/`` as it arrives, so an interrupted stage redoes only the
missing tasks. Tasks run from the driver after Tune (never inside a trial).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray

from fer_ray.analysis import gedeon, metrics, pruning
from fer_ray.config import Config
from fer_ray.stages.common import RunPaths, node_ip, progress, read_json, write_json

ANALYSES = ("magnitude", "angles", "baselines", "sweep_random", "sweep_magnitude", "metrics")


def load_member(path: Path, activation: str) -> tuple[pruning.HeadWeights, np.ndarray, np.ndarray]:
    with np.load(path) as z:
        head = pruning.HeadWeights(z["w_hidden"], z["b_hidden"], z["w_out"], z["b_out"], activation)
        return head, z["test_features"], z["test_labels"]


def run_analysis(
    name: str,
    head: pruning.HeadWeights,
    feats: np.ndarray,
    labels: np.ndarray,
    cfg: Config,
    seed: int,
) -> dict[str, Any]:
    """One analysis of one member; plain numpy, JSON-serialisable result."""
    a = cfg.analyse
    if name == "magnitude":
        return {"values": gedeon.feature_contributions(head.w_hidden, head.w_out).tolist()}
    if name == "angles":
        mat = gedeon.angle_matrix(head.w_hidden, absolute=a.absolute_angles)
        off = mat[~np.eye(len(mat), dtype=bool)]
        return {
            "values": gedeon.mean_angles(head.w_hidden, absolute=a.absolute_angles).tolist(),
            "min_pair": float(off.min()),
            "max_pair": float(off.max()),
        }
    if name == "baselines":
        return pruning.pruning_baselines(
            feats, labels, head, absolute_angles=a.absolute_angles, rng=seed
        )
    if name in ("sweep_random", "sweep_magnitude"):
        order = name.split("_", 1)[1]
        df = pruning.ratio_sweep(
            feats, labels, head, pruning.default_ratios(), a.sweep_draws, seed, order=order
        )
        return {"rows": df.to_dict("records")}
    if name == "metrics":
        preds = pruning.head_logits(feats, head).argmax(1)
        return {"preds": preds.tolist(), "labels": labels.tolist()}
    raise ValueError(f"unknown analysis {name!r}")


@ray.remote
def _task(name, head, feats_labels, cfg, seed):  # noqa: ANN001, ANN202
    t0 = time.time()
    out = run_analysis(name, head, feats_labels[0], feats_labels[1], cfg, seed)
    return {**out, "node": node_ip(), "seconds": round(time.time() - t0, 3)}


def run(cfg: Config, paths: RunPaths, resume: bool = False) -> dict[str, Any]:
    out = paths.stage("analyse")
    tasks_dir = out / "tasks"
    tasks_dir.mkdir(parents=True, exist_ok=True)
    members = sorted((paths.stage("ensemble") / "members").glob("member_*/member.npz"))
    if not members:
        raise FileNotFoundError(f"no ensemble members under {paths.stage('ensemble')}")
    act = cfg.model.activation
    pending: dict[Any, Path] = {}
    t0 = time.time()
    for m_idx, path in enumerate(members):
        todo = [n for n in ANALYSES if not (tasks_dir / f"{m_idx:02d}_{n}.json").is_file()]
        if not todo:
            continue
        head, feats, labels = load_member(path, act)
        head_ref, data_ref = ray.put(head), ray.put((feats, labels))
        for n in todo:
            ref = _task.remote(n, head_ref, data_ref, cfg, cfg.seed * 1000 + m_idx)
            pending[ref] = tasks_dir / f"{m_idx:02d}_{n}.json"
    total, done = len(members) * len(ANALYSES), len(members) * len(ANALYSES) - len(pending)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        dst = pending.pop(ready[0])
        write_json(dst, ray.get(ready[0]))
        done += 1
        progress("analyse", f"{done}/{total} tasks · {time.time() - t0:4.0f}s", not pending)
    summary = aggregate(cfg, out, len(members))
    print(
        f"[analyse] {len(members)} members × {len(ANALYSES)} analyses · "
        f"{summary['features_within_magnitude']} of {summary['n_features']} features within "
        f"mean ± std magnitude · {summary['smallest_kept_within_1pt']} features keep accuracy "
        "within 1 point",
        flush=True,
    )
    return summary


def _load_tasks(tasks_dir: Path, n_members: int, name: str) -> list[dict[str, Any]]:
    return [read_json(tasks_dir / f"{m:02d}_{name}.json") for m in range(n_members)]


def _per_feature_csv(values: np.ndarray, path: Path) -> None:
    """(members, features) → one column per member, one row per feature."""
    cols = [f"m{i:02d}" for i in range(len(values))]
    pd.DataFrame(values.T, columns=cols).rename_axis("feature").to_csv(path)


def _confusion_csv(conf: np.ndarray, class_names: list[str], path: Path) -> None:
    frame = pd.DataFrame(conf, index=class_names, columns=class_names)
    frame.rename_axis("true").to_csv(path)


def aggregate(cfg: Config, out: Path, n_members: int) -> dict[str, Any]:
    """Per-task results → tables under analyse/ (what the report reads)."""
    td = out / "tasks"
    mag = np.array([t["values"] for t in _load_tasks(td, n_members, "magnitude")])
    ang_tasks = _load_tasks(td, n_members, "angles")
    ang = np.array([t["values"] for t in ang_tasks])
    _per_feature_csv(mag, out / "magnitude.csv")
    _per_feature_csv(ang, out / "angles.csv")
    rows = []
    for m, b in enumerate(_load_tasks(td, n_members, "baselines")):
        for rule in ("none", "magnitude", "angle", "random"):
            rows.append(
                {
                    "member": m,
                    "rule": rule,
                    **{k: b[rule][k] for k in ("n_pruned", "accuracy", "threshold")},
                }
            )
    baselines = pd.DataFrame(rows)
    baselines.to_csv(out / "baselines.csv", index=False)
    sweeps = []
    for order in ("random", "magnitude"):
        for m, t in enumerate(_load_tasks(td, n_members, f"sweep_{order}")):
            sweeps.append(pd.DataFrame(t["rows"]).assign(member=m, order=order))
    sweep = pd.concat(sweeps, ignore_index=True)
    sweep.to_csv(out / "sweep.csv", index=False)
    met = _load_tasks(td, n_members, "metrics")
    class_names = json.loads((out.parent / "prepare" / "summary.json").read_text())["class_names"]
    n_classes = len(class_names)
    labels = np.array(met[0]["labels"])
    per_class = []
    for m, t in enumerate(met):
        rep = metrics.per_class_report(labels, np.array(t["preds"]), class_names)
        per_class.append(rep.reset_index().assign(member=m))
    with np.load(out.parent / "ensemble" / "vote.npz") as z:
        vote_preds = z["probs"].argmax(1)
    per_class.append(
        metrics.per_class_report(labels, vote_preds, class_names)
        .reset_index()
        .assign(member="vote")
    )
    pd.concat(per_class, ignore_index=True).to_csv(out / "per_class.csv", index=False)
    conf = metrics.confusion(labels, vote_preds, n_classes)
    _confusion_csv(conf, class_names, out / "confusion_vote.csv")
    conf_mean = np.mean(
        [metrics.confusion(labels, np.array(t["preds"]), n_classes) for t in met], axis=0
    )
    _confusion_csv(conf_mean, class_names, out / "confusion_members_mean.csv")
    avg_mag, avg_ang = mag.mean(0), ang.mean(0)
    unpruned = baselines[baselines["rule"] == "none"].set_index("member")["accuracy"]
    rnd = sweep[sweep["order"] == "random"]
    per_member_kept = [
        pruning.smallest_kept_within(rnd[rnd["member"] == m], float(unpruned[m]), 0.01)
        for m in range(n_members)
    ]
    summary = {
        "n_members": n_members,
        "n_features": int(mag.shape[1]),
        "absolute_angles": cfg.analyse.absolute_angles,
        "magnitude_mean": float(avg_mag.mean()),
        "magnitude_std": float(avg_mag.std()),
        "features_within_magnitude": gedeon.within_mean_std(avg_mag),
        "angle_mean": float(avg_ang.mean()),
        "angle_std": float(avg_ang.std()),
        "features_within_angle": gedeon.within_mean_std(avg_ang),
        "angle_min_pair": float(min(t["min_pair"] for t in ang_tasks)),
        "angle_max_pair": float(max(t["max_pair"] for t in ang_tasks)),
        "pruned_by_rule": baselines.groupby("rule")["n_pruned"].mean().to_dict(),
        "accuracy_by_rule": baselines.groupby("rule")["accuracy"]
        .agg(["mean", "std"])
        .to_dict("index"),
        "unpruned_accuracy": float(unpruned.mean()),
        "smallest_kept_within_1pt": int(np.median(per_member_kept)),
        "smallest_kept_within_1pt_per_member": per_member_kept,
    }
    write_json(out / "summary.json", summary)
    return summary
