"""search.space: any searchable config key over a YAML domain, checked like a --set of that key."""

import pytest

from fer_ray import config, search_space
from fer_ray.errors import ConfigError
from fer_ray.search_space import Domain


def _load(*sets: str) -> config.Config:
    return config.load(None, list(sets))


def test_the_default_space_is_the_papers_grid():
    cfg = _load()
    assert search_space.resolve(cfg) == {
        "lr": Domain("grid", (0.005, 0.001, 0.0005)),
        "hidden": Domain("grid", (100, 200, 300)),
    }
    assert search_space.searched_keys(cfg) == []
    assert config.with_searched(cfg, {"lr": 0.1, "hidden": 5}) is cfg  # nothing to set


def test_a_searcher_defaults_to_its_ranges_and_keeps_the_order_of_the_space():
    cfg = _load(
        "search.algorithm=random",
        "search.space.train.weight_decay={loguniform: [1e-5, 1.0e-2]}",  # YAML 1.1: '1e-5' text
        "search.space.hidden={choice: [64, 128]}",
    )
    space = search_space.resolve(cfg)
    assert list(space) == ["lr", "hidden", "train.weight_decay"]
    assert space["lr"] == Domain("loguniform", (0.0005, 0.005))
    assert space["hidden"] == Domain("choice", (64, 128))
    assert space["train.weight_decay"] == Domain("loguniform", (1e-5, 1e-2))


def test_dotted_and_nested_keys_are_the_same_space():
    nested = _load("search.space.train.optimizer={grid: [adam, sgd]}")
    dotted = config.from_dict({"search": {"space": {"train.optimizer": {"grid": ["adam", "sgd"]}}}})
    assert search_space.resolve(nested) == search_space.resolve(dotted)
    assert search_space.searched_keys(dotted) == ["train.optimizer"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("search.space.train.wieght_decay={grid: [0.1]}",
         "search.space.train.wieght_decay: unknown config key 'train.wieght_decay'; did you mean"
         " 'train.weight_decay'?"),
        ("search.space.train.optimizer={grid: [adam, sgdd]}",
         "search.space.train.optimizer: 'sgdd' fails 'train.optimizer' must be one of adam, sgd"),
        ("search.space.train.batch_size={grid: [0, 8]}",
         "search.space.train.batch_size: 0 fails train.batch_size must be >= 1"),
        ("search.space.model.head_dropout={grid: [0.5, 1.5]}",
         "search.space.model.head_dropout: 1.5 fails model.head_dropout must be in [0, 1)"),
        ("search.space.train.weight_decay={uniform: [0.0, 0.1]}",
         "search.space.train.weight_decay: uniform needs a searcher"),
        ("search.space.data.n_subjects={grid: [8, 10]}",
         "search.space.data.n_subjects: data.n_subjects is not a trial hyperparameter"),
        ("search.space.model.train_last_convs={randint: [1, 3]}",
         "search.space.model.train_last_convs: model.train_last_convs changes the trunk's"
         " features, built once per value before the search: list its values"),
        ("search.space.ensemble.members={grid: [3, 5]}",
         "search.space.ensemble.members: ensemble.members is not a trial hyperparameter"),
        ("search.space.lr={grid: [0.1, -0.1]}", "search.space.lr: lr must be > 0"),
        ("search.space.train.momentum=0.5", "search.space.train.momentum must be one of {choice:"),
        ("search.space.train.momentum={normal: [0, 1]}", "search.space.train.momentum.normal"),
    ],
)  # fmt: skip
def test_a_bad_space_is_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError) as e:
        _load(override)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("{uniform: [16, 64]}", "uniform draws floats but train.batch_size is int"),
        ("{randint: [64, 16]}", "randint needs low < high"),
        ("{qrandint: [16, 64]}", "qrandint takes [low, high, q] (integers)"),
        ("{loguniform: [0, 64]}", "loguniform needs 0 < low < high"),
        ("{grid: []}", "grid needs at least one value"),
    ],
)
def test_ranges_are_checked_against_the_keys_type(domain, message):
    with pytest.raises(ConfigError, match="search.space.train.batch_size") as e:
        _load("search.algorithm=random", f"search.space.train.batch_size={domain}")
    assert message in str(e.value)


def test_a_trials_values_apply_through_the_same_checks_as_set():
    cfg = _load("search.space.train.epochs={grid: [1, 2]}")
    trial = config.with_searched(cfg, {"lr": 0.01, "hidden": 8, "fold": 0, "train.epochs": 2,
                                     "model.head_dropout": 0.25})  # fmt: skip
    assert (trial.train.epochs, trial.model.head_dropout) == (2, 0.25)
    assert trial.search.space is None and cfg.search.space is not None  # the copy searches nothing
    assert {"train.epochs", "model.head_dropout"} <= trial.explicit
    with pytest.raises(ConfigError, match="train.epochs must be >= 1"):
        config.with_searched(cfg, {"train.epochs": 0})


def test_trunk_keys_get_one_bundle_per_combination_of_their_values():
    cfg = _load(
        "search.space.model.train_last_convs={grid: [1, 2]}",
        "search.space.train.recipe={grid: [none, seed001]}",
        "search.space.train.epochs={grid: [1, 2]}",  # not a trunk key: no bundle of its own
    )
    settings = search_space.trunk_settings(search_space.resolve(cfg))
    assert [search_space.trunk_id(t) for t in settings] == [
        "model.train_last_convs=1,train.recipe=none",
        "model.train_last_convs=1,train.recipe=seed001",
        "model.train_last_convs=2,train.recipe=none",
        "model.train_last_convs=2,train.recipe=seed001",
    ]
    trial = {"lr": 0.1, "train.epochs": 2, "train.recipe": "seed001", "model.train_last_convs": 2}
    assert search_space.trunk_id(trial) == "model.train_last_convs=2,train.recipe=seed001"
    assert search_space.trunk_settings(search_space.resolve(_load())) == [{}]
    assert search_space.trunk_id({"lr": 0.1, "hidden": 8, "fold": 0}) == ""


def test_field_types_come_from_the_schema():
    assert config.field_type("train.weight_decay") is float
    assert config.field_type("train.nope") is None and config.field_type("nope.x") is None


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["search.metrics={val_acc: max, trainable_params: min}"],
         "search.metrics names 2 objectives: search.algorithm must be one of optuna, random"),
        (["search.algorithm=optuna", "search.metrics={val_acc: max, trainable_parms: min}"],
         "did you mean 'trainable_params'?"),
        (["search.algorithm=optuna", "search.metrics={ms_per_image: min}"],
         "search.metrics must include val_acc"),
        (["search.algorithm=optuna", "search.metrics={val_acc: up}"],
         "'search.metrics.val_acc' must be one of max, min"),
    ],
)  # fmt: skip
def test_objectives_are_checked_at_load(sets, message):
    with pytest.raises(ConfigError, match="search.metrics") as e:
        _load(*sets)
    assert message in str(e.value)
    ok = _load("search.algorithm=optuna", "search.metrics={val_acc: max, ms_per_image: min}")
    assert ok.search.metrics == {"val_acc": "max", "ms_per_image": "min"}


def test_backbones_are_searched_one_way_only():
    ok = _load("search.space.model.backbone={grid: [small_cnn, resnet18]}")
    ids = [search_space.trunk_id(t) for t in search_space.trunk_settings(search_space.resolve(ok))]
    assert ids == ["model.backbone=small_cnn", "model.backbone=resnet18"]
    with pytest.raises(ConfigError, match="grid.backbones already searches architectures"):
        _load("search.space.model.backbone={grid: [resnet18]}", "grid.backbones=[resnet18, vgg19]")
