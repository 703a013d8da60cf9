"""Training choices (seed 004) on the Ray side: what every member shares.

``plan`` runs before a stage's members train (``fer_ray.stages.members``): it fixes the
phase-1 lr (the grid's, the config's ``train.lr``, or, with ``train.lr: auto``, one LR range
test on member 0's training split as a Ray task, stored as ``lr_finder.csv`` /
``lr_finder.json`` in the stage's folder) and the class weights that do not depend on a member
(``seed004``, an explicit list). Each member then resolves its own (``balanced``: from its
training split) through ``member_choices``. What was chosen goes into the stage's summary as
``training`` (``summary_entry``). The LR test is deterministic, so every stage that plans on
the same data gets the same lr.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray
import torch

from fer_ray import files
from fer_ray.config import Config
from fer_ray.data.splits import member_split
from fer_ray.layout import SUMMARY, Ensemble, Prepare, RunPaths
from fer_ray.seeds import member_seed
from fer_ray.stages import common
from fer_ray.stages.cluster import node_info
from fer_ray.train import choices
from fer_ray.train.loop import Phase
from fer_ray.train.lr_finder import LRFinderResult, lr_find


@dataclasses.dataclass(frozen=True)
class Plan:
    """What every member shares: the phase-1 lr and where it came from, fixed weights."""

    base_lr: float
    lr: dict[str, Any]  # {source: grid | config | auto, value, rule}
    class_names: list[str]
    fixed_weights: list[float] | None  # seed004 or a list (balanced: per member)


def member_phases(cfg: Config, base_lr: float, module: Any) -> list[Phase]:
    e = cfg.ensemble
    return choices.training_phases(
        cfg.train.phases, base_lr, module,
        epochs=cfg.train.epochs, phase2_lr=e.phase2_lr, phase2_epochs=e.phase2_epochs,
    )  # fmt: skip


def member_weights(cfg: Config, plan: Plan, train_labels: np.ndarray) -> np.ndarray | None:
    if plan.fixed_weights is not None:
        return np.asarray(plan.fixed_weights, dtype=np.float64)
    return choices.class_weight_values(cfg.train.class_weights, plan.class_names, train_labels)


def member_choices(
    cfg: Config, plan: Plan | None, chosen: dict, module: Any, train_labels: np.ndarray
) -> tuple[list[Phase], torch.Tensor | None]:
    """A member's phases and class-weight tensor (None: unweighted); ``plan`` None = defaults."""
    if plan is None:
        return member_phases(cfg, float(chosen["lr"]), module), None
    w = member_weights(cfg, plan, train_labels)
    weights = None if w is None else torch.as_tensor(w, dtype=torch.float32)
    return member_phases(cfg, plan.base_lr, module), weights


def _member0_train(cfg: Config, data: Any) -> np.ndarray:
    seed = member_seed(cfg.seed, 0, 0)
    train_m, _ = member_split(data.y, data.groups, data.test, cfg.ensemble.val_fraction, seed)
    return train_m


@ray.remote
def _lr_task(cfg: Config, data: Any, chosen: dict, weights: list[float] | None) -> dict:
    """The LR range test on member 0's training split (its seed, the chosen hidden size) for
    the first phase's parameters; the recipe's random augmentation is not applied."""
    common.set_threads(cfg, cfg.resources.cpus_per_trial)
    seed = member_seed(cfg.seed, 0, 0)
    device = common.trial_device(cfg.resources.gpus_per_trial)
    model, module = common.trial_model(
        common.model_config(cfg, chosen), data, chosen["hidden"], seed, device
    )
    train = data.split(_member0_train(cfg, data))
    first = member_phases(cfg, 1.0, module)[0]
    loss_fn = torch.nn.functional.cross_entropy
    if weights is not None:
        w = torch.as_tensor(weights, dtype=torch.float32, device=device)

        def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.cross_entropy(out, y, weight=w)

    res = lr_find(
        module, train.x, train.y, batch_size=cfg.train.batch_size,
        generator=torch.Generator().manual_seed(seed),
        optimizer_factory=choices.lr_test_optimizer(first, module, cfg.train),
        loss_fn=loss_fn, suggestion=cfg.train.lr_rule,
    )  # fmt: skip
    common.release_accelerator(model)
    return {**res.to_dict(), **node_info()}


def _finder(d: dict) -> LRFinderResult:
    nan = float("nan")
    return LRFinderResult(
        lrs=np.asarray(d["lrs"], dtype=float),
        losses=np.asarray([nan if v is None else v for v in d["losses"]], dtype=float),
        smoothed=np.asarray([nan if v is None else v for v in d["smoothed"]], dtype=float),
        **{k: d[k] for k in ("suggested_lr", "suggestion", "steepest_lr", "min_loss_lr",
                             "diverged")},
    )  # fmt: skip


def run_lr_finder(
    cfg: Config,
    out: Path,
    data_ref: Any,
    chosen: dict,
    weights: Any,
    resume: bool,
    prefix: str = "",
) -> LRFinderResult:
    """One Ray task (reused from ``<prefix>lr_finder.json`` when a resumed stage has it)."""
    path = out / f"{prefix}{Ensemble.LR_FINDER_JSON}"
    if resume and path.is_file():
        return _finder(files.read_json(path))
    res = cfg.resources
    task = _lr_task.options(num_cpus=res.cpus_per_trial, num_gpus=res.gpus_per_trial)
    w = None if weights is None else [float(v) for v in weights]
    d = ray.get(task.remote(cfg, data_ref, chosen, w))
    result = _finder(d)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"lr": result.lrs, "loss": result.losses, "smoothed": result.smoothed}).to_csv(
        out / f"{prefix}{Ensemble.LR_FINDER}", index=False
    )
    files.write_json(path, result.to_dict())
    return result


def class_names(paths: RunPaths) -> list[str]:
    """The run's classes, in label order (the prepare stage's summary)."""
    return list(files.read_json(paths.stage(Prepare.DIR) / SUMMARY)["class_names"])


def plan(
    cfg: Config,
    out: Path,
    data_ref: Any,
    data: Any,
    names: list[str],
    chosen: dict,
    resume: bool,
    prefix: str = "",
) -> Plan | None:
    """The shared choices for members trained on ``data`` (a ``TrialData``, ``data_ref`` its
    reference) with classes ``names``, or None when every training key is at its default.
    An LR range test is stored under ``out`` (file names prefixed by ``prefix``)."""
    if choices.is_default(cfg.train):
        return None
    rule = cfg.train.class_weights
    fixed = None
    if rule != "balanced":
        w = choices.class_weight_values(rule, names)
        fixed = None if w is None else w.tolist()
    # balanced weights of member 0: what the LR test trains with
    w0 = fixed
    if rule == "balanced":
        w0 = choices.class_weight_values(rule, names, data.y[_member0_train(cfg, data)]).tolist()
    lr = cfg.train.lr
    if lr == "auto":
        found = run_lr_finder(cfg, out, data_ref, chosen, w0, resume, prefix)
        info = {"source": "auto", "value": found.suggested_lr, "rule": found.suggestion,
                "grid_lr": float(chosen["lr"]), "diverged": found.diverged}  # fmt: skip
    elif lr is not None:
        info = {"source": "config", "value": float(lr), "grid_lr": float(chosen["lr"])}
    else:
        info = {"source": "grid", "value": float(chosen["lr"])}
    return Plan(float(info["value"]), info, names, fixed)


def summary_entry(cfg: Config, plan: Plan | None, data: Any, chosen: dict) -> dict[str, Any]:
    """``summary.json["training"]``: the rule and member 0's weights, the lr, the phases."""
    base = float(chosen["lr"]) if plan is None else plan.base_lr
    module = None
    if cfg.train.phases is not None:  # layer groups need the model (CPU, not trained)
        _, module = common.trial_model(
            common.model_config(cfg, chosen), data, chosen["hidden"],
            member_seed(cfg.seed, 0, 0), "cpu",
        )  # fmt: skip
    phases = member_phases(cfg, base, module)
    rule = cfg.train.class_weights
    weights = None
    if plan is not None:
        w = member_weights(cfg, plan, data.y[_member0_train(cfg, data)])
        weights = None if w is None else dict(zip(plan.class_names, w.tolist()))
    return {
        "default": plan is None,
        "class_weights": {"rule": rule if isinstance(rule, str) else "list", "member_0": weights},
        "lr": plan.lr if plan is not None else {"source": "grid", "value": base},
        "phases": choices.describe_phases(phases, module, cfg.train.phases),
        "custom_phases": cfg.train.phases is not None,  # train.phases replaced the two
    }


def member_epochs(cfg: Config) -> int:
    """Epochs a member trains over all its phases (``train.phases``, else the two)."""
    if cfg.train.phases is not None:
        return sum(int(p["epochs"]) for p in cfg.train.phases)
    return cfg.train.epochs + cfg.ensemble.phase2_epochs
