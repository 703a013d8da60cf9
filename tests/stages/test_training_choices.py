"""The ensemble's per-member training choices (no Ray started): defaults are today's phases."""

from __future__ import annotations

import numpy as np
import torch

from fer_ray import config
from fer_ray.models.factory import create_model
from fer_ray.stages import training_choices as tc
from fer_ray.train.loop import Phase

NAMES = ["angry", "fear", "happy", "neutral", "sad", "surprise"]


def _tail(cfg):
    return create_model(cfg.model, len(NAMES), 8, head_seed=0).tail


def test_defaults_build_the_two_phases_without_weights():
    cfg = config.from_dict({}, ["model.weights=none"])
    phases, weights = tc.member_choices(cfg, None, {"lr": 0.005}, _tail(cfg), np.zeros(4, int))
    # exactly what the ensemble built before train.phases / lr / class_weights existed
    assert phases == [
        Phase(0.005, cfg.train.epochs),
        Phase(0.005 * 0.2, cfg.ensemble.phase2_epochs),
    ]
    assert weights is None


def test_a_plan_gives_its_lr_the_phases_and_per_member_balanced_weights():
    cfg = config.from_dict({}, [
        "model.weights=none", "train.class_weights=balanced", "train.lr=0.01",
        "train.phases=[{epochs: 2, train: head}, {epochs: 1, lr: x0.1, lr_low: 0.5}]",
    ])  # fmt: skip
    plan = tc.Plan(0.01, {"source": "config", "value": 0.01}, NAMES, None)
    labels = np.array([0, 0, 1, 2, 3, 4, 5, 5])
    module = _tail(cfg)
    phases, weights = tc.member_choices(cfg, plan, {"lr": 0.005}, module, labels)
    assert [(p.lr, p.epochs) for p in phases] == [(0.01, 2), (0.001, 1)]
    assert [m for _, m in phases[1].groups] == [0.5, 1.0]
    expected = 8 / (6 * np.array([2, 1, 1, 1, 1, 2]))
    torch.testing.assert_close(weights, torch.as_tensor(expected, dtype=torch.float32))
    fixed = tc.Plan(0.01, {}, NAMES, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    _, w = tc.member_choices(cfg, fixed, {"lr": 0.005}, module, labels)
    assert w.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
