"""The search space: which config keys a search varies, and over what (``search.space``).

A key is either one of the grid cell's two parameters, ``lr`` (the trial's learning rate) and
``hidden`` (the head's hidden width), or a dotted config key a grid trial reads
(``train.weight_decay``, ``model.head_dropout``, ...). A domain is a one-key mapping written in
YAML or through ``--set``::

    search:
      space:
        train.weight_decay: {loguniform: [1.0e-5, 1.0e-2]}
        train.optimizer: {choice: [adam, sgd]}

``grid``/``choice`` list values; ``uniform``/``loguniform`` take ``[low, high]``;
``randint`` ``[low, high]`` and ``qrandint`` ``[low, high, q]`` take integers, both ends
inclusive. Every value (every bound of a range) passes the same checks as a ``--set`` of its key.
``lr`` and ``hidden`` not in the space come from the paper's grid (``grid.lr``, ``grid.hidden``)
or, for a searcher, from ``search.lr_range`` / ``search.hidden_range`` / ``search.hidden_choices``;
so seed 000's lr x hidden grid is the default space and the default run does not change.

``faces.size``, ``model.backbone``, ``model.weights``, ``model.train_last_convs`` and
``train.recipe`` change the crops or what the frozen trunk computes: the search stage builds one
trial data bundle per combination of their listed values (``trunk_settings``; crops per size
and a stand-in backbone per backbone, each cached), and each trial reads the one of its own
values (``trunk_id``).

Pure: no Ray here (the Tune stage turns a ``Domain`` into Tune's objects).
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fer_ray.errors import ConfigError

if TYPE_CHECKING:
    from fer_ray.config import Config

KINDS = ("choice", "grid", "uniform", "loguniform", "randint", "qrandint")
CELL = ("lr", "hidden")  # the grid cell's own parameters (Table 2's axes)
# Config keys a grid trial reads, so a search may vary them (the ensemble then trains with the
# chosen values: ``apply``)
SEARCHABLE = (
    "train.optimizer", "train.batch_size", "train.epochs", "train.weight_decay",
    "train.momentum", "model.activation", "model.head_dropout",
)  # fmt: skip
# Keys that change what the frozen trunk computes: a trial data bundle (trunk features, or
# crops for a random recipe) is built per distinct value, and each trial reads its own
TRUNK_SEARCHABLE = ("faces.size", "model.backbone", "model.weights", "model.train_last_convs",
                    "train.recipe")  # fmt: skip
WHY_NOT = {
    "train.lr": "the ensemble's phase-1 lr; search the cell's 'lr' instead",
    "grid.backbones": "grid.backbones already crosses architectures with the grid",
}


@dataclasses.dataclass(frozen=True)
class Domain:
    """One searched key's domain: ``kind`` (one of ``KINDS``) and its arguments."""

    kind: str
    args: tuple

    @property
    def values(self) -> list | None:
        """The listed values of a ``grid``/``choice``; None for a range."""
        return list(self.args) if self.kind in ("grid", "choice") else None

    def describe(self) -> str:
        return f"{self.kind} {list(self.args)}"


def flat(space: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """``{train: {weight_decay: {uniform: [..]}}}`` and ``{train.weight_decay: {uniform: ..}}``
    alike → ``{"train.weight_decay": {"uniform": [..]}}`` (a ``--set search.space.a.b=...`` nests
    the key; a YAML file may write it dotted)."""
    out: dict[str, Any] = {}
    for key, value in (space or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in KINDS:
            out[name] = value
        elif isinstance(value, dict) and value and not set(value) & set(KINDS):
            out.update(flat(value, name + "."))
        else:
            out[name] = value  # not a domain: ``parse`` says so
    return out


def parse(key: str, raw: Any) -> Domain:
    """A YAML domain → ``Domain``; its shape only (``check`` tests its values)."""
    where = f"search.space.{key}"
    if not (isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in KINDS):
        raise ConfigError(
            f"{where} must be one of {{{': ..., '.join(KINDS)}: ...}}, got {raw!r}"
            " (e.g. {choice: [a, b]} or {loguniform: [1.0e-5, 1.0e-2]})"
        )
    kind, args = next(iter(raw.items()))
    args = list(args) if isinstance(args, list | tuple) else [args]
    if kind not in ("grid", "choice"):  # YAML 1.1 reads 1e-5 (no dot) as text
        args = [_number(a) for a in args]
    if kind in ("grid", "choice"):
        if not args:
            raise ConfigError(f"{where}: {kind} needs at least one value")
        return Domain(kind, tuple(args))
    n = 3 if kind == "qrandint" else 2
    want = "[low, high, q]" if n == 3 else "[low, high]"
    integer = kind in ("randint", "qrandint")
    num = numbers.Integral if integer else numbers.Real
    if len(args) != n or not all(isinstance(a, num) and not isinstance(a, bool) for a in args):
        kind_of = "integers" if integer else "numbers"
        raise ConfigError(f"{where}: {kind} takes {want} ({kind_of}), got {args!r}")
    low, high = args[0], args[1]
    if not low < high or (kind == "loguniform" and low <= 0) or (n == 3 and args[2] <= 0):
        rule = "0 < low < high" if kind == "loguniform" else "low < high"
        raise ConfigError(f"{where}: {kind} needs {rule}{' and q > 0' if n == 3 else ''}")
    return Domain(kind, tuple(args))


def _number(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def default_cell(cfg: Config, grid: bool | None = None) -> dict[str, Domain]:
    """``lr`` and ``hidden`` when the space does not name them: the paper's grid, or a
    searcher's ranges."""
    s = cfg.search
    if grid or (grid is None and s.algorithm == "grid"):
        return {"lr": Domain("grid", tuple(cfg.grid.lr)),
                "hidden": Domain("grid", tuple(cfg.grid.hidden))}  # fmt: skip
    hidden = (
        Domain("choice", tuple(s.hidden_choices))
        if s.hidden_choices
        else Domain("randint", tuple(s.hidden_range))
    )
    return {"lr": Domain("loguniform", tuple(s.lr_range)), "hidden": hidden}


def resolve(cfg: Config, grid: bool | None = None) -> dict[str, Domain]:
    """The whole space: ``lr`` and ``hidden`` first, then the searched config keys in the order
    the config gives them. ``grid=True`` with a searcher: the grid that ``search.compare_grid``
    runs beside it, the paper's (``grid.lr`` x ``grid.hidden``, every other key the config's)."""
    if grid and cfg.search.algorithm != "grid":
        return default_cell(cfg, grid=True)
    user = {k: parse(k, v) for k, v in flat(cfg.search.space).items()}
    cell = {k: user.get(k, d) for k, d in default_cell(cfg, grid).items()}
    return {**cell, **{k: d for k, d in user.items() if k not in CELL}}


def grid_cells(cfg: Config) -> int:
    """The grid's cells: lr x hidden x every searched key's values (x ``grid.backbones``)."""
    n = len(cfg.grid.backbones or []) or 1
    for d in resolve(cfg, grid=True).values():
        n *= len(d.values or ())
    return n


def searched_keys(cfg: Config) -> list[str]:
    """The dotted config keys the search varies (not ``lr``/``hidden``)."""
    return [k for k in flat(cfg.search.space) if k not in CELL]


def trunk_settings(domains: dict[str, Domain]) -> list[dict[str, Any]]:
    """Every combination of the searched trunk keys' values (``[{}]`` when none is searched):
    one trial data bundle each."""
    import itertools

    keys = [k for k in domains if k in TRUNK_SEARCHABLE]
    combos = itertools.product(*(domains[k].values or () for k in keys))
    return [dict(zip(keys, c, strict=True)) for c in combos]


def trunk_id(values: dict[str, Any]) -> str:
    """The trunk setting of a trial's config (``model.train_last_convs=1``; ``""`` for the
    config's own): which bundle the trial reads."""
    return ",".join(f"{k}={values[k]}" for k in TRUNK_SEARCHABLE if k in values)


def values_text(values: dict[str, Any]) -> str:
    """`` train.epochs=2 model.head_dropout=0.5``: the searched config keys of a trial's config
    or a chosen cell, as the terminal and the work log name them (empty when there are none)."""
    return "".join(f" {k}={v}" for k, v in config_values(values).items())


def config_values(values: dict[str, Any]) -> dict[str, Any]:
    """Of a trial's config or a chosen cell, the searched config keys (dotted names) and values."""
    return {k: v for k, v in values.items() if "." in k}


# How the loader checks a value (``fer_ray.config.with_values``) and a key's annotation
# (``fer_ray.config.field_type``): passed in, so this module does not import the loader
SetValues = Callable[[Any, dict[str, Any]], Any]
FieldType = Callable[[str], Any]


def _key_error(cfg: Config, key: str, field_type: FieldType) -> str | None:
    from fer_ray.config_diff import flatten

    if key in CELL or key in SEARCHABLE or key in TRUNK_SEARCHABLE:
        return None
    where = f"search.space.{key}"
    if field_type(key) is not None:
        why = WHY_NOT.get(key, "a grid trial does not read it")
        return f"{where}: {key} is not a trial hyperparameter ({why}); searchable: " + ", ".join(
            (*CELL, *SEARCHABLE, *TRUNK_SEARCHABLE)
        )
    names = [*CELL, *SEARCHABLE, *flatten(cfg.to_dict())]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{where}: unknown config key '{key}'{hint}"


def _value_error(
    cfg: Config, key: str, domain: Domain, with_values: SetValues, field_type: FieldType
) -> str | None:
    """Every listed value, or both bounds of a range, through the key's ``--set`` checks."""
    where = f"search.space.{key}"
    if key == "model.backbone" and cfg.grid.backbones:
        return f"{where}: grid.backbones already searches architectures; set one of the two"
    if key in TRUNK_SEARCHABLE and domain.values is None:
        return (
            f"{where}: {key} changes the trunk's features, built once per value before the"
            " search: list its values ({grid: [...]} or {choice: [...]})"
        )
    if cfg.search.algorithm == "grid" and domain.values is None:
        return (
            f"{where}: {domain.kind} needs a searcher (search.algorithm: random, optuna, ...);"
            " the grid takes {grid: [...]} or {choice: [...]}"
        )
    if key in CELL:
        ok = all((v > 0 if key == "lr" else float(v).is_integer() and v >= 1)
                 for v in domain.values or domain.args[:2])  # fmt: skip
        return None if ok else f"{where}: {key} must be > 0{' (an integer)' * (key == 'hidden')}"
    tp = field_type(key)
    if domain.values is None:
        want = int if domain.kind in ("randint", "qrandint") else float
        if want not in _scalar_types(tp):
            return f"{where}: {domain.kind} draws {want.__name__}s but {key} is {_name(tp)}"
    for value in domain.values or domain.args[:2]:
        try:
            with_values(cfg, {key: value})
        except ConfigError as e:
            return f"{where}: {value!r} fails {e}"
    return None


def _scalar_types(tp: Any) -> set[type]:
    import typing

    args = typing.get_args(tp) or (tp,)
    return {a for a in args if isinstance(a, type)}


def _name(tp: Any) -> str:
    import typing

    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    return " | ".join(t.__name__ for t in _scalar_types(tp)) or str(tp)


def errors(cfg: Config, with_values: SetValues, field_type: FieldType) -> list[str]:
    """Every problem of ``search.space``, one line each (empty when it can run)."""
    out: list[str] = []
    for key, raw in flat(cfg.search.space).items():
        try:
            domain = parse(key, raw)
        except ConfigError as e:
            out.append(str(e))
            continue
        why = _key_error(cfg, key, field_type) or _value_error(
            cfg, key, domain, with_values, field_type
        )
        if why:
            out.append(why)
    return out
