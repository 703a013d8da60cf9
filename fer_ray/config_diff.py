"""Nested config dicts as flat dotted keys: what comparing two configs key by key needs.

Pure (no Ray, no stages): the runner names the keys that changed since a stage ran, and
``fer-ray compare`` lists the keys whose values differ between runs, from the same flattening.
"""

from __future__ import annotations

from typing import Any


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.1}}`` → ``{"train.lr": 0.1}``; a non-dict leaf is a value (lists
    stay whole), and a non-dict ``d`` is ``{prefix: d}``."""
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}
