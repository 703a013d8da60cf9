"""rules: seed 001's explanation mechanism, one Ray task per (member, class, depth).

Seed 001 fitted, per class, a depth-limited one-vs-rest decision tree to the 512 pooled features
so that it mimics the network's answer ("Angry" vs "non-Angry"), read rules off the paths, and
reported the trees' agreement with the network (fidelity: 96.64 %, the mean of the seven
one-vs-rest accuracies, Tab. 1). Here each member's exported features (``export`` stage) are
put into the object store once; every (class, depth) tree is one task
(``fer_ray.analysis.rule_fidelity.class_tree_result``: fitted on the member's training split
to the MEMBER's predictions, scored on the test split). Each task's result is written to
``rules/tasks/`` as it arrives, so an interrupted stage redoes only the missing trees. The
fidelities are assembled from those stored results alone (``fidelity_from_results``): per
class, their mean (seed 001's measure) and the combined multi-class agreement, which seed 001
does not report and which is not flattered by rare classes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import ray

from fer_ray import files, layout
from fer_ray.analysis.rule_fidelity import class_tree_result, fidelity_from_results
from fer_ray.config import Config
from fer_ray.errors import StageError
from fer_ray.layout import Prepare, Rules, RunPaths
from fer_ray.seeds import member_seed
from fer_ray.stages.cluster import node_info
from fer_ray.stages.common import drain, write_work
from fer_ray.stages.export import features_path, read_table

if TYPE_CHECKING:
    from fer_ray.stages.context import StageContext

# Seed 001 (Liu): Tab. 1 (one-vs-rest agreement of each class's tree with the network, SFEW
# test set), its mean, and the network's test accuracy (sec. 3.1).
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


@ray.remote
def _tree_task(
    member_data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    class_index: int,
    depth: int,
    seed: int,
    class_names: list[str],
) -> dict[str, Any]:
    t0 = time.time()
    x_tr, p_tr, x_te, p_te = member_data
    out = class_tree_result(x_tr, p_tr, x_te, p_te, class_index, depth, seed, class_names)
    return {**out, **node_info(), "seconds": round(time.time() - t0, 3)}


def task_file(tasks_dir: Path, member: int, class_index: int, depth: int) -> Path:
    return tasks_dir / f"m{member:02d}_c{class_index}_d{depth:02d}.json"


def member_split_data(frame: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """(train features, train predictions, test features, test predictions) of one member."""
    cols = [c for c in frame.columns if c.startswith("f") and c[1:].isdigit()]
    tr, te = frame[frame["role"] == "train"], frame[frame["role"] == "test"]
    return (
        tr[cols].to_numpy(np.float32),
        tr["pred"].to_numpy(np.int64),
        te[cols].to_numpy(np.float32),
        te["pred"].to_numpy(np.int64),
    )


def chosen_members(cfg: Config, paths: RunPaths) -> list[int]:
    stored = [int(d.name.split("_")[1]) for d in paths.member_dirs()]
    wanted = stored if cfg.rules.members is None else sorted(set(cfg.rules.members))
    missing = [m for m in wanted if m not in stored]
    if missing:
        raise StageError(f"rules.members: members {missing} have no stored results (have {stored})")
    return wanted


def stage(ctx: StageContext) -> None:
    run(ctx.cfg, ctx.paths)


def run(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    out = paths.stage(Rules.DIR)
    tasks_dir = out / layout.TASKS
    tasks_dir.mkdir(parents=True, exist_ok=True)
    names = files.read_json(paths.stage(Prepare.DIR) / layout.SUMMARY)["class_names"]
    members, depths = chosen_members(cfg, paths), sorted(set(cfg.rules.depths))
    task = _tree_task.options(num_cpus=cfg.resources.cpus_per_task, scheduling_strategy="SPREAD")
    pending: dict[Any, Path] = {}
    for m in members:
        todo = [
            (c, d)
            for d in depths
            for c in range(len(names))
            if not task_file(tasks_dir, m, c, d).is_file()
        ]
        if not todo:
            continue
        frame = read_table(features_path(paths, m, cfg.export.format))
        ref = ray.put(member_split_data(frame))
        for c, d in todo:
            pending[task.remote(ref, c, d, member_seed(cfg.seed, m), names)] = task_file(
                tasks_dir, m, c, d
            )

    def store(dst: Path, result: dict) -> str:
        files.write_json(dst, result)
        return ""

    total = len(members) * len(depths) * len(names)
    drain(pending, store, "rules", "trees", total)
    summary = aggregate(cfg, paths, members, depths, names)
    at = summary["at_depth"]
    print(
        f"[rules] {len(members)} members × {len(names)} classes × {len(depths)} depths · depth "
        f"{cfg.rules.depth}: fidelity {100 * at['mean_per_class_mean']:.2f} % mean per class "
        f"(seed 001: 96.64 %), {100 * at['overall_mean']:.2f} % combined",
        flush=True,
    )
    return summary


def aggregate(
    cfg: Config, paths: RunPaths, members: list[int], depths: list[int], names: list[str]
) -> dict[str, Any]:
    """Stored task results → fidelity, sweep and rule tables and the summary (what the report
    reads). Fidelities come from the tasks' stored test probabilities only."""
    out = paths.stage(Rules.DIR)
    td = out / layout.TASKS
    fid_rows, rule_rows, work, text, n_features = [], [], [], [], 0
    for m in members:
        frame = read_table(features_path(paths, m, cfg.export.format))
        n_features = sum(1 for c in frame.columns if c.startswith("f") and c[1:].isdigit())
        test_preds = frame.loc[frame["role"] == "test", "pred"].to_numpy(np.int64)
        for d in depths:
            results = [files.read_json(task_file(td, m, c, d)) for c in range(len(names))]
            fid = fidelity_from_results(results, test_preds)
            lengths = [len(r["conditions"]) for res in results for r in res["rules"]]
            fid_rows.append(
                {
                    "member": m,
                    "depth": d,
                    "overall": fid["overall"],
                    "mean_per_class": fid["mean_per_class"],
                    "train_mean_per_class": float(np.mean([r["train_fidelity"] for r in results])),
                    "n_rules": len(lengths),
                    "mean_rule_length": float(np.mean(lengths)) if lengths else float("nan"),
                    "n_test": fid["n"],
                    **{f"fidelity_{k}": v for k, v in fid["per_class"].items()},
                }
            )
            for res in results:
                work.append(
                    {
                        "unit": f"member {m} class {res['class']} depth {d}",
                        **{k: res[k] for k in ("node_id", "node_ip", "seconds")},
                    }
                )
                for r in res["rules"]:
                    rule_rows.append(
                        {
                            "member": m,
                            "depth": d,
                            "class": res["class"],
                            "rule": r["text"],
                            "length": len(r["conditions"]),
                            "n_support": r["n_support"],
                            "support": r["support"],
                            "precision": r["precision"],
                        }
                    )
                if d == cfg.rules.depth:
                    text.append(
                        f"member {m} · {res['class']} (test fidelity "
                        f"{100 * res['test_fidelity']:.2f} %)"
                    )
                    text += [f"  {r['text']}" for r in res["rules"]] or ["  (no rule: never)"]
    fidelity = pd.DataFrame(fid_rows)
    sweep = sweep_table(fidelity)
    fidelity.to_csv(out / Rules.FIDELITY, index=False)
    sweep.to_csv(out / Rules.SWEEP, index=False)
    pd.DataFrame(rule_rows).to_csv(out / Rules.RULES, index=False)
    files.write_text(out / Rules.RULES_TEXT, "\n".join(text) + "\n")
    write_work(out, work)
    at = fidelity[fidelity["depth"] == cfg.rules.depth]
    summary = {
        "members": members,
        "depths": depths,
        "depth": cfg.rules.depth,
        "class_names": names,
        "n_features": n_features,
        "fitted_on": "each member's training split, to the member's own predictions",
        "scored_on": "the shared test split",
        "n_test": int(at["n_test"].iloc[0]),
        "at_depth": {
            "overall_mean": float(at["overall"].mean()),
            "overall_std": float(at["overall"].std(ddof=1)) if len(at) > 1 else 0.0,
            "mean_per_class_mean": float(at["mean_per_class"].mean()),
            "mean_per_class_std": float(at["mean_per_class"].std(ddof=1)) if len(at) > 1 else 0.0,
            "per_class": {n: float(at[f"fidelity_{n}"].mean()) for n in names},
            "n_rules_mean": float(at["n_rules"].mean()),
            "mean_rule_length": float(at["mean_rule_length"].mean()),
        },
        "paper": PAPER,
    }
    files.write_json(out / layout.SUMMARY, summary)
    return summary


def sweep_table(fidelity: pd.DataFrame) -> pd.DataFrame:
    """Per depth: mean and std over members of fidelity and rule size."""
    cols = ["overall", "mean_per_class", "train_mean_per_class", "n_rules", "mean_rule_length"]
    g = fidelity.groupby("depth", sort=True)[cols]
    mean, std = g.mean().add_suffix("_mean"), g.std(ddof=1).fillna(0.0).add_suffix("_std")
    return pd.concat([mean, std], axis=1).reset_index()
