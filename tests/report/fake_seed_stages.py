"""Hand-made results of the seed stages (rules, clean, newfaces, aumaps) and of
``ensemble.backbones``, in the files and columns those stages write, so their report sections
can be tested without training; the file names are those the stages declare
(``tests.report.fake_files.out``).

Each ``write_<stage>(run_dir / "<stage>", rng)`` fills one stage folder
(``tests/report/fake_run.write_run`` calls them when asked for those stages).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_ray.layout import SUMMARY, AuMaps, Clean, Ensemble, NewFaces, Rules
from tests.report.fake_files import out

# what the stages store as "paper" (fer_ray.analysis.rule_tables.PAPER, fer_ray.recipes.clean.stage.PAPER);
# copied, so the report tests need no Ray
RULES_PAPER = {
    "per_class": {"angry": 0.9934, "disgust": 1.0, "fear": 0.9281, "happy": 0.9542,
                  "neutral": 0.9934, "sad": 0.9673, "surprise": 0.9281},
    "mean_per_class": 0.9664,
    "test_acc": 0.5490,
    "recall": {"surprise": 1.0, "disgust": 0.33, "neutral": 0.27},
}  # fmt: skip
CLEAN_PAPER = {
    "error_original": 0.4062,
    "error_original_fine_tuned": 0.3670,
    "error_cleaned": 0.3847,
    "error_cleaned_fine_tuned": 0.3003,
}

CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
MEMBERS, DEPTHS, DEPTH = (0, 1), (1, 2, 3), 2


def _json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def write_rules(d: Path, rng: np.random.Generator) -> None:
    d.mkdir(parents=True, exist_ok=True)
    rows, rules, text = [], [], []
    for m in MEMBERS:
        for depth in DEPTHS:
            per = {f"fidelity_{c}": float(rng.uniform(0.85, 1.0)) for c in CLASSES}
            rows.append(
                {"member": m, "depth": depth, "overall": float(rng.uniform(0.4, 0.8)),
                 "mean_per_class": float(np.mean(list(per.values()))),
                 "train_mean_per_class": 0.95, "n_rules": 3 * depth,
                 "mean_rule_length": 0.9 * depth, "n_test": 28, **per}
            )  # fmt: skip
            for c in CLASSES[:3]:
                rule = " AND ".join(f"f{7 * k + depth} <= 0.5" for k in range(depth))
                rules.append({"member": m, "depth": depth, "class": c,
                              "rule": f"IF {rule} THEN {c}", "length": depth, "n_support": 9,
                              "support": 0.1, "precision": 0.9})  # fmt: skip
                if depth == DEPTH:
                    text += [f"member {m} · {c} (test fidelity 92.86 %)", f"  IF {rule} THEN {c}"]
    fidelity = pd.DataFrame(rows)
    fidelity.to_csv(out(d, Rules.FIDELITY), index=False)
    cols = ["overall", "mean_per_class", "train_mean_per_class", "n_rules", "mean_rule_length"]
    g = fidelity.groupby("depth")[cols]
    sweep = pd.concat([g.mean().add_suffix("_mean"), g.std(ddof=1).add_suffix("_std")], axis=1)
    sweep.reset_index().to_csv(out(d, Rules.SWEEP), index=False)
    pd.DataFrame(rules).to_csv(out(d, Rules.RULES), index=False)
    out(d, Rules.RULES_TEXT).write_text("\n".join(text) + "\n")
    at = fidelity[fidelity["depth"] == DEPTH]
    _json(
        out(d, SUMMARY),
        {
            "members": list(MEMBERS), "depths": list(DEPTHS), "depth": DEPTH,
            "class_names": CLASSES, "n_features": 512,
            "fitted_on": "each member's training split, to the member's own predictions",
            "scored_on": "the shared test split", "n_test": 28,
            "at_depth": {
                "overall_mean": float(at["overall"].mean()),
                "overall_std": float(at["overall"].std(ddof=1)),
                "mean_per_class_mean": float(at["mean_per_class"].mean()),
                "mean_per_class_std": float(at["mean_per_class"].std(ddof=1)),
                "per_class": {c: float(at[f"fidelity_{c}"].mean()) for c in CLASSES},
                "n_rules_mean": 6.0, "mean_rule_length": 1.8,
            },
            "paper": RULES_PAPER,
        },
    )  # fmt: skip


def _iv(estimate: float, low: float, high: float, n: int = 28, groups: int = 4) -> dict:
    return {"estimate": estimate, "low": low, "high": high, "level": 0.95, "n_items": n,
            "n_groups": groups, "unit": "group", "n_boot": 2000, "resolution": 1 / n}  # fmt: skip


def write_clean(d: Path, rng: np.random.Generator) -> None:
    d.mkdir(parents=True, exist_ok=True)
    n_pool, k = 60, 6
    loss = rng.gamma(2.0, 0.6, n_pool)
    flipped = np.zeros(n_pool, bool)
    flipped[rng.choice(n_pool, 6, replace=False)] = True
    loss[flipped] += 1.0
    flagged = np.zeros(n_pool, bool)
    flagged[np.argsort(-loss, kind="stable")[:k]] = True
    label = rng.integers(0, 7, n_pool)
    pd.DataFrame(
        {"item": np.arange(n_pool), "fold": np.arange(n_pool) % 3, "label": label,
         "label_name": np.asarray(CLASSES)[label], "pred": (label + 1) % 7, "loss": loss,
         "p_label": np.exp(-loss), "flagged": flagged, "flipped": flipped,
         "clean_label_name": np.asarray(CLASSES)[label]}
    ).to_csv(out(d, Clean.LOSSES), index=False)  # fmt: skip
    top = np.argsort(-loss, kind="stable")[:8]
    pd.DataFrame(
        {"rank": np.arange(1, 9), "index": top, "true": label[top],
         "true_name": np.asarray(CLASSES)[label[top]], "predicted": (label[top] + 1) % 7,
         "predicted_name": np.asarray(CLASSES)[(label[top] + 1) % 7], "loss": loss[top],
         "p_true": np.exp(-loss[top]), "p_predicted": 0.5,
         "title": [f"happy/sad / {v:.2f} / {np.exp(-v):.2f}" for v in loss[top]],
         "flipped": flipped[top], "clean_label_name": "sad"}
    ).to_csv(out(d, Clean.GALLERY), index=False)  # fmt: skip
    np.savez(
        out(d, Clean.GALLERY_CROPS), crops=rng.integers(0, 255, (8, 48, 48, 3), dtype=np.uint8)
    )
    variants = {"none": (0.50, 0.40, 0.60, 0.0), "flagged": (0.54, 0.44, 0.64, 0.04),
                "oracle": (0.57, 0.46, 0.68, 0.07)}  # fmt: skip
    pd.DataFrame(
        [{"variant": v, "dropped": 0 if v == "none" else 6, "vote_acc": a, "vote_low": lo,
          "vote_high": hi, "vote_minus_none": dd, "diff_low": dd - 0.04, "diff_high": dd + 0.04,
          "member_mean": a - 0.02, "member_minus_none": dd} for v, (a, lo, hi, dd) in variants.items()]
    ).to_csv(out(d, Clean.VARIANTS), index=False)  # fmt: skip
    tp = int((flagged & flipped).sum())
    _json(
        out(d, SUMMARY),
        {
            "n_pool": n_pool, "folds": 3, "chosen": {"lr": 0.001, "hidden": 100}, "epochs": 8,
            "flag_fraction": 0.1, "n_flagged": k, "oof_acc": 0.3, "class_names": CLASSES,
            "label_noise": 0.1, "paper": CLEAN_PAPER,
            "flags": {"precision": tp / k, "recall": tp / 6, "f1": tp / 6, "n_flagged": k,
                      "n_flipped": 6, "n_true_positive": tp, "base_rate": 0.1, "auroc": 0.8,
                      "mean_loss_flipped": 2.2, "mean_loss_clean": 1.2},
            "retrain": {
                "members": 2, "n_test": 28, "n_test_groups": 4,
                "variants": {
                    **{v: {"vote": _iv(a, lo, hi), "vote_minus_none": _iv(dd, dd - 0.04, dd + 0.04),
                           "member_mean": _iv(a, lo, hi), "member_minus_none": _iv(dd, 0, 0.1),
                           "dropped": 0 if v == "none" else 6}
                       for v, (a, lo, hi, dd) in variants.items()},
                    "flagged_minus_oracle": _iv(-0.03, -0.07, 0.01),
                },
            },
        },
    )  # fmt: skip


def write_newfaces(d: Path, rng: np.random.Generator) -> None:
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for train, test, acc in (("A", "A", 0.8), ("A", "B", 0.35), ("A", "B:all", 0.4),
                             ("B", "A", 0.3), ("B", "B", 0.9), ("B", "A:all", 0.33)):  # fmt: skip
        rows.append({"train": train, "test": test,
                     "kind": "within" if train == test else "cross", "members": 2,
                     "member_mean": acc, "member_std": 0.01, "vote_acc": acc, "low": acc - 0.1,
                     "high": acc + 0.1, "n_items": 20, "n_groups": 2, "unit": "group"})  # fmt: skip
    pd.DataFrame(rows).to_csv(out(d, NewFaces.MATRIX), index=False)
    pd.DataFrame({"train": ["A"], "member": [0]}).to_csv(out(d, NewFaces.MEMBERS), index=False)
    dom = {"describe": "x", "n_images": 40, "n_groups": 6, "n_test": 20, "n_test_groups": 2,
           "dropped_classes": ["contempt"], "dropped_images": 3}  # fmt: skip
    summary = {"domains": [{**dom, "name": "A"}, {**dom, "name": "B"}], "classes": CLASSES[:3],
               "members": 2, "backbone": "alexnet", "lr": 0.001, "hidden": 8, "epochs": 3,
               "recipe": "seed002", "weights": "none", "paper_new_faces": 0.347,
               "paper_test": 0.9}  # fmt: skip
    _json(out(d, SUMMARY), summary)


def write_aumaps(d: Path, rng: np.random.Generator) -> None:
    d.mkdir(parents=True, exist_ok=True)
    maps = pd.DataFrame(
        {"member": [0, 0, 1, 1], "au": ["AU1", "AU12", "AU1", "AU12"], "map": [5, 7, 5, 9],
         "distance": [3.0, 2.0, 2.5, 1.0], "n_with": [10, 8, 10, 8], "n_without": [20, 22, 20, 22],
         "agreement": [0.6, 0.2, 0.4, 0.0], "shuffled_mean": [0.1, 0.1, 0.2, 0.1],
         "shuffled_sd": [0.05] * 4, "p_value": [0.01, 0.2, 0.03, 0.9]}
    )  # fmt: skip
    maps.to_csv(out(d, AuMaps.MAPS), index=False)
    dist = pd.DataFrame({"member": 0, "au": "AU1", "map": range(8), "distance": np.arange(8.0)})
    dist.to_csv(out(d, AuMaps.DISTANCES), index=False)
    panel = out(d, AuMaps.panel(0, "relu3", 5))
    cv2.imwrite(str(panel), rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    summary = {"backbone": "small_cnn", "unit": "relu3", "paper_layer": "conv3 (relu3)",
               "members": 2, "images": "train", "n_images": {"0": 30, "1": 30}, "n_maps": 256,
               "receptive_field": {"size": 32, "stride": 4, "offset": -14}, "input_size": 96,
               "top_k": 9, "n": 9, "au_source": "synthetic", "aus": ["AU1", "AU12"],
               "panels": "best", "region_check": True, "rule": "centre", "shuffles": 100,
               "agreement_mean": 0.3, "shuffled_mean": 0.125, "n_pairs": 4, "n_above": 3,
               "n_significant": 2}  # fmt: skip
    _json(out(d, SUMMARY), summary)


def write_architectures(d: Path, rng: np.random.Generator) -> None:
    """``ensemble.backbones``: what the ensemble stage adds beside its own files."""
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {"backbone": ["resnet18", "alexnet"], "members": [3, 3],
         "test_acc_mean": [0.6, 0.5], "test_acc_std": [0.02, 0.03],
         "member_low": [0.5, 0.4], "member_high": [0.7, 0.6],
         "vote_acc": [0.62, 0.48], "vote_low": [0.52, 0.38], "vote_high": [0.72, 0.58]}
    ).to_csv(out(d, Ensemble.ARCHS), index=False)  # fmt: skip
    pd.DataFrame(
        [{"backbone": b, "class_index": k, "recall": float(rng.uniform(0.2, 0.9))}
         for b in ("resnet18", "alexnet") for k in range(len(CLASSES))]
    ).to_csv(out(d, Ensemble.ARCH_RECALL), index=False)  # fmt: skip


def write_training(d: Path, rng: np.random.Generator) -> None:
    """Seed 004's training choices: the ``training`` entry of an existing ensemble summary
    (seed004 weights, lr from the LR range test, head then discriminative tail) and the LR
    finder's files."""
    lrs = 1e-7 * (10.0 / 1e-7) ** (np.arange(60) / 99)
    loss = 1.9 - 0.8 / (1 + np.exp(-(np.log10(lrs) + 3.5) * 3)) + rng.normal(0, 0.02, 60)
    loss[-4:] = [1.4, 1.9, 3.1, 6.5]  # diverging
    smooth = pd.Series(loss).ewm(alpha=0.02).mean().to_numpy()
    finder = {"lrs": lrs.tolist(), "losses": loss.tolist(), "smoothed": smooth.tolist(),
              "suggested_lr": 2.3e-4, "suggestion": "min_div10", "steepest_lr": 3.1e-4,
              "min_loss_lr": 2.3e-3, "diverged": True}  # fmt: skip
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"lr": lrs, "loss": loss, "smoothed": smooth}).to_csv(
        out(d, Ensemble.LR_FINDER), index=False
    )
    out(d, Ensemble.LR_FINDER_JSON).write_text(json.dumps(finder))
    path = out(d, SUMMARY)
    if not path.is_file():  # the entry belongs to the ensemble's summary
        return
    weights = {"angry": 0.1, "disgust": 0.2, "fear": 0.3, "happy": 0.05, "neutral": 0.15,
               "sad": 0.2, "surprise": 0.2}  # fmt: skip
    head = ("head.fc1.weight", "head.fc1.bias", "head.fc2.weight", "head.fc2.bias")
    training = {
        "default": False,
        "custom_phases": True,
        "class_weights": {"rule": "list", "member_0": weights},
        "lr": {"source": "auto", "value": 2.3e-4, "rule": "min_div10", "grid_lr": 0.005,
               "diverged": True},  # fmt: skip
        "phases": [
            {"epochs": 3, "lr": 2.3e-4, "train": "head", "lr_from": "x1",
             "groups": [{"layers": "head", "multiplier": 1.0, "lr": 2.3e-4,
                         "n_tensors": len(head)}]},
            {"epochs": 2, "lr": 1e-4, "train": "tail", "lr_low": 0.1, "lr_from": "1e-4",
             "groups": [{"layers": "blocks.0", "multiplier": 0.1, "lr": 1e-5, "n_tensors": 6},
                        {"layers": "head", "multiplier": 1.0, "lr": 1e-4, "n_tensors": 4}]},
        ],
    }  # fmt: skip
    summary = json.loads(path.read_text())
    path.write_text(json.dumps({**summary, "training": training}, indent=2))
