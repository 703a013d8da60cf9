"""Per-task analysis results → the tables and headline facts a stage stores.

Pure: the stages read the task files and write what these return; the report reads those
files. Keeping the arithmetic here lets it be tested without Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from fer_ray.analysis import gedeon, metrics, pruning
from fer_ray.analysis import member_intervals as mi
from fer_ray.analysis.intervals import DEFAULT_METHOD

Tasks = dict[str, list[dict[str, Any]]]  # analysis name → one result per model, model order


def per_feature(values: np.ndarray) -> pd.DataFrame:
    """(models, features) → one row per feature, one column per model (m00, m01, ...)."""
    cols = [f"m{i:02d}" for i in range(len(values))]
    return pd.DataFrame(values.T, columns=cols).rename_axis("feature").reset_index()


def confusion_frame(conf: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(conf, index=list(class_names), columns=list(class_names))
    return frame.rename_axis("true").reset_index()


def member_tables(
    tasks: Tasks,
    class_names: Sequence[str],
    vote_preds: np.ndarray,
    absolute_angles: bool,
    groups: np.ndarray,
    seed: int = 0,
    method: str = DEFAULT_METHOD,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Seed 000's feature analysis over the ensemble members: tables and summary, with
    intervals over subjects by ``method`` (``groups``: the subject of each test image)."""
    mag = np.array([t["values"] for t in tasks["magnitude"]])
    ang = np.array([t["values"] for t in tasks["angles"]])
    baselines = _baselines(tasks)
    sweep = pd.concat(
        [
            pd.DataFrame(t["rows"]).assign(member=m, order=order)
            for order in ("random", "magnitude")
            for m, t in enumerate(tasks[f"sweep_{order}"])
        ],
        ignore_index=True,
    )
    random_sweeps = [pd.DataFrame(t["rows"]) for t in tasks["sweep_random"]]
    falloff, falls_at = mi.sweep_falloff(random_sweeps, tasks["baselines"], groups, seed, method)
    sweep = sweep.drop(columns="correct")
    labels = np.array(tasks["metrics"][0]["labels"])
    tables = {
        "pruning_intervals": mi.pruning_intervals(tasks["baselines"], groups, seed, method),
        "sweep_falloff": falloff,
        "vote_recall": mi.class_recall_intervals(
            labels, vote_preds, groups, class_names, seed, method
        ),
        "magnitude": per_feature(mag),
        "angles": per_feature(ang),
        "baselines": baselines,
        "sweep": sweep,
        **_class_tables(tasks["metrics"], labels, vote_preds, class_names),
    }
    summary = {
        **_summary(tasks, mag, ang, baselines, sweep, absolute_angles),
        "sweep_falls_off_at": falls_at,
        "n_test": int(len(labels)),
        "n_test_groups": int(len(np.unique(groups))),
    }
    return tables, summary


def _baselines(tasks: Tasks) -> pd.DataFrame:
    """Per member and pruning rule (none, magnitude, angle, random): pruned count, accuracy."""
    return pd.DataFrame(
        [
            {"member": m, "rule": rule,
             **{k: b[rule][k] for k in ("n_pruned", "accuracy", "threshold")}}
            for m, b in enumerate(tasks["baselines"])
            for rule in ("none", "magnitude", "angle", "random")
        ]
    )  # fmt: skip


def _class_tables(
    met: list[dict], labels: np.ndarray, vote_preds: np.ndarray, class_names: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """Per-class precision/recall/F1 (each member and the vote) and the confusion matrices."""
    n_classes = len(class_names)
    per_class = [
        metrics.per_class_report(labels, np.array(t["preds"]), class_names)
        .reset_index()
        .assign(member=m)
        for m, t in enumerate(met)
    ]
    per_class.append(
        metrics.per_class_report(labels, vote_preds, class_names)
        .reset_index()
        .assign(member="vote")
    )
    conf_mean = np.mean(
        [metrics.confusion(labels, np.array(t["preds"]), n_classes) for t in met], axis=0
    )
    return {
        "per_class": pd.concat(per_class, ignore_index=True),
        "confusion_vote": confusion_frame(
            metrics.confusion(labels, vote_preds, n_classes), class_names
        ),
        "confusion_members_mean": confusion_frame(conf_mean, class_names),
    }


def _summary(
    tasks: Tasks, mag: np.ndarray, ang: np.ndarray, baselines: pd.DataFrame,
    sweep: pd.DataFrame, absolute_angles: bool,
) -> dict[str, Any]:  # fmt: skip
    """The paper's headline figures over the members."""
    n_members = len(tasks["magnitude"])
    avg_mag, avg_ang = mag.mean(0), ang.mean(0)
    unpruned = baselines[baselines["rule"] == "none"].set_index("member")["accuracy"]
    rnd = sweep[sweep["order"] == "random"]
    per_member_kept = [
        pruning.smallest_kept_within(rnd[rnd["member"] == m], float(unpruned[m]), 0.01)
        for m in range(n_members)
    ]
    return {
        "n_members": n_members,
        "n_features": int(mag.shape[1]),
        "absolute_angles": absolute_angles,
        "magnitude_mean": float(avg_mag.mean()),
        "magnitude_std": float(avg_mag.std()),
        "features_within_magnitude": gedeon.within_mean_std(avg_mag),
        "angle_mean": float(avg_ang.mean()),
        "angle_std": float(avg_ang.std()),
        "features_within_angle": gedeon.within_mean_std(avg_ang),
        "angle_min_pair": float(min(t["min_pair"] for t in tasks["angles"])),
        "angle_max_pair": float(max(t["max_pair"] for t in tasks["angles"])),
        "pruned_by_rule": baselines.groupby("rule")["n_pruned"].mean().to_dict(),
        "accuracy_by_rule": baselines.groupby("rule")["accuracy"]
        .agg(["mean", "std"])
        .to_dict("index"),
        "unpruned_accuracy": float(unpruned.mean()),
        "smallest_kept_within_1pt": int(np.median(per_member_kept)),
        "smallest_kept_within_1pt_per_member": per_member_kept,
        # the paper thresholds the 15-model average; per-member counts are another measure
        "pruned_on_average": {
            "magnitude": mi.pruned_on_average(mag),
            "angle": mi.pruned_on_average(ang),
        },
    }


def sample_std(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """Sample std over models (0 for a single model)."""
    return a.std(axis=axis, ddof=1) if a.shape[axis] > 1 else np.zeros_like(a.mean(axis=axis))


def per_input_table(values: np.ndarray, features: Sequence[str]) -> pd.DataFrame:
    """(models, inputs) → mean ± std per input, inputs numbered from 1 as in the paper."""
    return pd.DataFrame(
        {
            "input": np.arange(1, len(features) + 1),
            "feature": list(features),
            "mean": values.mean(0),
            "std": sample_std(values),
        }
    )


def per_model_table(
    models: Sequence[tuple[int, int]], values: np.ndarray, features: Sequence[str]
) -> pd.DataFrame:
    """(models, inputs) → one row per (repeat, fold) model."""
    frame = pd.DataFrame(values, columns=list(features))
    frame.insert(0, "fold", [f for _, f in models])
    frame.insert(0, "repeat", [r for r, _ in models])
    return frame


def pair_rows(full: np.ndarray, mats: np.ndarray, features: Sequence[str]) -> pd.DataFrame:
    """(models,) full accuracies and (models, F, F) eliminated accuracies → pairs.csv rows.

    Inputs are numbered 1..F as in the paper; the "full" row (nothing eliminated) has i = j = 0
    and the "single" rows i == j. ``drop_vs_full`` > 0 means accuracy was lost.
    """
    rows = []

    def add(kind: str, i: int, j: int, acc: np.ndarray) -> None:
        rows.append(
            {
                "kind": kind,
                "i": i,
                "j": j,
                "name_i": features[i - 1] if i else "-",
                "name_j": features[j - 1] if j else "-",
                "acc_mean": float(acc.mean()),
                "acc_std": float(sample_std(acc)),
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


def descriptor_tables(
    infos: list[dict[str, Any]],
    tasks: Tasks,
    models: Sequence[tuple[int, int]],
    labels: np.ndarray,
    features: Sequence[str],
    n_classes: int,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Seed 000's descriptor baseline over its CV models: Table 1, angles, pairs, CV accuracy.

    Per model the Gedeon magnitudes sum to the number of outputs; the summary records how far
    any model strays from that invariant (a check on the analysis, not on the data).
    """
    cols = ["repeat", "fold", "n_train", "n_val", "val_acc"]
    extra = ["train_acc", "val_acc_best_epoch", "best_epoch", "seed"]
    folds = pd.DataFrame(infos)[cols + extra]
    mag = np.array([t["values"] for t in tasks["magnitude"]])
    ang = np.array([t["values"] for t in tasks["angles"]])
    full = np.array([p["full"] for p in tasks["pairs"]])
    mats = np.array([p["matrix"] for p in tasks["pairs"]])
    table1 = per_input_table(mag, features)
    pt = pair_rows(full, mats, features)
    tables = {
        "folds": folds,
        "magnitude_models": per_model_table(models, mag, features),
        "angles_models": per_model_table(models, ang, features),
        "table1": table1,
        "angles": per_input_table(ang, features),
        "pairs": pt,
    }
    acc = folds["val_acc"].to_numpy()
    deviation = np.abs(mag.sum(axis=1) - n_classes).max()
    only_pairs = pt[pt["kind"] == "pair"]
    worst = only_pairs.loc[only_pairs["drop_vs_full"].idxmax()]
    counts = np.bincount(np.asarray(labels), minlength=n_classes)
    facts = {
        "n_models": len(models),
        "cv_acc_mean": float(acc.mean()),
        "cv_acc_std": float(sample_std(acc)),
        "cv_acc_best_epoch_mean": float(folds["val_acc_best_epoch"].mean()),
        "chance_majority": float(counts.max() / counts.sum()),
        "chance_uniform": 1.0 / n_classes,
        "class_counts": counts.tolist(),
        "magnitude_sum": float(table1["mean"].sum()),
        "magnitude_sum_expected": n_classes,
        "magnitude_sum_max_dev": float(deviation),
        "magnitude_sum_ok": bool(deviation < 1e-6),
        "angle_mean": float(ang.mean()),
        "pairs_full_acc": float(full.mean()),
        "pairs_mean_drop": float(only_pairs["drop_vs_full"].mean()),
        "pairs_worst": {
            "inputs": [int(worst["i"]), int(worst["j"])],
            "names": [worst["name_i"], worst["name_j"]],
            "drop": float(worst["drop_vs_full"]),
        },
    }
    return tables, facts
