"""A small synthetic run directory with every stage's stored files, written in a test.

It mirrors what the stages write (same layout names, same columns) at a tiny size, so the
report's tests need neither Ray nor a stored run: each stage's files go in the stage's folder
under the names it declares (``tests.report.fake_files``). ``stages`` picks which stages "finished";
``intervals=False`` writes a run as the stages wrote it before they stored intervals (issue 12):
no pooled Table 2 columns, no ``intervals`` in the ensemble summary, no size curve, no pruning
intervals, fall-off table, recall intervals or model-averaged counts.

The interval numbers are fixed (not drawn), so a test can name the text they must print.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fer_ray.layout import (
    CONFIG,
    DONE,
    RUN_INFO,
    SUMMARY,
    WORK,
    Analyse,
    AuMaps,
    Clean,
    Descriptors,
    Ensemble,
    Grid,
    NewFaces,
    Prepare,
    Rules,
)
from tests.report import fake_seed_stages
from tests.report.fake_files import out, stage_dir

CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
ALL_STAGES = (Prepare.DIR, Grid.DIR, Ensemble.DIR, Analyse.DIR, Descriptors.DIR)
# the seed recipes' own stages; ``ARCHS`` stands for ``ensemble.backbones``' extra files
ARCHS = "ensemble+archs"
# ``TRAINING`` stands for seed 004's training choices (train.class_weights, lr, phases)
TRAINING = "ensemble+training"
# ``HOLDOUT_REPEATS`` stands for ensemble.holdout_repeats = 3 (``holdouts.csv``)
HOLDOUT_REPEATS = "ensemble+holdouts"
SEED_STAGES = (Rules.DIR, Clean.DIR, NewFaces.DIR, AuMaps.DIR, ARCHS, TRAINING)
EXTRAS = (ARCHS, TRAINING, HOLDOUT_REPEATS)  # not stage folders: more files in the ensemble's
NODE = "192.0.2.2"
NODE_ID = "a1b2c3d4e5f6" + "0" * 44  # Ray node ids are 56 hex digits
MEMBERS = 3


def config(selected_on_test: bool = False, descriptors: bool = True) -> dict[str, Any]:
    return {
        "name": "fake",
        "seed": 0,
        "data": {"name": "synthetic"},
        "model": {"backbone": "resnet18", "weights": "synthetic"},
        "train": {"epochs": 3},
        "grid": {"folds": 3, "lr": [0.005, 0.0005], "hidden": [50, 100]},
        "ensemble": {
            "members": MEMBERS,
            "phase2_lr": 0.001,
            "phase2_epochs": 2,
            "val_fraction": 0.25,
            "selection": "test" if selected_on_test else "val",
        },
        "descriptors": {"enabled": descriptors},
    }


def write_run(
    root: Path,
    stages: tuple[str, ...] = ALL_STAGES,
    *,
    selected_on_test: bool = False,
    fallbacks: int = 7,
    departures: bool = True,
    intervals: bool = True,
) -> Path:
    """Write a run directory at ``root`` where exactly ``stages`` have results; with
    ``departures``, ``run.json`` and the ensemble summary list departures from the paper; with
    ``intervals``, the files and keys the stages store since issue 12."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    cfg = config(selected_on_test, Descriptors.DIR in stages)
    (root / CONFIG).write_text(yaml.safe_dump(cfg, sort_keys=False))
    info = {
        "versions": {"python": "3.11.7", "ray": "2.60.0"},
        "git_commit": "abc123",
        "host": "vm",
        "command": "tune.py --config fake.yaml",
        "started": "2026-01-01 00:00:00",
    }
    if departures:
        info["departures"] = ["data: synthetic faces instead of SFEW 2.0"]
    _json(root / RUN_INFO, info)
    writers = {
        Prepare.DIR: lambda d: _prepare(d, rng, fallbacks),
        Grid.DIR: lambda d: _grid(d, rng, intervals),
        Ensemble.DIR: lambda d: _ensemble(d, rng, selected_on_test, departures, intervals),
        Analyse.DIR: lambda d: _analyse(d, rng, intervals),
        Descriptors.DIR: lambda d: _descriptors(d, rng),
        Rules.DIR: lambda d: fake_seed_stages.write_rules(d, rng),
        Clean.DIR: lambda d: fake_seed_stages.write_clean(d, rng),
        NewFaces.DIR: lambda d: fake_seed_stages.write_newfaces(d, rng),
        AuMaps.DIR: lambda d: fake_seed_stages.write_aumaps(d, rng),
    }
    ensemble = stage_dir(root, Ensemble.DIR)
    if ARCHS in stages:
        fake_seed_stages.write_architectures(ensemble, rng)
    for stage in (s for s in stages if s not in EXTRAS):
        d = stage_dir(root, stage)
        d.mkdir(parents=True, exist_ok=True)
        writers[stage](d)
        work = {"unit": [f"{stage} {i}" for i in range(2)], "node_id": NODE_ID, "node_ip": NODE}
        pd.DataFrame({**work, "seconds": [1.5, 2.5]}).to_csv(out(d, WORK), index=False)
        _json(out(d, DONE), {"fingerprint": "f" * 16, "seconds": 12.0})
    if TRAINING in stages:  # after the ensemble's summary, which it extends
        fake_seed_stages.write_training(ensemble, rng)
    if HOLDOUT_REPEATS in stages:
        HOLDOUTS.to_csv(out(ensemble, Ensemble.HOLDOUTS), index=False)
    return root


#: ``ensemble/holdouts.csv`` of three grouped test holdouts (fixed numbers, see the tests).
HOLDOUTS = pd.DataFrame(
    {
        "repeat": [0, 1, 2],
        "n_test": [7, 8, 6],
        "n_groups": [2, 2, 2],
        "member_mean": [0.40, 0.50, 0.30],
        "member_std": [0.02, 0.04, 0.03],
        "vote_acc": [0.50, 0.625, 0.50],
    }
)


def _json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def _prepare(d: Path, rng: np.random.Generator, fallbacks: int) -> None:
    n = 4 * len(CLASSES)
    labels = np.tile(np.arange(len(CLASSES)), 4)
    fb = np.zeros(n, bool)
    fb[:fallbacks] = True
    items = [f"synthetic:{i}" for i in range(n)]
    pd.DataFrame(
        {
            "item": items,
            "label": labels,
            "label_name": [CLASSES[i] for i in labels],
            "group": [f"s{i % 4:04d}" for i in range(n)],
            "fallback": fb,
            "node": NODE,
        }
    ).to_csv(out(d, Prepare.MANIFEST), index=False)
    summary = {
        "data": "synthetic",
        "n_images": n,
        "n_groups": 4,
        "class_names": list(CLASSES),
        "detector": "haar",
        "margin": 0.1,
        "size": 48,
        "fallbacks": fallbacks,
        "fallback_items": items[:fallbacks],
        "unreadable": 2,
        "unreadable_items": ["bad_0.png", "bad_1.png"],
    }
    _json(out(d, SUMMARY), summary)


#: Per grid cell (lr, hidden): pooled out-of-fold accuracy, low, high (fixed, see tests).
POOLED = {
    (0.005, 50): (0.2381, 0.1429, 0.3333),
    (0.005, 100): (0.2857, 0.1905, 0.3810),
    (0.0005, 50): (0.3333, 0.2381, 0.4286),
    (0.0005, 100): (0.1905, 0.0952, 0.2857),
}
GRID_ITEMS, GRID_GROUPS = 21, 3


def _grid(d: Path, rng: np.random.Generator, intervals: bool) -> None:
    cells = [(lr, h) for lr in (0.005, 0.0005) for h in (50, 100)]
    trials = pd.DataFrame(
        [
            {"lr": lr, "hidden": h, "fold": f, "val_acc": rng.uniform(0.1, 0.4), "node": NODE}
            for lr, h in cells
            for f in range(3)
        ]
    )
    trials.to_csv(out(d, Grid.TRIALS), index=False)
    curves = pd.DataFrame(
        [
            {"epoch": e, "val_acc": rng.uniform(0.1, 0.4), "lr": lr, "hidden": h, "fold": f}
            for lr, h in cells
            for f in range(3)
            for e in (1, 2, 3)
        ]
    )
    curves.to_csv(out(d, Grid.CURVES), index=False)
    t2 = trials.groupby(["lr", "hidden"])["val_acc"].agg(["mean", "std", "count"]).reset_index()
    if intervals:
        cells = list(zip(t2["lr"], t2["hidden"]))
        for i, col in enumerate(("pooled", "low", "high")):
            t2[col] = [POOLED[c][i] for c in cells]
        t2["n_items"], t2["n_groups"] = GRID_ITEMS, GRID_GROUPS
        _oof(d, cells)
    t2.to_csv(d / Grid.TABLE2, index=False)
    best = t2.loc[t2["mean"].idxmax()]
    chosen = {
        "lr": float(best["lr"]),
        "hidden": int(best["hidden"]),
        "mean_val_acc": float(best["mean"]),
        "std_val_acc": float(best["std"]),
    }
    if intervals:  # a search beside the grid (search.algorithm=optuna, compare_grid)
        grid_choice = {**chosen, "pooled": 0.3, "low": 0.2, "high": 0.4}
        chosen = {"lr": 0.002, "hidden": 80, "mean_val_acc": 0.35, "std_val_acc": 0.05,
                  "pooled": 0.34, "low": 0.25, "high": 0.44, "algorithm": "optuna",
                  "other": {"grid": grid_choice}}  # fmt: skip
        _search(d, chosen)
    _json(out(d, Grid.CHOSEN), chosen)
    features = {
        "weights": "synthetic",
        "recipe": "none: no augmentation",
        "feature_cache": True,
        "feature_cache_reason": "frozen trunk, no random augmentation",
        "n_test": 7,
        "test_holdout": "grouped holdout of about 0.2",
        "test_fraction_realised": 0.25,
        "fold_sizes": [7, 7, 7],
    }
    _json(out(d, Grid.FEATURES), features)


def _search(d: Path, best: dict[str, Any]) -> None:
    rows = [
        (0, 0.001, 120, 3, 0.31, True), (1, 0.004, 60, 1, 0.2, False),
        (2, 0.002, 80, 3, 0.35, True), (3, 0.0008, 200, 3, 0.28, True),
    ]  # fmt: skip
    t = pd.DataFrame(
        rows, columns=["order", "lr", "hidden", "folds_done", "fold_mean_val_acc", "complete"]
    )
    t.assign(trial=[f"t{i}" for i in t["order"]]).to_csv(out(d, Grid.SEARCH_TRIALS), index=False)
    h = t[["order", "lr", "hidden", "fold_mean_val_acc", "complete"]].copy()
    h["best_so_far"] = h["fold_mean_val_acc"].where(h["complete"]).cummax().ffill()
    h.to_csv(out(d, Grid.SEARCH_HISTORY), index=False)
    imp = pd.DataFrame(
        {"parameter": ["lr", "hidden"], "importance": [0.7, 0.3], "method": "fanova"}
    )
    imp.to_csv(out(d, Grid.SEARCH_IMPORTANCE), index=False)
    _json(
        out(d, Grid.SEARCH_SUMMARY),
        {"algorithm": "optuna", "options": {"n_startup_trials": 2}, "trials": 4,
         "scheduler": "async_hyperband", "scheduler_options": {}, "importance": "fanova",
         "study": Grid.SEARCH_STUDY, "concurrent": 1, "reproducible": True,
         "best": best, "space": {"lr": [0.0005, 0.005], "hidden": [50, 300]}},
    )  # fmt: skip


def _oof(d: Path, cells: list[tuple[float, int]]) -> None:
    """Per cell and validation image: the last epoch's prediction (``grid/oof.csv``)."""
    items = np.arange(GRID_ITEMS)
    rows = [
        {"lr": lr, "hidden": h, "fold": i % 3, "item": i, "group": f"s{i % GRID_GROUPS:04d}",
         "label": i % len(CLASSES), "pred": (i * (j + 1)) % len(CLASSES)}
        for j, (lr, h) in enumerate(cells)
        for i in items
    ]  # fmt: skip
    oof = pd.DataFrame(rows)
    oof["correct"] = oof["pred"] == oof["label"]
    oof.to_csv(out(d, Grid.OOF), index=False)


def _interval(estimate: float, low: float, high: float) -> dict[str, Any]:
    return {
        "estimate": estimate, "low": low, "high": high, "level": 0.95, "n_items": 7,
        "n_groups": 2, "unit": "group", "n_boot": 2000, "resolution": 1 / 7,
    }  # fmt: skip


#: What the ensemble stage stores under ``intervals`` (fixed numbers, 7 images of 2 subjects).
ENSEMBLE_INTERVALS = {
    "n_images": 7,
    "n_groups": 2,
    "resolution": 1 / 7,
    "member_mean": _interval(0.3810, 0.2381, 0.5238),
    "vote": _interval(0.5, 0.2857, 0.7143),
    "best_member_by_val": 1,
    "vote_minus_best_member": _interval(0.1429, -0.1429, 0.4286),
    "vote_minus_member_mean": _interval(0.1190, -0.0476, 0.2857),
    "mcnemar_vote_vs_best_member": {"b": 2, "c": 1, "n_discordant": 3, "p_value": 1.0},
}


ENSEMBLE_DEPARTURE = {
    "what": "weights",
    "ours": "`synthetic` pretraining",
    "paper": "VGG-Face",
    "why": "no hub here",
}


def _ensemble(
    d: Path, rng: np.random.Generator, selected_on_test: bool, departures: bool, intervals: bool
) -> None:
    acc = rng.uniform(0.2, 0.5, MEMBERS)
    val = rng.uniform(0.2, 0.5, MEMBERS)
    members = pd.DataFrame(
        {"member": range(MEMBERS), "seed": range(MEMBERS), "test_acc": acc, "val_acc": val,
         "node": NODE}
    )  # fmt: skip
    members.to_csv(out(d, Ensemble.MEMBERS), index=False)
    curves = pd.DataFrame(
        [
            {
                "step": s,
                "phase": 1 if s <= 3 else 2,
                "train_acc": rng.uniform(0.1, 0.6),
                "val_acc": rng.uniform(0.1, 0.4),
                "member": m,
            }
            for m in range(MEMBERS)
            for s in range(1, 6)
        ]
    )
    curves.to_csv(out(d, Ensemble.CURVES), index=False)
    test_idx = np.arange(0, 28, 4)
    for m in range(MEMBERS):
        member = out(d, Ensemble.MEMBERS_DIR, Ensemble.member_dir(m), Ensemble.MEMBER)
        np.savez(member, test_idx=test_idx)
    summary = {
        "members": MEMBERS,
        "selection": "test" if selected_on_test else "val",
        "selected_on_test": selected_on_test,
        "test_acc_mean": float(acc.mean()),
        "test_acc_std": float(acc.std(ddof=1)),
        "vote_acc": 0.5,
        "n_test": len(test_idx),
        "chance_uniform": 1 / 7,
        "chance_majority": 1 / 7,
    }
    if departures:
        summary["departures"] = [ENSEMBLE_DEPARTURE]
    if intervals:
        summary["intervals"] = ENSEMBLE_INTERVALS
        SIZE_CURVE.to_csv(out(d, Ensemble.SIZE_CURVE), index=False)
    _json(out(d, SUMMARY), summary)


#: ``ensemble/size_curve.csv``: the soft vote of k = 1..3 members.
SIZE_CURVE = pd.DataFrame(
    {
        "k": [1, 2, 3],
        "accuracy": [0.3810, 0.4524, 0.5],
        "accuracy_std": [0.0673, 0.0337, 0.0],
        "nll": [1.9012, 1.8123, 1.7755],
        "nll_std": [0.0211, 0.0105, 0.0],
        "ece": [0.1834, 0.1210, 0.0932],
        "ece_std": [0.0402, 0.0201, 0.0],
        "n_ensembles": [3, 3, 1],
        "exhaustive": [True, True, True],
    }
)
#: ``analyse/pruning_intervals.csv``: per rule, the member mean and the paired difference.
PRUNING_INTERVALS = pd.DataFrame(
    {
        "rule": ["none", "magnitude", "angle", "random"],
        "accuracy": [0.3810, 0.3333, 0.3810, 0.3571],
        "low": [0.2381, 0.1905, 0.2381, 0.2143],
        "high": [0.5238, 0.4762, 0.5238, 0.5000],
        "diff_vs_none": [0.0, -0.0476, 0.0, -0.0238],
        "diff_low": [0.0, -0.0952, 0.0, -0.0714],
        "diff_high": [0.0, -0.0119, 0.0, 0.0238],
    }
)
#: ``analyse/vote_recall.csv``: the vote's recall per class (one test image each, two for happy).
VOTE_RECALL = pd.DataFrame(
    {
        "class": CLASSES,
        "recall": [1.0, 0.0, 1.0, 0.5, 0.0, 0.0, 1.0],
        "low": [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        "high": [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0],
        "n": [1, 1, 1, 2, 1, 1, 1],
    }
)
#: ``analyse/sweep_falloff.csv`` (16 features): significantly below unpruned at 8 and 2 kept,
#: not at 1 (so the fixed-sequence rule finds no fall-off); ``p_holm``: Holm over the 3 pruned.
SWEEP_FALLOFF = pd.DataFrame(
    {
        "n_kept": [16, 8, 2, 1],
        "ratio": [0.0, 0.5, 0.9, 0.95],
        "accuracy": [0.3810, 0.3095, 0.2143, 0.2619],
        "diff_vs_none": [0.0, -0.0714, -0.1667, -0.1190],
        "diff_low": [0.0, -0.1190, -0.2619, -0.2381],
        "diff_high": [0.0, -0.0238, -0.0714, 0.0119],
        "significant": [False, True, True, False],
        "p_one_sided": [1.0, 0.01, 0.001, 0.06],
        "p_holm": [float("nan"), 0.02, 0.003, 0.06],
    }
)


def _per_model(values: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(values, columns=[f"m{m:02d}" for m in range(values.shape[1])])
    return df.rename_axis("feature").reset_index()


def _analyse(d: Path, rng: np.random.Generator, intervals: bool) -> None:
    n = 16
    _per_model(rng.uniform(0.05, 0.08, (n, MEMBERS))).to_csv(out(d, Analyse.MAGNITUDE), index=False)
    _per_model(rng.uniform(40, 50, (n, MEMBERS))).to_csv(out(d, Analyse.ANGLES), index=False)
    rules = ("none", "magnitude", "angle", "random")
    pd.DataFrame(
        [
            {"member": m, "rule": r, "n_pruned": 3 * i, "accuracy": rng.uniform(0.2, 0.5)}
            for m in range(MEMBERS)
            for i, r in enumerate(rules)
        ]
    ).to_csv(out(d, Analyse.BASELINES), index=False)
    pd.DataFrame(
        [
            {"ratio": r, "draw": 0, "accuracy": rng.uniform(0.1, 0.5), "member": m, "order": o}
            for o in ("random", "magnitude")
            for m in range(MEMBERS)
            for r in (0.0, 0.5, 0.9, 0.95)
        ]
    ).to_csv(out(d, Analyse.SWEEP), index=False)
    rows = [
        {"class": c, "precision": 0.3, "recall": 0.4, "f1": 0.35, "support": 1, "member": m}
        for m in [*map(str, range(MEMBERS)), "vote"]
        for c in CLASSES
    ]
    pd.DataFrame(rows).to_csv(out(d, Analyse.PER_CLASS), index=False)
    conf = pd.DataFrame(np.eye(len(CLASSES), dtype=int), index=list(CLASSES), columns=CLASSES)
    conf.rename_axis("true").to_csv(out(d, Analyse.CONFUSION_VOTE))
    summary = {
        "n_members": MEMBERS,
        "n_features": n,
        "absolute_angles": True,
        "magnitude_mean": 0.0625,
        "magnitude_std": 0.001,
        "features_within_magnitude": 11,
        "angle_mean": 45.0,
        "angle_std": 1.0,
        "features_within_angle": 10,
        "angle_min_pair": 30.0,
        "angle_max_pair": 60.0,
        "pruned_by_rule": {"angle": 3.0, "magnitude": 2.5, "none": 0.0, "random": 2.5},
        "smallest_kept_within_1pt": 5,
    }
    if intervals:
        summary.update(
            pruned_on_average={"magnitude": 4, "angle": 2},
            sweep_falls_off_at=8,
            n_test=7,
            n_test_groups=2,
        )
        PRUNING_INTERVALS.to_csv(out(d, Analyse.PRUNING_INTERVALS), index=False)
        SWEEP_FALLOFF.to_csv(out(d, Analyse.SWEEP_FALLOFF), index=False)
        VOTE_RECALL.to_csv(out(d, Analyse.VOTE_RECALL), index=False)
    _json(out(d, SUMMARY), summary)


FEATURES = tuple(f"{k}{i}" for k in ("lpq", "phog") for i in range(1, 6))
PAPER_TABLE1 = (0.6939, 0.7644, 0.7312, 0.7271, 0.6381, 0.6700, 0.6923, 0.7060, 0.6674, 0.7096)


def _descriptors(d: Path, rng: np.random.Generator) -> None:
    nf = len(FEATURES)
    inputs = np.arange(1, nf + 1)
    t1 = pd.DataFrame({"input": inputs, "feature": FEATURES, "mean": np.full(nf, 0.7), "std": 0.01})
    t1.to_csv(out(d, Descriptors.TABLE1), index=False)
    ang = pd.DataFrame(
        {"input": inputs, "feature": FEATURES, "mean": rng.uniform(40, 50, nf), "std": 0.5}
    )
    ang.to_csv(out(d, Descriptors.ANGLES), index=False)
    pairs = [("full", 0, 0, 0.3)]
    pairs += [("single", i, i, 0.29) for i in inputs]
    pairs += [("pair", i, j, 0.28) for i in inputs for j in inputs if i < j]
    pd.DataFrame(
        [
            {
                "kind": k,
                "i": i,
                "j": j,
                "name_i": FEATURES[i - 1] if i else "-",
                "name_j": FEATURES[j - 1] if j else "-",
                "acc_mean": a,
                "acc_std": 0.01,
                "drop_vs_full": 0.3 - a,
            }
            for k, i, j, a in pairs
        ]
    ).to_csv(out(d, Descriptors.PAIRS), index=False)
    folds = pd.DataFrame(
        [
            {
                "repeat": 0,
                "fold": f,
                "n_train": 40,
                "n_val": 10,
                "val_acc": 0.3,
                "node_id": NODE_ID,
                "node_ip": NODE,
            }
            for f in range(2)
        ]
    )
    folds.to_csv(out(d, Descriptors.FOLDS), index=False)
    summary = {
        "sheet": "/data/SFEW.xlsx",
        "grouped": False,
        "grouping_note": "rows as groups: NOT GROUPED BY MOVIE",
        "n_rows": 50,
        "n_groups": 50,
        "topology": "10-50-7",
        "folds": 2,
        "repeats": 1,
        "lr": 0.01,
        "epochs": 30,
        "batch_size": 32,
        "absolute_angles": True,
        "n_models": 2,
        "cv_acc_mean": 0.3,
        "cv_acc_std": 0.0,
        "cv_acc_best_epoch_mean": 0.35,
        "chance_majority": 0.2,
        "chance_uniform": 1 / 7,
        "magnitude_sum": 7.0,
        "pairs_full_acc": 0.3,
        "pairs_mean_drop": 0.02,
        "pairs_worst": {"inputs": [1, 2], "names": ["lpq1", "lpq2"], "drop": 0.02},
        "paper_test_acc": 0.26857,
        "paper_table1": list(PAPER_TABLE1),
    }
    _json(out(d, SUMMARY), summary)
