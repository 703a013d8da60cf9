from pathlib import Path

import pytest

from fer_ray import config
from fer_ray.config import ConfigError
from fer_ray.pipeline import stage_fingerprints

CONFIGS = sorted(Path(__file__).resolve().parent.parent.glob("tune_configs/*.yaml"))


def test_defaults_match_seed_000_grid():
    cfg = config.load(None)
    assert cfg.grid.lr == [0.005, 0.001, 0.0005]
    assert cfg.grid.hidden == [100, 200, 300]
    assert cfg.grid.folds == 5 and cfg.ensemble.members == 15


def test_unknown_key_names_path_and_suggests():
    with pytest.raises(ConfigError, match=r"'grid\.lrs'.*did you mean 'grid\.lr'"):
        config.from_dict({"grid": {"lrs": [0.1]}})
    with pytest.raises(ConfigError, match=r"'ensemble'"):
        config.from_dict({"ensembel": {}})


def test_wrong_type_and_bad_choice():
    with pytest.raises(ConfigError, match=r"'grid\.folds' must be int"):
        config.from_dict({"grid": {"folds": "five"}})
    with pytest.raises(ConfigError, match=r"'ensemble\.selection' must be one of val, test"):
        config.from_dict({"ensemble": {"selection": "best"}})
    with pytest.raises(ConfigError, match="grid.folds must be >= 2"):
        config.from_dict({"grid": {"folds": 1}})


def test_overrides_parse_yaml_values():
    cfg = config.from_dict({}, ["grid.lr=[0.1, 0.01]", "ensemble.members=3", "data.root=/x"])
    assert cfg.grid.lr == [0.1, 0.01] and cfg.ensemble.members == 3 and cfg.data.root == "/x"
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.epoch'.*'train\.epochs'"):
        config.from_dict({}, ["train.epoch=3"])
    with pytest.raises(ConfigError, match="key.path=value"):
        config.from_dict({}, ["train.epochs"])


def test_override_errors_name_the_flag(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("grid:\n  folds: 3\n")
    with pytest.raises(ConfigError, match=r"^--set: unknown config key 'grid\.lrs'"):
        config.load(good, ["grid.lrs=[0.1]"])


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid:\n  hiden: [1]\n")
    with pytest.raises(ConfigError, match=rf"{bad}.*did you mean 'grid\.hidden'"):
        config.load(bad)


def test_save_roundtrip(tmp_path):
    cfg = config.from_dict({}, ["train.epochs=3"])
    config.save(cfg, tmp_path / "c.yaml")
    assert config.load(tmp_path / "c.yaml") == cfg


def test_stage_fingerprints_rerun_exactly_the_stages_whose_inputs_changed():
    base = stage_fingerprints(config.from_dict({}))
    assert base == stage_fingerprints(config.from_dict({}))

    def changed(*overrides):
        new = stage_fingerprints(config.from_dict({}, list(overrides)))
        return [s for s in base if new[s] != base[s]]

    # the seed stages hang off the grid (clean, newfaces) or the ensemble (export → rules, aumaps)
    after_ensemble = ["export", "rules", "aumaps"]
    after_grid = ["ensemble", "analyse", "export", "rules", "clean", "newfaces", "aumaps"]
    assert changed("grid.folds=3") == ["grid", *after_grid]
    assert changed("ensemble.members=4") == ["ensemble", "analyse", *after_ensemble]
    assert changed("ensemble.test_fraction=0.2") == ["grid", *after_grid]
    assert changed("faces.size=48") == ["prepare", "grid", *after_grid]
    assert changed("analyse.sweep_draws=2") == ["analyse"]
    assert changed("train.recipe=seed002") == ["grid", *after_grid]
    # the descriptor baseline is a side stage: only its own inputs rerun it
    assert changed("descriptors.epochs=50") == ["descriptors"]
    assert changed("analyse.absolute_angles=false") == ["analyse", "descriptors"]
    assert changed("data.seed=3") == ["prepare", "grid", "ensemble", "analyse", "descriptors",
                                      *after_grid[2:]]  # fmt: skip
    # each seed stage's own keys rerun it (and what reads its output) only
    assert changed("rules.depth=2", "rules.depths=[1,2]") == ["rules"]
    assert changed("export.format=csv") == ["export", "rules"]
    assert changed("clean.folds=3") == ["clean"]
    assert changed("newfaces.members=2") == ["newfaces"]
    assert changed("aumaps.top_k=3") == ["aumaps"]
    assert changed("resources.max_concurrent_trials=1", "output.checkpoint_every=2") == []


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path):
    cfg = config.load(path)
    assert cfg.name == path.stem


def test_paper_config_is_seed_000():
    cfg = config.load(Path(__file__).resolve().parent.parent / "tune_configs/sfew_paper.yaml")
    assert (cfg.faces.detector, cfg.faces.size, cfg.model.weights) == ("mtcnn", 224, "imagenet")
    assert (cfg.train.epochs, cfg.ensemble.phase2_epochs, cfg.ensemble.phase2_lr) == (50, 50, 0.001)
    assert (cfg.ensemble.members, cfg.ensemble.test_fraction, cfg.ensemble.val_fraction) == (
        15,
        0.15,
        0.2,
    )


def test_registered_names_come_from_the_registries():
    from fer_ray.data.recipes import RECIPES

    assert config.registries()["train.recipe"] is RECIPES
    with pytest.raises(
        ConfigError,
        match=r"train\.recipe='seed005' is not a known augmentation recipe.*known: none",
    ):
        config.from_dict({}, ["train.recipe=seed005"])
    with pytest.raises(ConfigError, match=r"model\.backbone='resnet81'.*did you mean 'resnet18'"):
        config.from_dict({}, ["model.backbone=resnet81"])
    with pytest.raises(ConfigError, match=r"faces\.detector='mtcn'.*did you mean 'mtcnn'"):
        config.from_dict({}, ["faces.detector=mtcn"])
    with pytest.raises(ConfigError, match=r"data\.name='sfw'.*did you mean 'sfew'"):
        config.from_dict({}, ["data.name=sfw"])


def test_renamed_key_says_its_new_name():
    with pytest.raises(ConfigError, match=r"'train\.augment' is now called 'train\.recipe'"):
        config.from_dict({}, ["train.augment=seed002"])


def test_default_yaml_is_the_dataclass_defaults():
    import dataclasses

    path = Path(__file__).resolve().parent.parent / "tune_configs/default.yaml"
    loaded = config.load(path)
    assert loaded.departures  # the one thing it adds: how the default run departs from seed 000
    assert dataclasses.replace(loaded, departures=[]) == config.Config()


def test_phase2_lr_may_be_relative_to_the_chosen_lr():
    assert config.phase2_lr("x0.2", 0.005) == pytest.approx(0.001)
    assert config.phase2_lr(0.0003, 0.005) == 0.0003
    assert config.from_dict({}).ensemble.phase2_lr == "x0.2"  # always smaller than phase 1
    with pytest.raises(ConfigError, match="phase2_lr must be > 0 or 'x<f>'"):
        config.from_dict({}, ["ensemble.phase2_lr=x-1"])
    with pytest.raises(ConfigError, match="paper_lr and grid.paper_hidden must be in the grid"):
        config.from_dict({}, ["grid.choose=paper", "grid.paper_hidden=7"])


def test_shard_size_is_checked_and_misspellings_are_named():
    """resources.shard_images: a multiple of the trunk's batch, at least faces.chunk_size."""
    with pytest.raises(ConfigError, match=r"resources\.shard_images must be a positive multiple"):
        config.load(None, ["resources.shard_images=100"])
    with pytest.raises(ConfigError, match=r"faces\.chunk_size \(512\) must be <= resources"):
        config.load(None, ["resources.shard_images=256", "faces.chunk_size=512"])
    with pytest.raises(ConfigError, match=r"did you mean 'resources\.shard_images'"):
        config.load(None, ["resources.shard_image=256"])
    assert config.load(None, ["resources.shard_images=256"]).resources.shard_images == 256
