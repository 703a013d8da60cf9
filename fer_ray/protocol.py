"""The stage protocol: what every stage declares, and the runner's view of the stages as a graph.

A stage declares, in its recipe package (``fer_ray/recipes/<name>/__init__.py``, Ray-free):
its name; the config keys it reads (its own section and other sections' keys); the artifacts
it reads from other stages and the ones it writes (by name); the files it writes in its folder
(``files``: paths relative to the folder, from ``fer_ray.layout``'s constants, which its report
section and the report's test fakes name too); ``enabled(cfg)``; its entry point
``run(ctx)`` as a lazy ``"module:function"``; and optional hooks, also lazy strings:
``preflight(cfg, inputs)`` (fail before Ray starts), ``estimate(cfg, facts) -> (seconds,
lines)`` (the dry run), ``identity(cfg)`` (file contents the config cannot see).

The runner (``fer_ray.pipeline``) orders stages by a topological sort of what they read, turns
on the producers of what an enabled stage reads, fingerprints each stage from its keys and
every upstream fingerprint, and never names a stage. A recipe from another installed package
registers the same way through the entry-point group ``fer_ray.recipes``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import metadata
from typing import TYPE_CHECKING, Any

from fer_ray import layout
from fer_ray.registry import Registry, resolve

if TYPE_CHECKING:
    from fer_ray.config import Config

ENTRY_POINTS = "fer_ray.recipes"  # installed packages add recipes here: name = "pkg.module"
BUILTIN = (  # fer_ray's own recipe packages, in page and run order
    "fer_ray.recipes.core",
    "fer_ray.recipes.descriptors",
    "fer_ray.recipes.rules",
    "fer_ray.recipes.clean",
    "fer_ray.recipes.newfaces",
    "fer_ray.recipes.aumaps",
)


#: What the runner and the Tune plumbing write in any stage's folder, besides the stage's own
#: ``files``; a stage's ``tasks/`` folder (per-task results kept for a resume) is its own too.
RUNNER_FILES = (layout.STARTED, layout.DONE, layout.WORK, layout.ERRORS, layout.RESULTS,
                layout.PROGRESS)  # fmt: skip


def always(cfg: Config) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    """One stage's declaration (see the module docstring)."""

    name: str
    run: str  # "module:function" taking a fer_ray.stages.context.StageContext
    keys: tuple[str, ...] = ()  # config sections or dotted keys it reads
    reads: tuple[str, ...] = ()  # artifacts of other stages
    writes: tuple[str, ...] = ()  # artifacts it makes (its folder is runs/<name>/<stage>)
    files: tuple[str, ...] = ()  # the files it writes in its folder (see ``names``)
    enabled: Callable[[Config], bool] = always
    data_files: bool = False  # its fingerprint covers the data set's files
    experiments: tuple[str, ...] = ()  # Tune experiments besides one named like the stage
    preflight: str | None = None  # "module:function"(cfg, inputs) -> None, raises FerRayError
    estimate: str | None = None  # "module:function"(cfg, facts) -> (seconds, [lines])
    identity: str | None = None  # "module:function"(cfg) -> JSON-able file identity
    choice: str | None = None  # a search's stage: the JSON file (in its folder) of the chosen
    # cell, whose searched config keys (search.space) every stage after it runs with


STAGES: Registry[Stage] = Registry("stage", "pipeline stage")
#: Config sections that recipes add: section name -> a frozen dataclass. It may define
#: ``errors(self) -> list[str]`` (its value checks) and use ``typing.Literal`` for choices.
SECTIONS: Registry[type] = Registry("config section", "config")

#: Report sections that recipes add: (name, "module", the section it goes before or None).
#: The report registers them (``fer_ray.report.sections``); the protocol never imports it.
REPORT: list[tuple[str, str, str | None]] = []

_loaded: list[str] = []


def register(
    *stages: Stage,
    sections: dict[str, type] | None = None,
    report: list[tuple[str, str, str | None]] | None = None,
) -> None:
    """A recipe's registration: its stages, its config sections and its report sections."""
    for name, cls in (sections or {}).items():
        SECTIONS.register(name, cls)
    for s in stages:
        STAGES.register(s.name, s)
    REPORT.extend(report or [])


def load_recipes(extra: Iterable[str] = ()) -> list[str]:
    """Import fer_ray's recipes, those of installed packages (entry points) and ``extra``
    modules, once each; returns the modules loaded so far."""
    found = [ep.value for ep in metadata.entry_points(group=ENTRY_POINTS)]
    for module in (*BUILTIN, *found, *extra):
        if module not in _loaded:
            _loaded.append(module)  # first: a recipe importing another must not loop
            resolve(module, f"recipe {module}")
    return list(_loaded)


def stages() -> list[str]:
    """Every registered stage, in run order."""
    load_recipes()
    return order({n: STAGES.get(n) for n in STAGES})


def producers(specs: dict[str, Stage]) -> dict[str, str]:
    """Artifact -> the stage that writes it; an artifact written twice is a declaration bug."""
    out: dict[str, str] = {}
    for name, s in specs.items():
        for a in s.writes:
            if a in out:
                raise ValueError(f"artifact {a!r} is written by both {out[a]} and {name}")
            out[a] = name
    return out


def parents(specs: dict[str, Stage]) -> dict[str, list[str]]:
    """Stage -> the stages whose artifacts it reads; an artifact nobody writes fails."""
    made = producers(specs)
    out = {}
    for name, s in specs.items():
        missing = [a for a in s.reads if a not in made]
        if missing:
            raise ValueError(f"stage {name} reads {', '.join(missing)}, which no stage writes")
        out[name] = sorted({made[a] for a in s.reads})
    return out


def order(specs: dict[str, Stage]) -> list[str]:
    """A topological order of ``specs`` by what they read; among stages ready at once,
    registration order, so the order is stable. A cycle fails naming its stages."""
    ups = parents(specs)
    done: list[str] = []
    todo = list(specs)
    while todo:
        ready = [s for s in todo if all(p in done for p in ups[s])]
        if not ready:
            raise ValueError(f"stages read each other's artifacts in a cycle: {', '.join(todo)}")
        done.append(ready[0])
        todo.remove(ready[0])
    return done


def downstream(specs: dict[str, Stage], stage: str) -> set[str]:
    """The stages that read ``stage``'s artifacts, directly or through other stages."""
    ups = parents(specs)
    out: set[str] = set()
    for name in order(specs):
        if any(p == stage or p in out for p in ups[name]):
            out.add(name)
    return out


def choices(specs: dict[str, Stage]) -> dict[str, tuple[str, str]]:
    """Stage -> (the upstream search stage, its choice file) whose chosen config it runs with."""
    out: dict[str, tuple[str, str]] = {}
    for name, spec in specs.items():
        if spec.choice:
            out.update({s: (name, spec.choice) for s in downstream(specs, name)})
    return out


def active(cfg: Config, specs: dict[str, Stage]) -> dict[str, bool]:
    """Whether each stage runs for ``cfg``: enabled by the config, or needed by a stage that
    runs (it writes what that one reads); a stage whose inputs are not made does not run."""
    ups = parents(specs)
    on = {n: bool(s.enabled(cfg)) for n, s in specs.items()}
    for name in reversed(order(specs)):  # readers first: their demand turns producers on
        if on[name]:
            for p in ups[name]:
                on[p] = True
    for name in order(specs):
        on[name] = on[name] and all(on[p] for p in ups[name])
    return on


def _pick(d: dict[str, Any], dotted: str) -> Any:
    for k in dotted.split("."):
        d = d[k]
    return d


def stage_inputs(cfg: Config, inputs: dict[str, Any] | None = None) -> dict[str, dict]:
    """Per stage, what its fingerprint covers of its own: its config keys, the data's files
    when it reads them, and its ``identity`` hook's value."""
    d, out = cfg.to_dict(), {}
    inputs = inputs or {}
    for name in stages():
        spec = STAGES.get(name)
        picked = {k: _pick(d, k) for k in spec.keys}
        if spec.data_files:
            picked["files"] = inputs.get("data")
        if spec.identity and spec.enabled(cfg):
            picked["identity"] = inputs.get(f"identity:{name}")
        out[name] = json.loads(json.dumps(picked, sort_keys=True, default=str))
    return out


def fingerprints(cfg: Config, inputs: dict[str, Any] | None = None) -> dict[str, str]:
    """Chained hashes: a stage's covers its own inputs and every upstream stage's fingerprint,
    so a change reruns exactly the stages that read it, directly or through others."""
    picked, out = stage_inputs(cfg, inputs), {}
    specs = {n: STAGES.get(n) for n in stages()}
    ups = parents(specs)
    for name in order(specs):
        blob = json.dumps(picked[name], sort_keys=True, default=str)
        chain = "".join(out[p] for p in ups[name])
        out[name] = hashlib.sha256((chain + blob).encode()).hexdigest()[:16]
    return out


def names(entry: str, path: str) -> bool:
    """Whether a declared file ``entry`` names ``path``, both "/"-separated and relative to the
    stage's folder: in ``entry``, ``*`` stands for a part that varies (a member, a backbone, a
    format) within one folder level."""
    pattern, parts = entry.split("/"), path.split("/")
    return len(pattern) == len(parts) and all(map(fnmatchcase, parts, pattern))


def declared(spec: Stage, path: str) -> str | None:
    """The entry of ``spec.files`` (or of ``RUNNER_FILES``) that names ``path``, or None."""
    return next((e for e in (*spec.files, *RUNNER_FILES) if names(e, path)), None)


def hook(spec: Stage, which: str) -> Callable[..., Any] | None:
    """A stage's optional hook, imported on first use."""
    target = getattr(spec, which)
    return resolve(target, f"stage {spec.name} {which}") if target else None
