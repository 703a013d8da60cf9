"""Stored (member, class, depth) tree results → seed 001's fidelity, sweep and rule tables.

Pure: the ``rules`` stage reads each task's ``class_tree_result`` and each member's exported
test predictions, and writes what these return; the report reads those files. Fidelities come
from the tasks' stored test probabilities only (``fidelity_from_results``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fer_ray.analysis.rule_fidelity import fidelity_from_results
from fer_ray.analysis.rules import feature_columns

# Liu, Zhang, Yan and Tang, "Explainable facial expression recognition" (seed 001): Tab. 1
# (one-vs-rest agreement of each class's tree with the network, SFEW test set), its mean, and
# the network's test accuracy (sec. 3.1).
PAPER = {
    "per_class": {
        "angry": 0.9934,
        "disgust": 1.0,
        "fear": 0.9281,
        "happy": 0.9542,
        "neutral": 0.9934,
        "sad": 0.9673,
        "surprise": 0.9281,
    },
    "mean_per_class": 0.9664,
    "test_acc": 0.5490,
    "recall": {"surprise": 1.0, "disgust": 0.33, "neutral": 0.27},
}
SWEEP_COLUMNS = ("overall", "mean_per_class", "train_mean_per_class", "n_rules", "mean_rule_length")

Results = Mapping[tuple[int, int], Sequence[Mapping[str, Any]]]  # (member, depth) → per class


@dataclass(frozen=True)
class RuleTables:
    fidelity: pd.DataFrame  # one row per (member, depth)
    sweep: pd.DataFrame  # one row per depth: mean and std over members
    rules: pd.DataFrame  # one row per rule
    text: list[str]  # the rules at the reported depth, readable


def member_split(frame: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """(train features, train predictions, test features, test predictions) of one member's
    exported table: the trees learn the member's answers on its training split."""
    cols = feature_columns(frame.columns)
    tr, te = frame[frame["role"] == "train"], frame[frame["role"] == "test"]
    return (
        tr[cols].to_numpy(np.float32),
        tr["pred"].to_numpy(np.int64),
        te[cols].to_numpy(np.float32),
        te["pred"].to_numpy(np.int64),
    )


def fidelity_row(
    member: int, depth: int, results: Sequence[Mapping[str, Any]], test_preds: np.ndarray
) -> dict[str, Any]:
    """One (member, depth): combined and mean one-vs-rest test fidelity, rule counts."""
    fid = fidelity_from_results(results, test_preds)
    lengths = [len(r["conditions"]) for res in results for r in res["rules"]]
    return {
        "member": member,
        "depth": depth,
        "overall": fid["overall"],
        "mean_per_class": fid["mean_per_class"],
        "train_mean_per_class": float(np.mean([r["train_fidelity"] for r in results])),
        "n_rules": len(lengths),
        "mean_rule_length": float(np.mean(lengths)) if lengths else float("nan"),
        "n_test": fid["n"],
        **{f"fidelity_{k}": v for k, v in fid["per_class"].items()},
    }


def rule_rows(member: int, depth: int, res: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One class's rules at one depth, one row each."""
    return [
        {
            "member": member,
            "depth": depth,
            "class": res["class"],
            "rule": r["text"],
            "length": len(r["conditions"]),
            "n_support": r["n_support"],
            "support": r["support"],
            "precision": r["precision"],
        }
        for r in res["rules"]
    ]


def rule_text(member: int, res: Mapping[str, Any]) -> list[str]:
    """A class's heading (with its test fidelity) and its rules, indented."""
    head = f"member {member} · {res['class']} (test fidelity {100 * res['test_fidelity']:.2f} %)"
    return [head] + ([f"  {r['text']}" for r in res["rules"]] or ["  (no rule: never)"])


def rule_tables(results: Results, test_preds: Mapping[int, np.ndarray], depth: int) -> RuleTables:
    """Every stored result (in ``results``' order) → the stage's tables; ``depth`` is the one
    whose rules are written out as text."""
    fid_rows, rows, text = [], [], []
    for (m, d), per_class in results.items():
        fid_rows.append(fidelity_row(m, d, per_class, test_preds[m]))
        for res in per_class:
            rows += rule_rows(m, d, res)
            if d == depth:
                text += rule_text(m, res)
    fidelity = pd.DataFrame(fid_rows)
    return RuleTables(fidelity, sweep_table(fidelity), pd.DataFrame(rows), text)


def sweep_table(fidelity: pd.DataFrame) -> pd.DataFrame:
    """Per depth: mean and std over members of fidelity and rule size (std 0 for one member)."""
    g = fidelity.groupby("depth", sort=True)[list(SWEEP_COLUMNS)]
    mean, std = g.mean().add_suffix("_mean"), g.std(ddof=1).fillna(0.0).add_suffix("_std")
    return pd.concat([mean, std], axis=1).reset_index()


def _sd(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def at_depth(fidelity: pd.DataFrame, depth: int, class_names: Sequence[str]) -> dict[str, Any]:
    """The headline at the reported depth: mean (and std over members) of the fidelities."""
    at = fidelity[fidelity["depth"] == depth]
    return {
        "overall_mean": float(at["overall"].mean()),
        "overall_std": _sd(at["overall"]),
        "mean_per_class_mean": float(at["mean_per_class"].mean()),
        "mean_per_class_std": _sd(at["mean_per_class"]),
        "per_class": {n: float(at[f"fidelity_{n}"].mean()) for n in class_names},
        "n_rules_mean": float(at["n_rules"].mean()),
        "mean_rule_length": float(at["mean_rule_length"].mean()),
    }


def summary(
    fidelity: pd.DataFrame,
    members: list[int],
    depths: list[int],
    depth: int,
    class_names: list[str],
    n_features: int,
) -> dict[str, Any]:
    """What the report reads: the setting, the headline at ``depth`` and seed 001's figures."""
    at = fidelity[fidelity["depth"] == depth]
    return {
        "members": members,
        "depths": depths,
        "depth": depth,
        "class_names": class_names,
        "n_features": n_features,
        "fitted_on": "each member's training split, to the member's own predictions",
        "scored_on": "the shared test split",
        "n_test": int(at["n_test"].iloc[0]),
        "at_depth": at_depth(fidelity, depth, class_names),
        "paper": PAPER,
    }
