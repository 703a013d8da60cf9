"""Strict experiment configuration: frozen dataclasses loaded from YAML.

A config is the whole truth of a run, so loading is strict: an unknown key or a
value of the wrong type fails at once, naming the key path and, for typos, the
closest valid key. ``--set a.b=c`` overrides go through the same checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from fer_ray import search_space
from fer_ray.config_checks import (
    RENAMED,
    check_registered,
    registries,
    training_errors,
    validate,
)
from fer_ray.config_diff import flatten
from fer_ray.errors import ConfigError
from fer_ray.recipes.core.sections import AnalyseConfig, EnsembleConfig, GridConfig, SearchConfig
from fer_ray.tracking import Tracking

TRUNK_BATCH = 128  # images per frozen-trunk forward pass (train.features.trunk_features)

__all__ = [
    "AnalyseConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "EnsembleConfig",
    "FacesConfig",
    "GridConfig",
    "ModelConfig",
    "OutputConfig",
    "ResourcesConfig",
    "SearchConfig",
    "TrainConfig",
    "from_dict",
    "load",
    "registries",
    "save",
]

# Each section is a frozen dataclass: typed choices (``typing.Literal``) or registry-backed
# names (``config_checks.registries``), and an ``errors(cfg)`` method with the section's own
# ranges and rules (those across sections too, with the section they are about); the grid,
# search, ensemble and analyse sections live with the core recipe (fer_ray.recipes.core).


@dataclass(frozen=True)
class DataConfig:
    name: str = "synthetic"  # fer_ray.data.datasets.DATASETS: synthetic | sfew | sfew_subset |
    # fer2013 | ferplus | ckplus | jaffe | ckplus_jaffe | imagefolder | rafdb
    root: str | None = None  # data set folder; unused by synthetic
    # synthetic: identities (the split groups); x 7 classes x per_class. 105 x 1: the default
    # test holdout (about 0.15) holds 15 subjects, so its intervals over subjects mean something
    n_subjects: int = 105
    per_class: int = 1  # synthetic: images per subject and class
    image_size: int = 96  # synthetic: rendered frame size in pixels
    seed: int = 0  # synthetic: generator seed (same seed, same bytes)
    classes: list[str] | None = None  # keep only these classes (None = all)
    neutral_frames: bool = False  # ckplus: add each labelled sequence's first frame as neutral
    skip_unreadable: bool = False  # go on without unreadable images (counted, listed in report)
    test_split: str | None = None  # use the data set's own split as the test holdout, e.g.
    # privatetest (fer2013) or val (sfew); None = a grouped holdout of ensemble.test_fraction
    class_map: dict[str, str] | None = None  # imagefolder: {folder: class} for folder names
    # outside the accepted ones, e.g. {0: angry, 1: disgust, ...} for numeric folders
    aligned: bool | None = None  # rafdb basic layout: Image/aligned (true) or Image/original
    # (false); None = aligned where present
    label_noise: float = 0.0  # synthetic only: flip this fraction of the labels outside the
    # test holdout to another class (seeded by data.seed, recorded in prepare/manifest.csv as
    # clean_label_name/flipped); the set then holds out its own clean test subjects, so it needs
    # data.test_split: test (seed 004's top-loss cleaning is scored against these flips)

    def errors(self, cfg: Config) -> list[str]:
        checks = [
            (self.n_subjects >= 1, "data.n_subjects must be >= 1"),
            (self.per_class >= 1, "data.per_class must be >= 1"),
            (self.image_size >= 16, "data.image_size must be >= 16"),
            (0 <= self.label_noise < 1, "data.label_noise must be in [0, 1)"),
            (
                self.label_noise == 0 or self.name == "synthetic",
                "data.label_noise applies to data.name=synthetic only (a real data set's noise"
                " is unknown, so flips could not be scored)",
            ),
            (
                self.label_noise == 0 or self.test_split == "test",
                "data.label_noise > 0 needs data.test_split=test: the synthetic set then holds"
                " out its own test subjects, whose labels are never flipped",
            ),
        ]
        return [msg for ok, msg in checks if not ok]


@dataclass(frozen=True)
class FacesConfig:
    detector: str = "groundtruth"  # fer_ray.faces.detectors.DETECTORS: groundtruth | center |
    # haar | mtcnn | dlib
    size: int = 64  # side of the square crop fed to the network
    margin: float | None = None  # enlarge the box by this fraction (None: detector default)
    fallback: Literal["square", "native"] = "square"  # a failed detection: the central
    # square of side min(h, w), resized (square) | the central `size` x `size` pixels at native
    # resolution (native: seed 000's "central 224x224 area"; images smaller than that fall back
    # to square)
    cache_dir: str | None = None  # crop cache; default <runs_dir>/.cache/crops
    chunk_size: int = 128  # images per preprocessing Ray task

    def errors(self, cfg: Config) -> list[str]:
        checks = [
            (self.chunk_size >= 1, "faces.chunk_size must be >= 1"),
            (self.size >= 16, "faces.size must be >= 16"),
            (self.margin is None or self.margin >= 0, "faces.margin must be >= 0"),
        ]
        return [msg for ok, msg in checks if not ok]


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "resnet18"  # fer_ray.models.backbones.BACKBONES: resnet18 | 34 | 50 | 101 | 152
    # | alexnet | vgg19 (seed 002) | small_cnn (seed 003)
    weights: str = "synthetic_free_au"  # fer_ray.models.weights.WEIGHTS (a synthetic_* stand-in
    # | none | imagenet) or a state-dict path; the default stand-in is label-free (AUs drawn
    # independently of any class), synthetic = synthetic_au is supervised on the task
    pretrain_epochs: int = 8  # stand-ins: pretraining epochs on a disjoint synthetic set
    pretrain_subjects: int = 150  # stand-ins: identities of that set (x 14 images each)
    init_seed: int = 0  # with weights=none: seeds the shared (stand-in) trunk
    train_last_convs: int = 2  # seed 000: the last two conv layers + head are trained
    feature_cache: Literal["auto", "off"] = "auto"  # auto: cache frozen-trunk activations
    # when possible | off
    activation: str = "relu"  # head hidden activation (fer_ray.models.head): relu | sigmoid | tanh
    head_dropout: float = 0.0  # dropout on the head's hidden layer, before fc2 (seed 003: 0.5)

    def errors(self, cfg: Config) -> list[str]:
        checks = [
            (self.pretrain_epochs >= 1, "model.pretrain_epochs must be >= 1"),
            (self.pretrain_subjects >= 2, "model.pretrain_subjects must be >= 2"),
            (self.train_last_convs >= -1, "model.train_last_convs must be >= 0, or -1 (all)"),
            (0 <= self.head_dropout < 1, "model.head_dropout must be in [0, 1)"),
        ]
        return [msg for ok, msg in checks if not ok]


@dataclass(frozen=True)
class TrainConfig:
    optimizer: Literal["adam", "sgd"] = "adam"  # seed 000 does not say; adam is our default
    batch_size: int = 64
    epochs: int = 4  # grid trials and ensemble phase 1
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    deterministic: bool = True  # torch's deterministic algorithms (cuDNN included): the same
    # config gives the same numbers; false lets cuDNN pick the fastest kernels (GPU speed)
    recipe: str = "none"  # augmentation recipe (fer_ray.data.recipes.RECIPES): none (= seed000)
    # | seed001 | seed002 | seed003; random recipes bypass the feature cache
    amp: Literal["none", "bf16"] = "none"  # bf16: bf16 autocast in training and scoring
    # (GPU speed)
    channels_last: bool = False  # channels-last memory layout for convs (GPU speed)
    class_weights: str | list[float] = "none"  # none | balanced | seed004 | one per class
    lr: float | str | None = None  # ensemble phase 1: None = the grid's lr | number | auto
    lr_rule: Literal["min_div10", "steepest"] = "min_div10"  # lr=auto: min_div10 (min loss
    # / 10) | steepest
    phases: list[dict[str, int | float | str]] | None = None  # seed 004 (README), replaces
    # the ensemble's phases: [{epochs, lr: number | x<f>, train: head | tail, lr_low}]

    def errors(self, cfg: Config) -> list[str]:
        """The ranges, then seed 004's choices (``config_checks.training_errors``: class
        weights, lr, phases)."""
        checks = [
            (self.weight_decay >= 0, "train.weight_decay must be >= 0"),
            (0 <= self.momentum < 1, "train.momentum must be in [0, 1)"),
            (self.epochs >= 1, "train.epochs must be >= 1"),
            (self.batch_size >= 1, "train.batch_size must be >= 1"),
        ]
        return [msg for ok, msg in checks if not ok] + training_errors(self)


@dataclass(frozen=True)
class ResourcesConfig:
    """What each piece of work asks Ray for. Every request must fit ONE node (checked before
    any stage); thread counts follow the CPUs asked for, so numbers do not depend on the
    machine a task lands on."""

    address: str | None = None  # a Ray cluster to join (host:port, auto, ray://); None = local
    # Ray, unless RAY_ADDRESS is set or this runs inside a Ray job (then that cluster is joined)
    num_cpus: int | None = None  # local Ray only; None = all cores
    cpus_per_trial: float = 1.0  # each grid trial / ensemble member (its torch threads)
    gpus_per_trial: float = 0.0  # fractional allowed, e.g. 0.25: four trials share a GPU
    max_concurrent_trials: int | None = None
    cpus_per_task: float = 1.0  # each preprocessing, analysis and descriptor task
    features_cpus: int = 2  # the stand-in pretraining and trunk-feature task (its threads)
    features_gpus: float | None = None  # None: 1 when gpus_per_trial > 0, else 0
    shard_images: int = 1024  # rows of one trunk-feature shard: the largest object put into
    # Ray's object store holds this many images' features (crop shards: faces.chunk_size)
    node_types: list[dict[str, float]] | None = None  # nodes an autoscaler may add, e.g.
    # [{CPU: 8, GPU: 1}]; None = read ~/ray_bootstrap_config.yaml on a `ray up` head, if any
    wait_s: float = 900.0  # how long work may wait for an autoscaler to add a node
    connect_timeout_s: float = 30.0  # an unreachable address fails after this
    dashboard: bool = True  # local Ray starts its dashboard
    dashboard_host: str = "127.0.0.1"  # where it binds (0.0.0.0 exposes it to the network)

    def errors(self, cfg: Config) -> list[str]:
        checks = [
            (self.cpus_per_trial > 0, "resources.cpus_per_trial must be > 0"),
            (self.gpus_per_trial >= 0, "resources.gpus_per_trial must be >= 0"),
            (self.cpus_per_task > 0, "resources.cpus_per_task must be > 0"),
            (self.features_cpus >= 1, "resources.features_cpus must be >= 1"),
            (
                self.features_gpus is None or self.features_gpus >= 0,
                "resources.features_gpus must be >= 0",
            ),
            (
                self.shard_images >= TRUNK_BATCH and self.shard_images % TRUNK_BATCH == 0,
                f"resources.shard_images must be a positive multiple of {TRUNK_BATCH} (the trunk's"
                f" batch, so sharded features equal one pass's), got {self.shard_images}",
            ),
            (
                cfg.faces.chunk_size <= self.shard_images,
                f"faces.chunk_size ({cfg.faces.chunk_size}) must be <= resources.shard_images"
                f" ({self.shard_images}): a crop chunk is one object in the store",
            ),
            (self.wait_s > 0, "resources.wait_s must be > 0"),
            (self.connect_timeout_s > 0, "resources.connect_timeout_s must be > 0"),
        ]
        return [msg for ok, msg in checks if not ok]


@dataclass(frozen=True)
class OutputConfig:
    runs_dir: str = "runs"
    reports_dir: str = "reports"
    storage_path: str | None = None  # Tune storage: shared FS or s3:// on a cluster
    checkpoint_every: int = 0  # a trial checkpoint after this many epochs (0: by time only)
    checkpoint_every_s: float = 60.0  # ... or this many seconds (0: by epochs only), whichever
    # comes first; a restarted trial loses at most that much plus the epoch under way
    keep_grid_checkpoints: bool = False  # grid checkpoints are deleted once the stage is done
    live_report_s: float = 30.0  # during a Tune stage the report is rewritten at most this often

    def errors(self, cfg: Config) -> list[str]:
        checks = [
            (self.checkpoint_every >= 0, "output.checkpoint_every must be >= 0"),
            (self.checkpoint_every_s >= 0, "output.checkpoint_every_s must be >= 0"),
            (self.live_report_s >= 0, "output.live_report_s must be >= 0"),
        ]
        return [msg for ok, msg in checks if not ok]


@dataclass(frozen=True)
class Config:
    name: str = "default"
    seed: int = 0  # split seed and base of every other seed
    data: DataConfig = field(default_factory=DataConfig)
    faces: FacesConfig = field(default_factory=FacesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    analyse: AnalyseConfig = field(default_factory=AnalyseConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    tracking: Tracking = field(default_factory=lambda: ["tensorboard"])  # fer_ray.tracking
    # How this config departs from its seed paper, and why: [{what, paper, ours, why}, ...];
    # the report prints them as "Departures from the paper" (no stage reads them)
    departures: list[dict[str, str]] = field(default_factory=list)
    # The recipes' own sections (fer_ray.protocol.SECTIONS), by name: cfg.clean is
    # cfg.sections["clean"]; saved and printed at top level like the sections above
    sections: dict[str, Any] = field(default_factory=lambda: recipe_sections({}))
    # The dotted keys the file and --set gave (the rest are defaults): a default request may
    # shrink to the cluster it meets, an explicit one may not. Not saved: a saved config is
    # a whole config
    explicit: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "sections":  # pickling, copying
            raise AttributeError(name)
        try:
            return self.__dict__["sections"][name]
        except KeyError:
            raise AttributeError(f"the config has no section {name!r}") from None

    def to_dict(self) -> dict[str, Any]:
        items = [(k, v) for k, v in dataclasses.asdict(self).items() if k != "explicit"]
        recipes = items.pop([k for k, _ in items].index("sections"))[1]
        at = [k for k, _ in items].index("resources")  # recipe sections after the core ones
        return dict(items[:at] + list(recipes.items()) + items[at:])

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats."""
    if tp is Any:  # pass-through keywords (search.options): the receiver checks them
        return value
    origin = typing.get_origin(tp)
    if origin is typing.Literal:  # typed choices: the allowed values are the type
        return _choice(value, typing.get_args(tp), path)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            value = [value]  # a scalar where a list is expected: a one-point grid
        return [_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"'{path}' must be a mapping, got {value!r}")
        return {
            _convert(k, key_tp, f"{path}.{k}"): _convert(v, val_tp, f"{path}.{k}")
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"'{path}' must be a mapping of {tp.__name__} keys, got {value!r}")
        return _build(tp, value, path + ".")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str and isinstance(value, bool):
        return "on" if value else "off"  # YAML 1.1 reads a bare on/off as a boolean
    elif tp is str and isinstance(value, (str, int, float)):
        return str(value)
    expected = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"'{path}' must be {expected}, got {value!r} ({type(value).__name__})")


def _choice(value: Any, allowed: tuple[Any, ...], path: str) -> Any:
    """A ``Literal`` field's value: one of ``allowed``, else one line naming them (and the
    closest, for a typo)."""
    if isinstance(value, bool) and all(isinstance(a, str) for a in allowed):
        value = "on" if value else "off"  # YAML 1.1 reads a bare on/off as a boolean
    if value in allowed and not isinstance(value, bool):
        return value
    names = [str(a) for a in allowed]
    close = difflib.get_close_matches(str(value), names, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"'{path}' must be one of {', '.join(names)}, got {value!r}{hint}")


def _build(cls: type, raw: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            if f"{prefix}{key}" in RENAMED:
                raise ConfigError(
                    f"config key '{prefix}{key}' is now called '{RENAMED[prefix + key]}'"
                )
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown config key '{prefix}{key}'{hint} (valid keys: {', '.join(names)})"
            )
        kwargs[key] = _convert(value, hints[key], f"{prefix}{key}")
    return cls(**kwargs)


def _build_config(raw: dict[str, Any]) -> Config:
    """The core sections as declared above, every recipe's section (defaults where absent)."""
    from fer_ray import protocol

    protocol.load_recipes()
    core = [f.name for f in dataclasses.fields(Config) if f.name not in ("sections", "explicit")]
    names = core + protocol.SECTIONS.names()
    for key in raw:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown config key '{key}'{hint} (valid keys: {', '.join(names)})")
    cfg = _build(Config, {k: v for k, v in raw.items() if k in core})
    object.__setattr__(cfg, "sections", recipe_sections(raw))
    return cfg


def recipe_sections(raw: dict[str, Any]) -> dict[str, Any]:
    """Every registered recipe section, from ``raw``'s values or its defaults."""
    from fer_ray import protocol

    protocol.load_recipes()
    return {
        name: _convert(raw.get(name) or {}, protocol.SECTIONS.get(name), name)
        for name in protocol.SECTIONS
    }


def _yaml_error(e: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: the problem and where."""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def phase2_lr(value: float | str, chosen_lr: float) -> float:
    """``ensemble.phase2_lr``: an absolute rate, or ``x<f>`` = f times the grid's chosen lr."""
    return chosen_lr * float(value[1:]) if isinstance(value, str) else float(value)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=c`` → (["a", "b"], parsed c); the value is parsed as YAML (so 0.1, [1,2], null work)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(
            f"override {text!r}: value is not valid YAML ({_yaml_error(e)})"
        ) from None
    return key.split("."), value


def _apply(raw: dict[str, Any], keys: list[str], value: Any) -> None:
    node = raw
    for k in keys[:-1]:
        nxt = node.get(k)
        if nxt is None:
            nxt = node[k] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set '{'.'.join(keys)}': '{k}' is not a section")
        node = nxt
    node[keys[-1]] = value


def from_dict(raw: dict[str, Any] | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    raw = json.loads(json.dumps(raw or {}))  # deep copy, plain types
    for o in overrides:
        keys, value = parse_override(o)
        _apply(raw, keys, value)
    cfg = _build_config(raw)
    object.__setattr__(cfg, "explicit", frozenset(flatten(raw)))
    validate(cfg)
    for why in search_space.errors(cfg, with_values, field_type):
        raise ConfigError(why)
    check_registered(cfg)
    return cfg


def load(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None) and apply overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {_yaml_error(e)}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {p} must hold a mapping at top level")
    try:
        from_dict(raw)  # the file alone first, so an error names the right culprit
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    try:
        return from_dict(raw, overrides)
    except ConfigError as e:
        raise ConfigError(f"--set: {e}") from None


def with_values(cfg: Config, values: dict[str, Any]) -> Config:
    """``cfg`` with dotted keys set through the same checks as ``--set`` (a searched trial's
    config). The copy searches nothing (``search.space`` dropped), so checking a searched value
    does not check the space again."""
    raw = cfg.to_dict()
    raw["search"]["space"] = None
    for key, value in values.items():
        _apply(raw, key.split("."), value)
    out = from_dict(raw)
    object.__setattr__(out, "explicit", cfg.explicit | frozenset(values))
    return out


def with_searched(cfg: Config, values: dict[str, Any]) -> Config:
    """``cfg`` with the searched config keys of a trial's config or a chosen cell set (their
    dotted names, ``search_space.config_values``); ``cfg`` itself when there are none."""
    found = search_space.config_values(values)
    return with_values(cfg, found) if found else cfg


def field_type(key: str) -> Any:
    """The annotation of a dotted config key (``train.weight_decay`` → float), None if no such
    key."""
    from fer_ray import protocol

    head, _, rest = key.partition(".")
    hints = typing.get_type_hints(Config)
    if head in hints and head not in ("sections", "explicit"):
        tp = hints[head]
    elif head in protocol.SECTIONS.names():
        tp = protocol.SECTIONS.get(head)
    else:
        return None
    for part in rest.split(".") if rest else []:
        if not dataclasses.is_dataclass(tp):
            return None
        sub = typing.get_type_hints(tp)
        if part not in sub:
            return None
        tp = sub[part]
    return tp


def save(cfg: Config, path: str | Path) -> None:
    from fer_ray import files

    files.write_text(Path(path), cfg.to_yaml())
