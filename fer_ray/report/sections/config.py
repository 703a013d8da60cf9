"""The config and command that made the run: a config is the whole truth of a run.

The page shows only the keys whose values differ from fer_ray's defaults (flattened to dotted
keys by ``fer_ray.config_diff.flatten``, each with its default beside it), so the few choices
that make this run are readable at a glance; the whole saved config (``config.yaml`` in the run
directory) follows, folded away in the HTML (a ``details`` block).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from fer_ray.config_diff import flatten
from fer_ray.layout import CONFIG
from fer_ray.report.page import Block, code, details, h2, p
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "config"
#: The default of a key that fer_ray's defaults lack (a recipe's key, or an older run's).
NO_DEFAULT = object()


@cache
def defaults() -> dict[str, Any]:
    """fer_ray's default config as flat dotted keys; empty when it cannot be built here."""
    from fer_ray import config as config_mod

    try:
        return flatten(config_mod.from_dict({}).to_dict())
    except Exception:  # noqa: BLE001 - a report still shows the whole config without them
        return {}


def _value(v: Any) -> str:
    """A value as YAML writes it inline: ``[0.005, 0.0005]``, ``true``, ``x0.2``."""
    text = yaml.safe_dump(v, default_flow_style=True, width=10**6)
    return text.strip().removesuffix("...").strip()


def differences(cfg: dict[str, Any], base: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, value, default)`` for each dotted key of ``cfg`` whose value is not the default,
    in the config's order; ``default`` is ``NO_DEFAULT`` for a key the defaults lack."""
    return [
        (k, v, base.get(k, NO_DEFAULT))
        for k, v in flatten(cfg).items()
        if k not in base or base[k] != v
    ]


def diff_text(diff: list[tuple[str, Any, Any]]) -> str:
    """One line per differing key: ``train.epochs: 3  # default: 6``."""
    lines = [
        f"{k}: {_value(v)}  # " + ("no default" if d is NO_DEFAULT else f"default: {_value(d)}")
        for k, v, d in diff
    ]
    return "\n".join(lines) if lines else "(every key at its default)"


def load(run: Run) -> Part:
    """Always present: ``open_run`` refuses a directory without a config."""
    base = defaults()
    return Part(
        facts={
            "config": run.config,
            "command": run.info.get("command", "?"),
            "diff": differences(run.config, base) if base else None,
            "n_keys": len(base),
        }
    )


def plots(part: Part, out: Path) -> None:
    """No plots."""


def blocks(part: Part) -> list[Block]:
    whole = yaml.safe_dump(part.facts["config"], sort_keys=False)
    command = p(f"Command: `{part.facts['command']}`")
    diff = part.facts.get("diff")
    if diff is None:  # the defaults could not be built: the whole config, as before
        return [h2("Config"), code(whole), command]
    return [
        h2("Config"),
        p(
            f"The {len(diff)} keys that differ from fer_ray's defaults (of "
            f"{part.facts['n_keys']}), each with its default; every other key is at its "
            f"default. The whole config is `{CONFIG}` in the run directory, and below."
        ),
        code(diff_text(diff)),
        command,
        details(f"The whole config ({CONFIG})", whole),
    ]
