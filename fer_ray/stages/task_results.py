"""What the stages that fan out one Ray task per unit share about a task's result.

A task returns its result with where it ran and how long it took (``timed``); the driver
stores each result as it arrives (``store_json``), so an interrupted stage redoes only the
missing tasks; ``work.csv`` gets one ``work_row`` per task.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fer_ray import files
from fer_ray.stages.cluster import node_info

WHERE = ("node_id", "node_ip", "seconds")


def timed(fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``fn(*args, **kwargs)``'s dict plus the node it ran on and its seconds."""
    t0 = time.time()
    out = fn(*args, **kwargs)
    return {**out, **node_info(), "seconds": round(time.time() - t0, 3)}


def store_json(dst: Path, result: dict[str, Any]) -> str:
    """``drain``'s store callback for a JSON result: written atomically, nothing to say."""
    files.write_json(dst, result)
    return ""


def work_row(unit: str, result: dict[str, Any]) -> dict[str, Any]:
    """One ``work.csv`` row: what the task did, where and how long."""
    return {"unit": unit, **{k: result[k] for k in WHERE}}
