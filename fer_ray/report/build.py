"""Stored stage results → a report folder. Reads files only, never a trial's memory.

``build_report(run_dir, out_dir)`` is what both the pipeline (at the end of a run) and
``python -m fer_ray.report`` (afterwards, no Ray) call. The page is every registered
section with results, in registration order; nothing here knows a stage. A section's optional
``glance``, ``result`` and ``place`` (see ``fer_ray.report.section``) default to none,
none and ``"body"``; a section with ``collect`` is made after the others, from them.
"""

from __future__ import annotations

from pathlib import Path

from fer_ray.report.page import Block, Shown
from fer_ray.report.render import to_markdown, to_page
from fer_ray.report.run import Run, open_run
from fer_ray.report.section import Part
from fer_ray.report.sections import SECTIONS
from fer_ray.report.sections import header as header_section

REPORT_MD = "report.md"
REPORT_HTML = "report.html"


def load_parts(run: Run) -> dict[str, Part]:
    """Each section that has results, by name, in page order."""
    parts = {}
    for name in SECTIONS:
        part = SECTIONS.get(name).load(run)
        if part is not None:
            parts[name] = part
    return parts


def with_collected(run: Run, out: Path, parts: dict[str, Part]) -> dict[str, Part]:
    """``parts`` and, each in its place in the page order, the part of every section that
    sums up the others (an optional ``collect``; e.g. ``sections.files``, which links what
    they read and wrote from the report folder ``out``)."""
    for name in SECTIONS:
        collect = getattr(SECTIONS.get(name), "collect", None)
        if collect is not None:
            parts = {**parts, name: collect(run, out, parts)}
    return {name: parts[name] for name in SECTIONS if name in parts}


def page_blocks(parts: dict[str, Part]) -> list[Block]:
    return [b for name, part in parts.items() for b in SECTIONS.get(name).blocks(part)]


def shown(parts: dict[str, Part]) -> list[Shown]:
    """Each section with results as the HTML page shows it, in page order."""
    out = []
    for name, part in parts.items():
        section = SECTIONS.get(name)
        glance = getattr(section, "glance", None)
        result = getattr(section, "result", None)
        notes = getattr(section, "notes", None)
        out.append(
            Shown(
                name,
                section.blocks(part),
                glance=glance(part) if glance else [],
                in_header=getattr(section, "place", "body") == "header",
                result=result(part) if result else [],
                notes=notes(part) if notes else [],
            )
        )
    return out


def write_outputs(parts: dict[str, Part], out: Path) -> None:
    """Every section's tables as CSV and its plots as PNG."""
    for name, part in parts.items():
        for table, df in part.tables.items():
            df.to_csv(out / f"{table}.csv", index=False)
        SECTIONS.get(name).plots(part, out)


def build_report(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write ``report.md``, ``report.html``, tables and plots of ``run_dir`` into ``out_dir``."""
    run = open_run(run_dir)
    out = Path(out_dir)
    parts = with_collected(run, out, load_parts(run))
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(parts, out)
    page = shown(parts)
    (out / REPORT_MD).write_text(to_markdown([b for s in page for b in s.blocks]))
    title = f"fer_ray report: {run.config.get('name', run.root.name)}"
    header = parts.get("header")
    if header is not None and header.facts.get("partial"):  # the run goes on: say so first
        title += " (partial: run in progress or unfinished)"
    refresh = (
        header_section.REFRESH_S if header is not None and header.facts.get("partial") else None
    )
    (out / REPORT_HTML).write_text(to_page(page, title, out, refresh=refresh))
    return out
