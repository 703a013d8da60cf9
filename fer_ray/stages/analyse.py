"""analyse: one Ray task per (member, analysis), from stored member results.

Each member's head weights and pooled test features are put into the object store once;
every task reads them by reference. Each task's result is written to ``analyse/tasks/`` as it
arrives, so an interrupted stage redoes only the missing tasks. Tasks run from the driver
after Tune (never inside a trial). The analyses are every entry of
``fer_ray.analysis.per_model.ANALYSES`` (registering one runs it here); the tables are
``fer_ray.analysis.summaries``'.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import ray

from fer_ray import files, layout
from fer_ray.analysis import per_model, pruning
from fer_ray.analysis.summaries import member_tables
from fer_ray.config import Config
from fer_ray.errors import StageError
from fer_ray.layout import Analyse, Ensemble, Grid, Prepare, RunPaths
from fer_ray.seeds import member_seed
from fer_ray.stages.common import drain, write_work
from fer_ray.stages.task_results import store_json, timed, work_row

if TYPE_CHECKING:
    from fer_ray.stages.context import StageContext

TABLE_FILES = {
    "pruning_intervals": Analyse.PRUNING_INTERVALS,
    "sweep_falloff": Analyse.SWEEP_FALLOFF,
    "vote_recall": Analyse.VOTE_RECALL,
    "magnitude": Analyse.MAGNITUDE,
    "angles": Analyse.ANGLES,
    "baselines": Analyse.BASELINES,
    "sweep": Analyse.SWEEP,
    "per_class": Analyse.PER_CLASS,
    "confusion_vote": Analyse.CONFUSION_VOTE,
    "confusion_members_mean": Analyse.CONFUSION_MEMBERS,
}


def load_member(path: Path, activation: str) -> per_model.ModelData:
    """A stored member's head and its pooled test features and labels."""
    with np.load(path) as z:
        head = pruning.HeadWeights(z["w_hidden"], z["b_hidden"], z["w_out"], z["b_out"], activation)
        return per_model.ModelData(head, z["test_features"], z["test_labels"])


def settings(cfg: Config) -> per_model.Settings:
    return per_model.Settings(cfg.analyse.absolute_angles, cfg.analyse.sweep_draws)


@ray.remote
def _task(name: str, model: per_model.ModelData, s: per_model.Settings, seed: int) -> dict:
    return timed(per_model.run, name, model, s, seed)


def _task_file(tasks_dir: Path, member: int, name: str) -> Path:
    return tasks_dir / f"{member:02d}_{name}.json"


def analyses() -> list[str]:
    """The names this stage runs on every member: the per-model registry's, in its order."""
    return per_model.ANALYSES.names()


def missing_tasks(tasks_dir: Path, n_members: int) -> dict[int, list[str]]:
    """Per member, the analyses whose result is not stored yet (members with none left out)."""
    todo = {
        m: [n for n in analyses() if not _task_file(tasks_dir, m, n).is_file()]
        for m in range(n_members)
    }
    return {m: names for m, names in todo.items() if names}


def stage(ctx: StageContext) -> None:
    run(ctx.cfg, ctx.paths, ctx.resume)


def run(cfg: Config, paths: RunPaths, resume: bool = False) -> dict[str, Any]:
    out = paths.stage(Analyse.DIR)
    tasks_dir = out / layout.TASKS
    tasks_dir.mkdir(parents=True, exist_ok=True)
    members = [d / Ensemble.MEMBER for d in paths.member_dirs()]
    if not members:
        raise StageError(f"no ensemble members under {paths.stage(Ensemble.DIR)}")
    s = settings(cfg)
    task = _task.options(num_cpus=cfg.resources.cpus_per_task, scheduling_strategy="SPREAD")
    pending: dict[Any, Path] = {}
    for m_idx, todo in missing_tasks(tasks_dir, len(members)).items():
        model_ref = ray.put(load_member(members[m_idx], cfg.model.activation))
        for n in todo:
            ref = task.remote(n, model_ref, s, member_seed(cfg.seed, m_idx))
            pending[ref] = _task_file(tasks_dir, m_idx, n)

    drain(pending, store_json, "analyse", "tasks", len(members) * len(analyses()))
    summary = aggregate(cfg, paths, len(members))
    print(
        f"[analyse] {len(members)} members × {len(analyses())} analyses · "
        f"{summary['features_within_magnitude']} of {summary['n_features']} features within "
        f"mean ± std magnitude · {falloff_text(summary['sweep_falls_off_at'])}",
        flush=True,
    )
    return summary


def aggregate(cfg: Config, paths: RunPaths, n_members: int) -> dict[str, Any]:
    """Stored task results → the stage's tables and summary (what the report reads)."""
    out = paths.stage(Analyse.DIR)
    td = out / layout.TASKS
    tasks = {
        n: [files.read_json(_task_file(td, m, n)) for m in range(n_members)] for n in analyses()
    }
    prep = files.read_json(paths.stage(Prepare.DIR) / layout.SUMMARY)
    with np.load(paths.stage(Ensemble.DIR) / Ensemble.VOTE) as z:
        vote_preds = z["probs"].argmax(1)
    with np.load(paths.member_dirs()[0] / Ensemble.MEMBER) as z:
        test_idx = z["test_idx"]
    splits = pd.read_csv(paths.stage(Grid.DIR) / Grid.SPLITS)
    groups = splits["group"].astype(str).to_numpy()[test_idx]
    tables, summary = member_tables(
        tasks,
        prep["class_names"],
        vote_preds,
        cfg.analyse.absolute_angles,
        groups,
        cfg.seed,
        cfg.statistics.interval,
    )
    for name, frame in tables.items():
        frame.to_csv(out / TABLE_FILES[name], index=False)
    write_work(
        out,
        [work_row(f"member {m} {n}", t) for n in analyses() for m, t in enumerate(tasks[n])],
    )
    files.write_json(out / layout.SUMMARY, summary)
    return summary


def falloff_text(kept: int | None) -> str:
    """Where pruning costs accuracy (the count and every smaller one: paired interval below 0)."""
    if kept is None:
        return "no kept-feature count loses accuracy (no paired interval below 0)"
    return f"accuracy falls off at {kept} kept features (and below: paired interval below 0)"
