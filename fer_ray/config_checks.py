"""The config's value checks: what each section's ``errors(cfg)`` method shares (searchers,
schedulers, objectives, seed 004's training choices, run names), ``validate`` that calls every
section's, and the registry-backed names (``check_registered``). One clear line each.

Kept apart from ``fer_ray.config`` (the schema and the loader) so each stays readable; fixed
choices are ``typing.Literal`` annotations on the sections' fields, checked by the loader.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import TYPE_CHECKING, Any

from fer_ray.errors import ConfigError

if TYPE_CHECKING:
    from fer_ray.config import Config


# Pluggable kinds (data sets, detectors, recipes, backbones, weights, head activations) are
# checked against their registries by ``check_registered``.
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


DEPARTURE_KEYS = ("what", "paper", "ours", "why")


def top_level_errors(cfg: Config) -> list[str]:
    """The keys outside every section: ``name`` and ``departures``."""
    errs = [why] if (why := name_error(cfg.name)) is not None else []
    if not all(set(d) <= set(DEPARTURE_KEYS) and "what" in d for d in cfg.departures):
        errs.append("departures: each entry needs 'what' and may have 'paper', 'ours', 'why'")
    return errs


def validate(cfg: Config) -> None:
    """Ranges and rules that types alone cannot say, each section's in its ``errors(cfg)``:
    the top-level keys, the core sections in their order, then the recipes' sections; the
    first broken one fails."""
    core = [getattr(cfg, f.name) for f in dataclasses.fields(cfg)]
    sections = [s for s in (*core, *cfg.sections.values()) if hasattr(s, "errors")]
    for errors in (top_level_errors(cfg), *(s.errors(cfg) for s in sections)):
        for msg in errors:
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
