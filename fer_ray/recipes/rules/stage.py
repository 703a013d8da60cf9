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
does not report and which is not flattered by rare classes. The tables and seed 001's figures
(``PAPER``) are ``fer_ray.analysis.rule_tables``' (pure).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import ray

from fer_ray import files, layout
from fer_ray.analysis import rule_tables
from fer_ray.analysis.rule_fidelity import class_tree_result
from fer_ray.config import Config
from fer_ray.errors import StageError
from fer_ray.layout import Prepare, Rules, RunPaths
from fer_ray.recipes.rules.export import features_path, read_table
from fer_ray.seeds import member_seed
from fer_ray.stages.common import drain, write_work
from fer_ray.stages.task_results import store_json, timed, work_row

if TYPE_CHECKING:
    from fer_ray.stages.context import StageContext


@ray.remote
def _tree_task(
    member_data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    class_index: int,
    depth: int,
    seed: int,
    class_names: list[str],
) -> dict[str, Any]:
    return timed(class_tree_result, *member_data, class_index, depth, seed, class_names)


def task_file(tasks_dir: Path, member: int, class_index: int, depth: int) -> Path:
    return tasks_dir / f"m{member:02d}_c{class_index}_d{depth:02d}.json"


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
        ref = ray.put(rule_tables.member_split(frame))
        for c, d in todo:
            pending[task.remote(ref, c, d, member_seed(cfg.seed, m), names)] = task_file(
                tasks_dir, m, c, d
            )

    total = len(members) * len(depths) * len(names)
    drain(pending, store_json, "rules", "trees", total)
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
    reads); the arithmetic is ``fer_ray.analysis.rule_tables``'."""
    out = paths.stage(Rules.DIR)
    td = out / layout.TASKS
    results, test_preds, n_features = {}, {}, 0
    for m in members:
        frame = read_table(features_path(paths, m, cfg.export.format))
        n_features = len(rule_tables.feature_columns(frame.columns))
        test_preds[m] = frame.loc[frame["role"] == "test", "pred"].to_numpy(np.int64)
        for d in depths:
            results[m, d] = [files.read_json(task_file(td, m, c, d)) for c in range(len(names))]
    t = rule_tables.rule_tables(results, test_preds, cfg.rules.depth)
    t.fidelity.to_csv(out / Rules.FIDELITY, index=False)
    t.sweep.to_csv(out / Rules.SWEEP, index=False)
    t.rules.to_csv(out / Rules.RULES, index=False)
    files.write_text(out / Rules.RULES_TEXT, "\n".join(t.text) + "\n")
    write_work(out, [
        work_row(f"member {m} class {res['class']} depth {d}", res)
        for (m, d), per_class in results.items()
        for res in per_class
    ])  # fmt: skip
    summary = rule_tables.summary(t.fidelity, members, depths, cfg.rules.depth, names, n_features)
    files.write_json(out / layout.SUMMARY, summary)
    return summary
