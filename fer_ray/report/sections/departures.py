"""Where this run departs from the paper it reproduces, when the run's stored files say so.

Hook: any stage's ``summary.json`` (the ensemble's, the grid's, ...) or the run root's
``run.json`` may hold a ``departures`` key; this section collects them all, in stage order,
each stage's entries prefixed with its name. A value may be

* a string, or a list of strings: one entry each;
* a mapping ``{topic: text}``: one entry ``topic: text`` per key;
* a list of mappings with ``what`` / ``ours`` / ``paper`` / ``why`` keys (any subset; or
  ``text``): ``what: ours (paper: paper); why``; other keys print as ``key: value``.

With no entry anywhere the section is absent (``load`` returns ``None``): no heading, no empty
box. On the HTML page the entries are a line of the header (``place = "header"``); in the
Markdown they are a ``## Departures from the paper`` list after the headline.

A root-level departures file (one list for the whole run) is the other planned source: it
needs its name in ``fer_ray.layout`` (where every run file is named) and one more entry in
``sources`` below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_ray import protocol
from fer_ray.layout import DEPARTURES, SUMMARY
from fer_ray.report.page import Block, Glance, h2, ul
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "departures"
place = "header"
TITLE = "Departures from the paper"
KEY = "departures"


def entry(item: Any) -> str:
    """One stored departure as one line."""
    if not isinstance(item, dict):
        return str(item)
    if "text" in item:
        return str(item["text"])
    rest = {k: v for k, v in item.items() if k not in ("what", "ours", "paper", "why")}
    line = str(item.get("what", ""))
    if "ours" in item:
        line += f"{': ' if line else ''}{item['ours']}"
    if "paper" in item:
        line += f" (paper: {item['paper']})"
    if "why" in item:
        line += f"{'; ' if line else ''}{item['why']}"
    extra = "; ".join(f"{k}: {v}" for k, v in rest.items())
    return "; ".join(x for x in (line, extra) if x)


def entries(value: Any) -> list[str]:
    """A ``departures`` value as lines (see the module docstring for the accepted forms)."""
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return [f"{k}: {v}" for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [entry(i) for i in value if i not in (None, "")]
    return [str(value)]


def sources(run: Run) -> list[tuple[str, Any]]:
    """(prefix, stored ``departures`` value) for every file that may hold one."""
    found: list[tuple[str, Any]] = [("", run.info.get(KEY)), ("", run.json(DEPARTURES))]
    for stage in protocol.stages():  # every stage's own departures, in run order
        summary = run.json(stage, SUMMARY)
        if isinstance(summary, dict):
            found.append((stage, summary.get(KEY)))
    return found


def load(run: Run) -> Part | None:
    lines = [
        f"{prefix}: {line}" if prefix else line
        for prefix, value in sources(run)
        for line in entries(value)
    ]
    return Part(facts={"departures": lines}) if lines else None


def plots(part: Part, out: Path) -> None:
    """No plots."""


def blocks(part: Part) -> list[Block]:
    return [h2(TITLE), ul(part.facts["departures"])]


def glance(part: Part) -> list[Glance]:
    return [(TITLE, list(part.facts["departures"]))]
