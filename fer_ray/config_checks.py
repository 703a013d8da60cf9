"""The config's value checks: ranges and rules across keys, one clear line each.

Kept apart from ``fer_ray.config`` (the schema and the loader) so each stays readable.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Any

from fer_ray.errors import ConfigError

if TYPE_CHECKING:
    from fer_ray.config import Config


# Fixed choices; pluggable kinds (data sets, detectors, recipes, backbones, weights, head
# activations) are checked against their registries by ``check_registered``.
CHOICES: dict[str, tuple[str, ...]] = {
    "model.feature_cache": ("auto", "off"),
    "train.optimizer": ("adam", "sgd"),
    "train.amp": ("none", "bf16"),
    "train.lr_rule": ("min_div10", "steepest"),
    "ensemble.selection": ("val", "test"),
    "grid.choose": ("best", "paper"),
    "faces.fallback": ("square", "native"),
}
# search.algorithm / search.scheduler: the grid, or the names Ray Tune's create_searcher /
# create_scheduler know (tests/test_search_config.py keeps them equal to the installed Ray's).
SEARCHERS = ("grid", "random", "variant_generator", "optuna", "hyperopt", "bohb", "bayesopt",
             "ax", "nevergrad", "hebo", "zoopt")  # fmt: skip
SCHEDULERS = ("none", "fifo", "asha", "async_hyperband", "asynchyperband",
              "median_stopping_rule", "medianstopping", "hyperband", "hb_bohb")  # fmt: skip
# search.metrics: the objectives a proposal reports, and the searchers that weigh several
OBJECTIVES = ("val_acc", "trainable_params", "ms_per_image")
MULTI_OBJECTIVE = ("optuna", "random", "variant_generator")
# population-based schedulers change a trial's config mid-run: its folds would mix settings
MUTATING_SCHEDULERS = ("pbt", "pbt_replay", "pb2", "resource_changing")
# searcher → (modules it imports, pip command)
SEARCHER_PACKAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "optuna": (("optuna",), "pip install optuna"),
    "hyperopt": (("hyperopt",), "pip install 'fer_ray[search]' (hyperopt)"),
    "bohb": (("hpbandster", "ConfigSpace"), "pip install hpbandster ConfigSpace"),
    "bayesopt": (("bayes_opt",), "pip install bayesian-optimization"),
    "ax": (("ax",), "pip install ax-platform"),
    "nevergrad": (("nevergrad",), "pip install nevergrad"),
    "hebo": (("hebo",), "pip install HEBO"),
    "zoopt": (("zoopt",), "pip install zoopt"),
}
# Keys that were renamed: the loader says what they are called now.
RENAMED: dict[str, str] = {"train.augment": "train.recipe"}


def relative_lr_ok(value: float | str) -> bool:
    if isinstance(value, str):
        try:
            return value.startswith("x") and float(value[1:]) > 0
        except ValueError:
            return False
    return value > 0


# seed 004's training choices (fer_ray.train.choices resolves them)
CLASS_WEIGHT_RULES = ("none", "balanced", "seed004")
PHASE_KEYS = ("epochs", "lr", "train", "lr_low")
PHASE_PARTS = ("head", "tail")


def number(value: Any) -> float | None:
    """A number, or a string YAML left unparsed (PyYAML reads ``1e-4`` as a string); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def relative_lr(value: Any, base: float) -> float:
    """An lr entry: a number, or ``x<f>`` = f times ``base``."""
    if isinstance(value, str) and value.startswith("x"):
        return base * float(value[1:])
    n = number(value)
    if n is None:
        raise ConfigError(f"an lr must be a number or 'x<f>', got {value!r}")
    return n


def _phase_errors(i: int, entry: dict[str, Any]) -> list[str]:
    where = f"train.phases[{i}]"
    unknown = sorted(set(entry) - set(PHASE_KEYS))
    if unknown:
        return [f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(PHASE_KEYS)})"]
    errs = []
    epochs = entry.get("epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        errs.append(f"{where}.epochs must be an integer >= 1, got {epochs!r}")
    lr = entry.get("lr", "x1")
    if not (relative_lr_ok(lr) if isinstance(lr, str) and lr.startswith("x") else
            (number(lr) or 0) > 0):  # fmt: skip
        errs.append(f"{where}.lr must be a number > 0 or 'x<f>' (x the phase-1 lr), got {lr!r}")
    part = entry.get("train", "tail")
    if part not in PHASE_PARTS:
        errs.append(f"{where}.train must be one of {', '.join(PHASE_PARTS)}, got {part!r}")
    if "lr_low" in entry:
        low = number(entry["lr_low"])
        if low is None or not 0 < low <= 1:
            errs.append(f"{where}.lr_low must be a multiplier in (0, 1], got {entry['lr_low']!r}")
        elif part != "tail":
            errs.append(f"{where}.lr_low needs train: tail (discriminative rates over the tail)")
    return errs


def training_errors(train: Any) -> list[str]:
    """``train.class_weights``, ``train.lr`` and ``train.phases``: one message per problem."""
    errs = []
    cw = train.class_weights
    if isinstance(cw, list):
        if not cw or not all(w > 0 for w in cw):
            errs.append(f"train.class_weights: a list needs one weight > 0 per class, got {cw}")
    elif cw not in CLASS_WEIGHT_RULES:
        errs.append(
            f"train.class_weights must be one of {', '.join(CLASS_WEIGHT_RULES)} or a list of"
            f" per-class weights, got {cw!r}"
        )
    lr = train.lr
    if lr is not None and lr != "auto" and not (number(lr) or 0) > 0:
        errs.append(f"train.lr must be a number > 0, auto, or null (the grid's), got {lr!r}")
    if train.phases is not None:
        if not train.phases:
            errs.append("train.phases is empty: give at least one phase, or null for the default")
        for i, entry in enumerate(train.phases):
            errs += _phase_errors(i, entry)
    return errs


RUN_NAME = re.compile(r"[A-Za-z0-9._-]+")


def name_error(name: str) -> str | None:
    """Why ``name`` cannot name a run, or None: it becomes one folder under the runs and the
    reports folders, so it must be one plain path component (``--fresh`` deletes that folder)."""
    if RUN_NAME.fullmatch(name) and name not in (".", ".."):
        return None
    return (
        f"name={name!r} must be one folder name of letters, digits, '.', '_' and '-'"
        " (not '.' or '..', no '/'): the run lives in <output.runs_dir>/<name>"
    )


def _choice_error(key: str, value: str, choices: tuple[str, ...]) -> str | None:
    if value in choices:
        return None
    close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"'{key}' must be one of {', '.join(choices)}, got {value!r}{hint}"


def search_error(search: Any) -> str | None:
    """Why ``search.algorithm`` / ``search.scheduler`` cannot run, or None."""
    if search.scheduler in MUTATING_SCHEDULERS:
        return (
            f"search.scheduler={search.scheduler} changes a trial's config mid-run, so one "
            f"proposal's folds would mix settings; use one of {', '.join(SCHEDULERS)}"
        )
    return (
        _choice_error("search.algorithm", search.algorithm, SEARCHERS)
        or _choice_error("search.scheduler", search.scheduler, SCHEDULERS)
        or _metrics_error(search)
    )


def _metrics_error(search: Any) -> str | None:
    """``search.metrics``: known objectives, each max or min, the validation accuracy among
    them, and several only where the searcher can weigh several."""
    metrics = search.metrics or {}
    for name, mode in metrics.items():
        why = _choice_error("search.metrics", name, OBJECTIVES) or _choice_error(
            f"search.metrics.{name}", mode, ("max", "min")
        )
        if why:
            return why
    if metrics and "val_acc" not in metrics:
        return "search.metrics must include val_acc (the score every cell and proposal shares)"
    if len(metrics) > 1 and search.algorithm not in MULTI_OBJECTIVE:
        return (
            f"search.metrics names {len(metrics)} objectives: search.algorithm must be one of"
            f" {', '.join(MULTI_OBJECTIVE)} (got {search.algorithm})"
        )
    return None


def search_dependency(algorithm: str) -> None:
    """Raise a one-line DependencyError when the searcher's package is not installed."""
    import importlib.util

    from fer_ray.errors import DependencyError

    modules, pip = SEARCHER_PACKAGES.get(algorithm, ((), ""))
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise DependencyError(f"search.algorithm={algorithm} needs the {missing[0]} package: {pip}")


def validate(cfg: Config) -> None:
    """Ranges and cross-key rules that types alone cannot say; the first broken one fails."""
    if (why := name_error(cfg.name)) is not None:
        raise ConfigError(why)
    if (why := search_error(cfg.search)) is not None:
        raise ConfigError(why)
    checks = [
        (cfg.grid.folds >= 2, "grid.folds must be >= 2"),
        (cfg.data.n_subjects >= 1, "data.n_subjects must be >= 1"),
        (cfg.data.per_class >= 1, "data.per_class must be >= 1"),
        (cfg.data.image_size >= 16, "data.image_size must be >= 16"),
        (cfg.faces.chunk_size >= 1, "faces.chunk_size must be >= 1"),
        (cfg.model.pretrain_epochs >= 1, "model.pretrain_epochs must be >= 1"),
        (cfg.model.pretrain_subjects >= 2, "model.pretrain_subjects must be >= 2"),
        (cfg.model.train_last_convs >= -1, "model.train_last_convs must be >= 0, or -1 (all)"),
        (0 <= cfg.model.head_dropout < 1, "model.head_dropout must be in [0, 1)"),
        (cfg.train.weight_decay >= 0, "train.weight_decay must be >= 0"),
        (0 <= cfg.train.momentum < 1, "train.momentum must be in [0, 1)"),
        (relative_lr_ok(cfg.ensemble.phase2_lr), "ensemble.phase2_lr must be > 0 or 'x<f>'"),
        (cfg.ensemble.holdout_repeats >= 1, "ensemble.holdout_repeats must be >= 1"),
        (
            len(cfg.search.lr_range) == 2 and 0 < cfg.search.lr_range[0] < cfg.search.lr_range[1],
            "search.lr_range must be [low, high] with 0 < low < high",
        ),
        (
            len(cfg.search.hidden_range) == 2
            and 1 <= cfg.search.hidden_range[0] <= cfg.search.hidden_range[1],
            "search.hidden_range must be [low, high] with 1 <= low <= high",
        ),
        (cfg.search.trials is None or cfg.search.trials >= 1, "search.trials must be >= 1"),
        (
            cfg.ensemble.holdout_repeats == 1 or cfg.data.test_split is None,
            "ensemble.holdout_repeats > 1 needs grouped holdouts; data.test_split fixes one",
        ),
        (
            cfg.grid.choose != "paper"
            or (cfg.grid.paper_lr in cfg.grid.lr and cfg.grid.paper_hidden in cfg.grid.hidden),
            "grid.choose=paper: grid.paper_lr and grid.paper_hidden must be in the grid",
        ),
        (
            all(set(d) <= {"what", "paper", "ours", "why"} and "what" in d for d in cfg.departures),
            "departures: each entry needs 'what' and may have 'paper', 'ours', 'why'",
        ),
        (cfg.analyse.sweep_draws >= 1, "analyse.sweep_draws must be >= 1"),
        (len(cfg.grid.lr) >= 1, "grid.lr is empty: the search space needs at least one value"),
        (all(x > 0 for x in cfg.grid.lr), "grid.lr must be > 0"),
        (len(cfg.grid.hidden) >= 1, "grid.hidden is empty: the search space needs one value"),
        (all(h > 0 for h in cfg.grid.hidden), "grid.hidden must be > 0"),
        (cfg.ensemble.members >= 1, "ensemble.members must be >= 1"),
        (0 < cfg.ensemble.test_fraction < 0.5, "ensemble.test_fraction must be in (0, 0.5)"),
        (0 < cfg.ensemble.val_fraction < 0.5, "ensemble.val_fraction must be in (0, 0.5)"),
        (cfg.train.epochs >= 1, "train.epochs must be >= 1"),
        (cfg.ensemble.phase2_epochs >= 0, "ensemble.phase2_epochs must be >= 0"),
        (cfg.faces.size >= 16, "faces.size must be >= 16"),
        (cfg.faces.margin is None or cfg.faces.margin >= 0, "faces.margin must be >= 0"),
        (cfg.train.batch_size >= 1, "train.batch_size must be >= 1"),
        (cfg.output.checkpoint_every >= 0, "output.checkpoint_every must be >= 0"),
        (cfg.output.checkpoint_every_s >= 0, "output.checkpoint_every_s must be >= 0"),
        (cfg.output.live_report_s >= 0, "output.live_report_s must be >= 0"),
        (cfg.resources.cpus_per_trial > 0, "resources.cpus_per_trial must be > 0"),
        (cfg.resources.gpus_per_trial >= 0, "resources.gpus_per_trial must be >= 0"),
        (cfg.resources.cpus_per_task > 0, "resources.cpus_per_task must be > 0"),
        (cfg.resources.features_cpus >= 1, "resources.features_cpus must be >= 1"),
        (
            cfg.resources.features_gpus is None or cfg.resources.features_gpus >= 0,
            "resources.features_gpus must be >= 0",
        ),
        (cfg.resources.wait_s > 0, "resources.wait_s must be > 0"),
        (cfg.resources.connect_timeout_s > 0, "resources.connect_timeout_s must be > 0"),
        (0 <= cfg.data.label_noise < 1, "data.label_noise must be in [0, 1)"),
        (
            cfg.data.label_noise == 0 or cfg.data.name == "synthetic",
            "data.label_noise applies to data.name=synthetic only (a real data set's noise is"
            " unknown, so flips could not be scored)",
        ),
        (
            cfg.data.label_noise == 0 or cfg.data.test_split == "test",
            "data.label_noise > 0 needs data.test_split=test: the synthetic set then holds out"
            " its own test subjects, whose labels are never flipped",
        ),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
    for msg in training_errors(cfg.train):
        raise ConfigError(msg)
    for section in cfg.sections.values():  # each recipe's section checks itself
        for msg in section.errors(cfg):
            raise ConfigError(msg)


def registries() -> dict[str, Any]:
    """Config key → the registry its value must be a name of (imported on first use)."""
    from fer_ray.data.datasets import DATASETS
    from fer_ray.data.recipes import RECIPES
    from fer_ray.data.synthetic import STYLES
    from fer_ray.faces.detectors import DETECTORS
    from fer_ray.models.backbones import BACKBONES
    from fer_ray.models.head import HEAD_ACTIVATIONS

    return {
        "data.name": DATASETS,
        "faces.detector": DETECTORS,
        "train.recipe": RECIPES,
        "model.backbone": BACKBONES,
        "model.activation": HEAD_ACTIVATIONS,
        "newfaces.style": STYLES,
    }


def check_registered(cfg: Config) -> None:
    """Every pluggable name is registered, every weights path readable."""
    from fer_ray import tracking
    from fer_ray.models import weights

    tracking.check(cfg.tracking)
    search_dependency(cfg.search.algorithm)

    d = cfg.to_dict()
    for key, reg in registries().items():
        section, name = key.split(".")
        reg.check(d[section][name])
    weights.check(cfg.model.weights)  # a registered source or a readable state-dict file
    for b in (cfg.ensemble.backbones or []) + (cfg.grid.backbones or []):
        registries()["model.backbone"].check(b)
