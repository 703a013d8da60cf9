"""Stored stage results → a report folder. Reads files only, never a trial's memory.

``build_report(run_dir, out_dir)`` is what both the pipeline (at the end of a run) and
``python -m fer_ray.report`` (afterwards, no Ray) call. The page is every registered
section with results, in registration order; nothing here knows a stage.
"""

from __future__ import annotations

from pathlib import Path

from fer_ray.report.page import Block
from fer_ray.report.render import to_html, to_markdown
from fer_ray.report.run import Run, open_run
from fer_ray.report.section import Part
from fer_ray.report.sections import SECTIONS

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


def page_blocks(parts: dict[str, Part]) -> list[Block]:
    return [b for name, part in parts.items() for b in SECTIONS.get(name).blocks(part)]


def write_outputs(parts: dict[str, Part], out: Path) -> None:
    """Every section's tables as CSV and its plots as PNG."""
    for name, part in parts.items():
        for table, df in part.tables.items():
            df.to_csv(out / f"{table}.csv", index=False)
        SECTIONS.get(name).plots(part, out)


def build_report(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write ``report.md``, ``report.html``, tables and plots of ``run_dir`` into ``out_dir``."""
    run = open_run(run_dir)
    parts = load_parts(run)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(parts, out)
    blocks = page_blocks(parts)
    (out / REPORT_MD).write_text(to_markdown(blocks))
    title = f"fer_ray report: {run.config.get('name', '')}"
    (out / REPORT_HTML).write_text(to_html(blocks, title))
    return out
