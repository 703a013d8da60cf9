"""Blocks → Markdown and HTML.

The page is built once as blocks and written in both formats by these functions, so the
Markdown and the HTML always say the same thing. ``to_markdown`` writes the blocks in section
order. ``to_page`` writes ``report.html``: one self-contained file (figures as ``data:`` URIs,
style and script inline, a Content-Security-Policy that lets nothing else load) with a header
that leads with the result (the sections' ``Stat`` numbers, large, and the ``FIRST_SCREEN``
figures) and then sums the run up (the sections' glance entries), a table of contents, one
``<section>`` per section in order (the provenance and config last), and tables sortable by a
click on a column heading. ``to_html`` writes a bare page of some blocks (a section's, in a test).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from fer_ray.report.assets import CSP, SCRIPT, STYLE
from fer_ray.report.page import FIRST_SCREEN, GLANCE_ORDER, Block, Glance, Shown, Stat


def cell(v: Any) -> str:
    """One table cell as both formats print it: floats at 4 decimals."""
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def md_table(df: pd.DataFrame) -> str:
    """A pipe table; floats at 4 decimals like the HTML's."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def to_markdown(blocks: list[Block]) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h1":
            out.append(f"# {b[1]}")
        elif kind == "h2":
            out.append(f"## {b[1]}")
        elif kind == "p":
            out.append(b[1])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in b[1]))
        elif kind == "code":
            out.append(f"```\n{b[1].rstrip()}\n```")
        elif kind == "details":
            out.append(f"{b[1]}:\n\n```\n{b[2].rstrip()}\n```")
        elif kind == "table":
            out.append(md_table(b[1]))
        elif kind == "img":
            out.append(f"![{b[2]}]({b[1]})\n\n*{b[2]}*")
        elif kind == "fold":
            out.append(f"{b[1]}:\n\n" + to_markdown(b[2]).rstrip())
    return "\n\n".join(out) + "\n"


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
#: ``[text](href)``, as Markdown writes a link; ``href`` is already URL-quoted (no spaces)
_LINK = re.compile(r"\[([^\]`]+)\]\(([^)\s]+)\)")


def inline(text: str) -> str:
    """Escaped text with the blocks' ``code``, ``**bold**`` and ``[link](href)`` spans as HTML."""
    out = _LINK.sub(r'<a href="\2">\1</a>', html.escape(text))
    out = _CODE.sub(r"<code>\1</code>", out)
    return _BOLD.sub(r"<strong>\1</strong>", out).replace("**", "")


def plain(text: str) -> str:
    """The text without its span marks (a contents entry, a title)."""
    return text.replace("**", "").replace("`", "")


def heading(name: str) -> str:
    """A column heading that may wrap after each ``_`` (``vote_recall_low``), so a table of
    many columns fits the page instead of scrolling sideways."""
    return html.escape(name).replace("_", "_<wbr>")


def table_cell(v: Any) -> str:
    """A cell's HTML: escaped text, or a link where the whole cell is ``[text](href)``."""
    text = cell(v)
    if isinstance(v, str) and _LINK.fullmatch(v):
        return _LINK.sub(r'<a href="\2">\1</a>', html.escape(text))
    return html.escape(text)


def html_table(df: pd.DataFrame) -> str:
    """The table as the Markdown shows it, sortable: each heading is a button."""
    head = "".join(
        f'<th scope="col"><button type="button">{heading(str(c))}</button></th>' for c in df.columns
    )
    rows = "".join(
        "<tr>" + "".join(f"<td>{table_cell(v)}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    table = f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    return f'<div class="scroll">{table}</div>'


def data_uri(path: Path) -> str:
    """A figure file as a ``data:`` URI, so the page needs no file beside it."""
    mime = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}
    kind = mime.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def html_blocks(blocks: list[Block], src: Callable[[str], str]) -> str:
    """Blocks as HTML; ``src`` turns an image's file name into what its ``src`` says."""
    body = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{inline(b[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{inline(b[1])}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in b[1]) + "</ul>")
        elif kind == "code":
            body.append(f"<pre><code>{html.escape(b[1])}</code></pre>")
        elif kind == "details":
            body.append(
                f"<details><summary>{inline(b[1])}:</summary>"
                f"<pre><code>{html.escape(b[2])}</code></pre></details>"
            )
        elif kind == "table":
            body.append(html_table(b[1]))
        elif kind == "fold":
            inner = html_blocks(b[2], src)
            body.append(f"<details><summary>{inline(b[1])}</summary>{inner}</details>")
        elif kind == "img":
            body.append(
                f'<figure><img src="{html.escape(src(b[1]))}" alt="{html.escape(b[2])}" '
                f'data-file="{html.escape(b[1])}"><figcaption>{html.escape(b[2])}</figcaption>'
                "</figure>"
            )
    return "".join(body)


def _document(
    title: str, body: str, self_contained: bool = True, refresh: int | None = None
) -> str:
    """The HTML document; a self-contained one carries the policy that lets nothing load; with
    ``refresh`` (seconds) the browser reloads it that often (a partial report's)."""
    csp = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' if self_contained else ""
    if refresh:
        csp += f'<meta http-equiv="refresh" content="{int(refresh)}">'
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>{csp}"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}<script>{SCRIPT}</script></body></html>\n"
    )


def to_html(blocks: list[Block], title: str, folder: Path | None = None) -> str:
    """A bare page of ``blocks`` (no header, no contents); images embedded from ``folder``,
    or linked by file name when there is none."""
    if folder is None:
        return _document(title, html_blocks(blocks, lambda f: f), self_contained=False)
    return _document(title, html_blocks(blocks, lambda f: data_uri(folder / f)))


def glance_entries(shown: list[Shown]) -> list[Glance]:
    """Every section's glance entries, in ``GLANCE_ORDER`` and then section order."""
    entries = [g for s in shown for g in s.glance]
    rank = {label: i for i, label in enumerate(GLANCE_ORDER)}
    return sorted(entries, key=lambda g: rank.get(g[0], len(rank)))


def html_result(stats: list[Stat], notes: list[str] | None = None) -> str:
    """The result's numbers, large, each with its label above and its interval below; spaces
    between the parts so that the page's text reads as the Markdown's line; then the lines
    that qualify them (``notes``)."""
    if not stats:
        return ""
    cells = "".join(
        f'<div class="stat"><span class="label">{inline(label)}</span> '
        f'<span class="value">{html.escape(value)}</span> '
        f'<span class="detail">({inline(detail)})</span></div>'
        for label, value, detail in stats
    )
    said = "".join(f'<p class="note">{inline(n)}</p>' for n in notes or [])
    return f'<div class="result" aria-label="Result">{cells}</div>{said}'


def html_first_screen(shown: list[Shown], src: Callable[[str], str]) -> str:
    """The ``FIRST_SCREEN`` figures the body shows, side by side (again, at the top)."""
    figures = {b[1]: b for s in shown if not s.in_header for b in s.blocks if b[0] == "img"}
    picked = [figures[f] for f in FIRST_SCREEN if f in figures]
    if not picked:
        return ""
    return '<div class="keyfigs">' + html_blocks(picked, src) + "</div>"


def html_header(
    title: str,
    entries: list[Glance],
    stats: list[Stat] | None = None,
    figures: str = "",
    notes: list[str] | None = None,
) -> str:
    items = []
    for i, (label, value) in enumerate(entries):
        if isinstance(value, str):
            dd = inline(value)
        else:
            dd = "<ul>" + "".join(f"<li>{inline(v)}</li>" for v in value) + "</ul>"
        lead = ' class="lead"' if i == 0 else ""
        items.append(f"<dt>{html.escape(label)}</dt><dd{lead}>{dd}</dd>")
    glance = f'<dl class="glance">{"".join(items)}</dl>' if items else ""
    result = html_result(stats or [], notes)
    return f"<header><h1>{html.escape(title)}</h1>{result}{figures}{glance}</header>"


def html_contents(body: list[Shown]) -> str:
    links = [
        f'<li><a href="#{html.escape(s.name)}">{html.escape(plain(h[0][1]))}</a></li>'
        for s in body
        if (h := [b for b in s.blocks if b[0] == "h2"])
    ]
    return (
        '<nav class="toc" aria-label="Contents"><h2>Contents</h2>'
        f"<ol>{''.join(links)}</ol><p>Click a column heading to sort a table. Every table is "
        "also a CSV file and every figure a PNG file in this report's folder.</p></nav>"
    )


def to_page(shown: list[Shown], title: str, folder: Path, refresh: int | None = None) -> str:
    """The report page: header (glance), contents, then each body section in order.

    Figures are read from ``folder`` (where ``plots`` wrote them) and embedded. ``refresh``:
    reload every that many seconds (a partial report, rewritten while the run goes on)."""
    body = [s for s in shown if not s.in_header]
    src = lambda f: data_uri(folder / f)  # noqa: E731
    sections = "".join(
        f'<section id="{html.escape(s.name)}">{html_blocks(s.blocks, src)}</section>' for s in body
    )
    stats = [stat for s in shown for stat in s.result]
    notes = [n for s in shown for n in s.notes]
    first = html_first_screen(shown, src)
    header = html_header(title, glance_entries(shown), stats, first, notes)
    page = f"{header}{html_contents(body)}<main>{sections}</main>"
    return _document(title, page, refresh=refresh)
