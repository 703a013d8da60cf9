"""The run's time, estimated and measured, per stage: ``runs/<name>/timing.json``.

Every invocation of a run that runs a stage records, before its first stage, what the dry run
would have estimated for it (per stage: the probe's figure and the calibrated one), and after
each stage the seconds it took (the same as its ``done.json``), then Ray's start and the
report's. A user compares the two there, in the terminal at the end of the run, and in the
report's provenance; the dry run reads them back to calibrate its next estimate.

Why calibrate from earlier runs, on top of the probe: the probe (``fer_ray.plan.probe``)
measures the per-image cost of training on this machine now, load included, but not what Ray
adds (actors, checkpoints, reporting, processes competing for the cores) nor how the stages'
work overlaps; a stage's measured/estimated ratio on an earlier run on the same machine does,
and it carries over to another config of the same shape because both the probe's figure and
the overheads scale with the same counts (trials, epochs, images). Without an earlier run the
probe's figure is the estimate. Ray-free: the report imports it.
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_ray import files, layout

TIMING = layout.TIMING  # run root: per invocation, the estimate and the measured seconds
KEEP = 20  # invocations kept per run (the oldest go first)
NEAREST = 3  # earlier measurements a stage's factor is the median of (closest in size)
SPAN = 4.0  # ... among those whose probe figure is within this factor of the one asked
#: How the probe times (fer_ray.estimate.probe): ratios measured against another way of
#: probing do not apply, so an earlier run calibrates only when it was probed the same way.
METHOD = "fastest-step-1"
RAY_START = "(ray start)"  # rows that are no stage: what the run pays around its stages
REPORT = "(report)"


@dataclass
class Row:
    """One line of the estimate table: a stage that runs (or ``RAY_START``/``REPORT``)."""

    stage: str
    action: str  # run | resume | skip | "" (an overhead row)
    probe_s: float | None  # the probe's figure (None: the stage declares no estimate)
    seconds: float | None  # the estimate: probe_s x factor, or earlier runs' measured seconds
    basis: str  # how: probe, calibrated from N earlier runs, skipped, ...
    parts: dict[str, float] = field(default_factory=dict)  # e.g. grid: features + grid


def machine(where: str) -> dict[str, Any]:
    """What an earlier run must share with this one for its ratios to apply."""
    return {"host": platform.node(), "cpus": os.cpu_count() or 1, "where": where,
            "method": METHOD}  # fmt: skip


def _same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("host", "cpus", "where", "method"))


def read(root: Path) -> list[dict[str, Any]]:
    """A run's recorded invocations, oldest first; [] when it has none or the file is damaged
    (a timing record is never worth stopping a run or a dry run for)."""
    try:
        data = files.read_json(Path(root) / TIMING)
    except (OSError, ValueError):
        return []
    runs = data.get("invocations") if isinstance(data, dict) else None
    return [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []


def earlier(runs_dir: Path, here: dict[str, Any]) -> list[dict[str, Any]]:
    """Every recorded invocation under ``runs_dir`` made on this machine (``machine``)."""
    out: list[dict[str, Any]] = []
    if not Path(runs_dir).is_dir():
        return out
    for path in sorted(Path(runs_dir).glob(f"*/{TIMING}")):
        out += [r for r in read(path.parent) if _same_machine(r.get("machine", {}), here)]
    return out


def ratios(invocations: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Per stage: (the probe's figure, measured/probe) of every stage that ran from the start
    (a resumed stage's seconds are only its remainder) and finished."""
    out: dict[str, list[tuple[float, float]]] = {}
    for inv in invocations:
        measured = inv.get("measured") or {}
        for row in inv.get("stages") or []:
            name, probe_s, s = row.get("stage"), row.get("probe_s"), measured.get(row.get("stage"))
            if row.get("action") not in ("run", "") or not probe_s or not s or probe_s <= 0:
                continue
            out.setdefault(name, []).append((float(probe_s), float(s) / float(probe_s)))
    return out


def measured_only(invocations: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per stage that declares no estimate: the seconds it took on earlier runs."""
    out: dict[str, list[float]] = {}
    for inv in invocations:
        measured = inv.get("measured") or {}
        for row in inv.get("stages") or []:
            s = measured.get(row.get("stage"))
            if row.get("probe_s") is None and row.get("action") == "run" and s:
                out.setdefault(row["stage"], []).append(float(s))
    return out


def _median(values: list[float]) -> float:
    v = sorted(values)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def calibrate(rows: list[Row], invocations: list[dict[str, Any]]) -> list[Row]:
    """Each row's estimate: its probe figure times the median measured/probe ratio of the
    ``NEAREST`` earlier runs of that stage closest to it in size (log seconds; only those
    within ``SPAN`` times its size: a smoke run's ratio says little about a long run), or the
    probe's figure when no earlier run measured one like it; a stage without an estimate hook
    takes the median of its earlier measured seconds. Rows that do not run keep 0."""
    by_stage, plain = ratios(invocations), measured_only(invocations)
    out = []
    for r in rows:
        if r.action == "skip":
            out.append(Row(r.stage, r.action, 0.0, 0.0, "done: skipped", {}))
            continue
        seen = [
            (p, f)
            for p, f in by_stage.get(r.stage, [])
            if r.probe_s and abs(math.log(p / r.probe_s)) <= math.log(SPAN)
        ]
        if r.probe_s is None:
            s = plain.get(r.stage)
            out.append(
                Row(r.stage, r.action, None, _median(s), f"as measured in {len(s)} earlier run(s)")
                if s
                else Row(r.stage, r.action, None, None, "not estimated (no estimate hook)")
            )
            continue
        if not seen or r.probe_s <= 0:
            basis = r.basis or "probe"
            out.append(Row(r.stage, r.action, r.probe_s, r.probe_s, basis, dict(r.parts)))
            continue
        near = sorted(seen, key=lambda pr: abs(math.log(pr[0] / r.probe_s)))[:NEAREST]
        factor = _median([f for _, f in near])
        parts = {k: v * factor for k, v in r.parts.items()}
        basis = f"probe x {factor:.2f} (measured/probe of {len(near)} earlier run(s) here)"
        out.append(Row(r.stage, r.action, r.probe_s, r.probe_s * factor, basis, parts))
    return out


def total(rows: list[Row]) -> float:
    return sum(r.seconds or 0.0 for r in rows)


def table(rows: list[Row]) -> list[str]:
    """The estimate per stage, as the dry run and the run print it."""

    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    head = f"  {'stage':<13} {'action':<7} {'probe s':>8} {'estimate s':>11}  basis"
    lines = [head]
    lines += [
        f"  {r.stage:<13} {r.action:<7} {s(r.probe_s):>8} {s(r.seconds):>11}  {r.basis}"
        for r in rows
    ]
    lines.append(f"  {'total':<13} {'':<7} {'':>8} {total(rows):>11.0f}")
    return lines


def start(
    root: Path, rows: list[Row], where: str, note: str = "", busy_total_s: float | None = None
) -> None:
    """Record this invocation's estimate (before its first stage)."""
    runs = read(root)[-(KEEP - 1) :]
    runs.append(
        {
            "started": time.strftime("%F %T"),
            "machine": machine(where),
            "note": note,
            "stages": [
                {
                    "stage": r.stage,
                    "action": r.action,
                    "probe_s": r.probe_s,
                    "estimate_s": r.seconds,
                    "basis": r.basis,
                }
                for r in rows
            ],  # fmt: skip
            "estimate_total_s": total(rows),
            "busy_estimate_total_s": busy_total_s,  # the probe's median steps, uncalibrated
            "measured": {},
        }
    )
    files.write_json(Path(root) / TIMING, {"invocations": runs})


def measured(root: Path, what: str, seconds: float) -> None:
    """Record what ``what`` (a stage, ``RAY_START``, ``REPORT`` or ``"total"``) took in this
    invocation, the last one ``start`` recorded."""
    runs = read(root)
    if not runs:
        return
    runs[-1].setdefault("measured", {})[what] = round(float(seconds), 2)
    files.write_json(Path(root) / TIMING, {"invocations": runs})


def comparison(inv: dict[str, Any]) -> list[dict[str, Any]]:
    """One invocation's rows: what, estimated seconds, measured seconds, measured/estimated."""
    measured = inv.get("measured") or {}
    out = []
    for row in inv.get("stages") or []:
        if row.get("action") == "skip":
            continue
        est, got = row.get("estimate_s"), measured.get(row["stage"])
        out.append({"stage": row["stage"], "estimated_s": est, "measured_s": got,
                    "ratio": got / est if est and got is not None else None})  # fmt: skip
    est, got = inv.get("estimate_total_s"), measured.get("total")
    out.append({"stage": "total", "estimated_s": est, "measured_s": got,
                "ratio": got / est if est and got is not None else None})  # fmt: skip
    return out


def comparison_lines(inv: dict[str, Any]) -> list[str]:
    """The terminal's lines at the end of a run: estimated vs measured, per stage."""

    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    lines = [f"  {'stage':<13} {'estimated s':>11} {'measured s':>11} {'measured/est':>13}"]
    for r in comparison(inv):
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(
            f"  {r['stage']:<13} {s(r['estimated_s']):>11} {s(r['measured_s']):>11} {ratio:>13}"
        )
    return lines
