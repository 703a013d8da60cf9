"""Tune's per-trial files, read without Ray: ``result.json`` (one JSON line per report),
``params.json`` (the trial's config) and the TensorBoard event files beside them.

Why a reader of Tune's files: the live report shows a Tune stage's progress while it runs, and
the Parquet table of every result is written from the same files, so neither needs the Tune
driver's memory (the report never imports Ray). Storage may be a local folder or a URI Tune
wrote to (``s3://...``); URIs go through pyarrow's file systems, which Ray's storage uses too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fer_ray.layout import RunPaths

RESULT = "result.json"
PARAMS = "params.json"
EVENTS_PREFIX = "events.out.tfevents."


@dataclass
class TrialLog:
    """One trial's folder: its name, config and every result it reported so far."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


def experiment_path(root: Path, config: dict[str, Any], experiment: str) -> str:
    """Where the run whose saved config is ``config`` keeps Tune experiment ``experiment``
    (the same rule as ``RunPaths.experiment``, from the saved config instead of a Config)."""
    out = config.get("output") or {}
    paths = RunPaths(Path(root), out.get("storage_path"), config.get("name", Path(root).name))
    return paths.experiment(experiment)


def _listing(path: str) -> Iterator[tuple[str, bool]]:
    """(name, is a folder) of every entry under ``path``; nothing when it does not exist."""
    if "://" not in path:
        p = Path(path)
        if p.is_dir():
            yield from ((c.name, c.is_dir()) for c in sorted(p.iterdir()))
        return
    import pyarrow.fs as pafs

    fs, base = pafs.FileSystem.from_uri(path)
    try:
        infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    except OSError:
        return
    for info in sorted(infos, key=lambda i: i.base_name):
        yield info.base_name, info.type == pafs.FileType.Directory


def _read_text(path: str) -> str | None:
    if "://" not in path:
        p = Path(path)
        return p.read_text(errors="replace") if p.is_file() else None
    import pyarrow.fs as pafs

    fs, p = pafs.FileSystem.from_uri(path)
    try:
        with fs.open_input_stream(p) as f:
            return f.read().decode(errors="replace")
    except (OSError, FileNotFoundError):
        return None


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every complete JSON line; a line Tune is still writing is skipped, not an error."""
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def read_trials(experiment: str) -> list[TrialLog]:
    """Every trial folder of a Tune experiment that holds a ``result.json``, in name order."""
    out = []
    for name, is_dir in _listing(experiment):
        if not is_dir:
            continue
        text = _read_text(f"{experiment.rstrip('/')}/{name}/{RESULT}")
        if text is None:
            continue
        params = _read_text(f"{experiment.rstrip('/')}/{name}/{PARAMS}")
        try:
            config = json.loads(params) if params else {}
        except json.JSONDecodeError:
            config = {}
        out.append(TrialLog(name, config if isinstance(config, dict) else {}, _json_lines(text)))
    return out


def results_frame(trials: list[TrialLog], experiment: str = "") -> pd.DataFrame:
    """One row per reported result: ``experiment``, ``trial``, ``config/<key>`` columns, then
    the metrics as reported (Tune's bookkeeping included: ``time_total_s``, ``node_ip`` ...)."""
    rows = []
    for t in trials:
        cfg = {f"config/{k}": v for k, v in t.config.items()}
        for r in t.rows:
            metrics = {k: v for k, v in r.items() if k != "config"}
            rows.append({"experiment": experiment, "trial": t.name, **cfg, **metrics})
    return pd.DataFrame(rows)


def event_files(experiment: str) -> list[Path]:
    """TensorBoard event files of a local experiment (one per trial, Tune's TBX logger)."""
    if "://" in experiment or not Path(experiment).is_dir():
        return []
    return sorted(Path(experiment).glob(f"*/{EVENTS_PREFIX}*"))
