"""The one member trainer: every stage that trains ensemble members trains them here.

The ensemble, the clean stage's retraining and the newfaces trainings all train "a member":
the grid's chosen cell (backbone, hidden size) with the member's seed on its grouped
train/validation split of the pool outside a test holdout, through ``train.*``'s phases, class
weights and phase-1 lr (``fer_ray.stages.training_choices``: the two default phases when every
training key is at its default), each epoch reported to Tune with a checkpoint, and the epoch
kept that scores best on validation (or on test, ``ensemble.selection: test``). Because all of
them call ``train_member``, the clean stage's ``none`` variant is the ensemble's member of the
same seed, to the digit, whatever ``train.*`` says.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import ray

from fer_ray.config import Config
from fer_ray.data.splits import member_split
from fer_ray.errors import StageError
from fer_ray.models import weights as weight_sources
from fer_ray.stages import common, training_choices
from fer_ray.train.loop import Split, fit

if TYPE_CHECKING:
    from fer_ray.stages.context import StageContext


@dataclasses.dataclass
class Member:
    """A trained member: its network (the selected epoch's weights loaded), the part that
    trained, its masks and splits, ``fit``'s final state and how it resumed."""

    model: Any
    module: Any
    backbone: str
    seed: int
    train_m: np.ndarray  # training items (without the dropped ones)
    val_m: np.ndarray
    test_m: np.ndarray
    train: Split
    val: Split
    test: Split
    state: dict[str, Any]  # fit's final state: history, best
    last_step: int  # epochs over all phases
    resumed: int  # epochs done before a restart
    dropped_train: int  # items of the member's split left out (``drop``)
    dropped_val: int


def train_member(
    cfg: Config,
    chosen: dict[str, Any],
    plan: training_choices.Plan | None,
    data: Any,
    seed: int,
    *,
    test_m: np.ndarray | None = None,
    drop: np.ndarray | None = None,
    backbone: str | None = None,
    select_on: str | None = None,
) -> Member:
    """Train one member inside a Tune trial (resuming from its checkpoint).

    ``data``: a ``TrialData``; ``test_m``: the test holdout (default ``data.test``); ``drop``:
    items left out of training and validation (the clean stage's variants); ``backbone``: one
    of ``ensemble.backbones`` instead of the grid's choice; ``select_on``: default
    ``ensemble.selection``. ``cfg`` is the stage's, which carries the search's chosen config
    keys (``search.space``; ``StageContext.for_stage``), so members train with the whole
    choice."""
    test_m = data.test if test_m is None else test_m
    device = common.trial_device(cfg.resources.gpus_per_trial)
    model_cfg = common.model_config(cfg, chosen, backbone)
    model, module = common.trial_model(model_cfg, data, chosen["hidden"], seed, device)
    split_train, split_val = member_split(
        data.y, data.groups, test_m, cfg.ensemble.val_fraction, seed
    )
    drop = np.zeros(len(data.y), bool) if drop is None else drop
    train_m, val_m = split_train & ~drop, split_val & ~drop
    train, val, test = data.split(train_m, train=True), data.split(val_m), data.split(test_m)
    phases, weights = training_choices.member_choices(cfg, plan, chosen, module, train.y.numpy())
    last_step = sum(p.epochs for p in phases)
    sel = select_on or cfg.ensemble.selection
    state = common.restore_state()
    resumed = len(state["history"]) if state else 0

    def on_epoch(row: dict[str, Any], snapshot: Any) -> None:
        row = {**row, "resumed_from": resumed}
        common.report_epoch(row, snapshot, cfg.output.checkpoint_every, row["step"] == last_step)

    st = fit(
        module,
        train,
        val,
        phases,
        cfg.train,
        seed,
        select_on=sel,
        test=test if sel == "test" else None,
        state=state,
        on_epoch=on_epoch,
        transform=data.train_transform(),
        class_weights=weights,
        checkpoint=common.checkpoint_policy(cfg),
    )
    return Member(
        model, module, model_cfg.backbone, seed, train_m, val_m, test_m, train, val, test, st,
        last_step, resumed, int((split_train & drop).sum()), int((split_val & drop).sum()),
    )  # fmt: skip


def accuracy(probs: np.ndarray, labels: Any) -> float:
    """The share of rows whose most probable class is the label."""
    return float((probs.argmax(1) == np.asarray(labels)).mean())


def stand_in_state(ctx: StageContext, backbone: str, stage: str) -> dict | None:
    """The pretrained stand-in backbone state (``model.weights: synthetic_*``) the grid and the
    ensemble's members started from, for a stage that rebuilds member networks; None for
    other weights. The stand-in exists for ``model.backbone`` only."""
    cfg = ctx.cfg
    src = weight_sources.source(cfg.model.weights)
    if src is None or not src.stand_in:
        return None
    if backbone != cfg.model.backbone:
        raise StageError(
            f"{stage}: the grid chose backbone {backbone} but the stand-in weights"
            f" ({cfg.model.weights}) were pretrained for {cfg.model.backbone}"
        )
    data_ref, _ = ctx.trial_data()
    return ray.get(data_ref).backbone_state
