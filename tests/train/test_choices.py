"""Seed 004's training choices resolved on a real model: phases, layer groups, class weights."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from fer_ray import config
from fer_ray.config import ModelConfig, TrainConfig
from fer_ray.errors import ConfigError
from fer_ray.models.factory import create_model
from fer_ray.train import choices
from fer_ray.train.loop import Phase, Split, fit

NAMES = ["angry", "fear", "happy", "neutral", "sad", "surprise"]


@pytest.fixture(scope="module")
def tail():
    """resnet18 with its last two convs trainable: the tail fit trains on cached features."""
    cfg = ModelConfig(backbone="resnet18", weights="none", train_last_convs=2)
    return create_model(cfg, 6, 8, head_seed=0).tail


@pytest.fixture(scope="module")
def tail3():
    """train_last_convs=3 cuts through layer4.0: conv1, bn1 and the downsample stay frozen."""
    cfg = ModelConfig(backbone="resnet18", weights="none", train_last_convs=3)
    return create_model(cfg, 6, 8, head_seed=0).tail


def test_layer_groups_are_blocks_then_head_in_module_order(tail, tail3):
    assert [label for label, _ in choices.layer_groups(tail)] == ["blocks.0", "head"]
    groups = dict(choices.layer_groups(tail3))
    assert list(groups) == ["blocks.0", "blocks.1", "head"]
    # only the trainable part of the cut block: its frozen parameters are never unfrozen
    assert groups["blocks.0"] == (
        "blocks.0.conv2.weight", "blocks.0.bn2.weight", "blocks.0.bn2.bias",
    )  # fmt: skip
    assert groups["head"] == ("head.fc1.weight", "head.fc1.bias", "head.fc2.weight",
                              "head.fc2.bias")  # fmt: skip


def test_whole_net_groups_carry_the_tail_prefix():
    cfg = ModelConfig(backbone="resnet18", weights="none", train_last_convs=2)
    net = create_model(cfg, 6, 8, head_seed=0)
    assert [g for g, _ in choices.layer_groups(net)] == ["tail.blocks.0", "tail.head"]


def test_seed004_recipe_resolves_to_head_then_discriminative_tail(tail3):
    specs = [
        {"epochs": 10, "lr": "x1", "train": "head"},
        {"epochs": 4, "lr": 1e-4, "train": "tail", "lr_low": 0.1},
        {"epochs": 2, "lr": "x0.5"},
    ]
    head, disc, plain = choices.resolve_phases(specs, 0.003, tail3)
    names = dict(choices.layer_groups(tail3))
    assert head == Phase(0.003, 10, ((names["head"], 1.0),))
    assert disc.lr == 1e-4 and disc.epochs == 4
    # fastai's slice(1e-5, 1e-4) over three groups: 1e-5, ~3.16e-5, 1e-4
    assert [g for g, _ in disc.groups] == [names["blocks.0"], names["blocks.1"], names["head"]]
    np.testing.assert_allclose([m for _, m in disc.groups], [0.1, 0.1**0.5, 1.0])
    assert plain == Phase(0.0015, 2)  # tail without lr_low: exactly the default phase
    desc = choices.describe_phases([head, disc, plain], tail3, specs)
    assert desc[0]["train"] == "head" and desc[0]["groups"][0]["layers"] == "head"
    assert [g["layers"] for g in desc[1]["groups"]] == ["blocks.0", "blocks.1", "head"]
    np.testing.assert_allclose([g["lr"] for g in desc[1]["groups"]], [1e-5, 10**-4.5, 1e-4])
    assert desc[1]["lr_low"] == 0.1 and desc[2]["groups"] == []


def test_default_phases_are_the_ensembles_two_phases(tail):
    t, e = TrainConfig(), config.EnsembleConfig()
    got = choices.training_phases(
        None, 0.005, tail, epochs=t.epochs, phase2_lr=e.phase2_lr, phase2_epochs=e.phase2_epochs
    )
    # what fer_ray.stages.ensemble built before train.phases existed
    assert got == [Phase(0.005, t.epochs), Phase(0.005 * 0.2, e.phase2_epochs)]
    assert choices.training_phases(None, 0.005, None, epochs=3, phase2_lr=0.001,
                                   phase2_epochs=0) == [Phase(0.005, 3)]  # fmt: skip
    assert choices.is_default(t)


def test_head_phase_trains_only_the_head(tail3):
    module = create_model(
        ModelConfig(backbone="resnet18", weights="none", train_last_convs=3), 6, 8, head_seed=0
    ).tail
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    stats = module.blocks[1].bn1.running_mean.clone()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 256, 3, 3, generator=g)
    y = torch.arange(16) % 6
    (head,) = choices.resolve_phases([{"epochs": 1, "train": "head", "lr": 0.01}], 1.0, module)
    fit(module, Split(x, y), Split(x, y), [head], TrainConfig(batch_size=8), seed=0,
        keep_best=False)  # fmt: skip
    changed = {n for n, p in module.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {n for n in before if n.startswith("head.")}
    assert torch.equal(module.blocks[1].bn1.running_mean, stats)  # frozen statistics too


def test_lr_test_optimizer_uses_the_phase_groups(tail3):
    specs = [{"epochs": 1, "train": "tail", "lr_low": 0.01}]
    (phase,) = choices.resolve_phases(specs, 1.0, tail3)
    work = copy.deepcopy(tail3)
    opt = choices.lr_test_optimizer(phase, tail3, TrainConfig())(work)
    np.testing.assert_allclose([g["lr"] for g in opt.param_groups], [0.01, 0.1, 1.0])
    (head,) = choices.resolve_phases([{"epochs": 1, "train": "head"}], 1.0, tail3)
    work = copy.deepcopy(tail3)
    opt = choices.lr_test_optimizer(head, tail3, TrainConfig())(work)
    assert sum(len(g["params"]) for g in opt.param_groups) == 4
    assert [n for n, p in work.named_parameters() if p.requires_grad] == [
        "head.fc1.weight", "head.fc1.bias", "head.fc2.weight", "head.fc2.bias"
    ]  # fmt: skip


def test_balanced_weights_come_from_the_training_split_only():
    y = np.array([0, 0, 0, 1, 1, 2, 3, 4, 5, 2, 2, 2])
    train = np.array([True] * 9 + [False] * 3)  # the last three items are validation
    w = choices.class_weight_values("balanced", NAMES, y[train])
    np.testing.assert_allclose(w, 9 / (6 * np.array([3, 2, 1, 1, 1, 1])))
    y2 = y.copy()
    y2[~train] = 0  # relabelling items outside the training split changes nothing
    np.testing.assert_array_equal(choices.class_weight_values("balanced", NAMES, y2[train]), w)
    assert not np.array_equal(choices.class_weight_values("balanced", NAMES, y), w)


def test_fixed_class_weights():
    assert choices.class_weight_values("none", NAMES) is None
    seed004 = choices.class_weight_values("seed004", NAMES)
    np.testing.assert_allclose(seed004, [0.10, 0.30, 0.05, 0.15, 0.20, 0.20])
    np.testing.assert_allclose(choices.class_weight_values([1, 2, 3, 4, 5, 6], NAMES),
                               [1, 2, 3, 4, 5, 6])  # fmt: skip
    with pytest.raises(ConfigError, match=r"train\.class_weights has 3 weights but the run has 6"):
        choices.class_weight_values([1, 2, 3], NAMES)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.phases=[{epochs: 2, lrr: 0.1}]",
         r"train\.phases\[0\]: unknown key 'lrr' \(allowed: epochs, lr, train, lr_low\)"),
        ("train.phases=[{epochs: 2}, {epochs: 0}]", r"train\.phases\[1\]\.epochs must be"),
        ("train.phases=[{epochs: 2, lr: fast}]", r"train\.phases\[0\]\.lr must be"),
        ("train.phases=[{epochs: 2, lr: -1}]", r"train\.phases\[0\]\.lr must be"),
        ("train.phases=[{epochs: 2, train: body}]", r"train\.phases\[0\]\.train must be one of"),
        ("train.phases=[{epochs: 2, train: head, lr_low: 0.1}]", r"lr_low needs train: tail"),
        ("train.phases=[{epochs: 2, lr_low: 3}]", r"lr_low must be a multiplier in \(0, 1\]"),
        ("train.phases=[]", r"train\.phases is empty"),
        ("train.phases=[3]", r"'train\.phases\[0\]' must be a mapping"),
        ("train.class_weights=inverse", r"train\.class_weights must be one of none, balanced"),
        ("train.class_weights=[1, -2]", r"train\.class_weights: a list needs one weight > 0"),
        ("train.lr=0", r"train\.lr must be a number > 0, auto, or null"),
        ("train.lr=sometimes", r"train\.lr must be a number > 0, auto, or null"),
        ("train.lr_rule=valley", r"'train\.lr_rule' must be one of min_div10, steepest"),
    ],
)  # fmt: skip
def test_bad_training_choices_fail_with_one_line(override, message):
    with pytest.raises(ConfigError, match=message) as e:
        config.from_dict({}, [override])
    assert "\n" not in str(e.value)


def test_good_training_choices_load():
    cfg = config.from_dict({}, [
        "train.class_weights=seed004", "train.lr=auto", "train.lr_rule=steepest",
        "train.phases=[{epochs: 3, train: head}, {epochs: 4, lr: 1e-4, lr_low: 0.1}]",
    ])  # fmt: skip
    assert cfg.train.phases[1] == {"epochs": 4, "lr": "1e-4", "lr_low": 0.1}  # YAML 1.1 string
    assert not choices.is_default(cfg.train)
    assert config.from_dict({}, ["train.lr=0.002"]).train.lr == 0.002
