"""The page's building blocks: what a section returns and what ``render`` writes.

A block is a plain tuple so that a section needs no renderer to build one and a test can
match on ``block[0]``: ``("h1"|"h2"|"p"|"code", text)``, ``("ul", [text, ...])``,
``("table", DataFrame)``, ``("img", file name in the report folder, caption)`` or
``("details", summary, text)`` (a code block the HTML folds away under its summary line) or
``("fold", summary, [block, ...])`` (blocks the HTML folds away: a long table). Text may use
``**bold**``, ``code`` and ``[text](href)`` spans (the HTML shows them as bold, code and a
link; ``link`` makes one to a file relative to the report folder).

The HTML page also has a header that sums the run up "at a glance": each section may give
``Glance`` entries (a label and a line, or a list of lines) and ``Stat`` numbers (the result,
shown large at the top of the header, with the ``FIRST_SCREEN`` figures beside); ``Shown`` is
one section as the page shows it: its blocks, glance entries, numbers (with ``notes``, the lines that
qualify them), and whether it lives in that header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pandas as pd

Block = tuple[Any, ...]
#: ``(label, text)`` or ``(label, [text, ...])``: one line of the page header's summary.
Glance = tuple[str, str | list[str]]
#: ``(label, value, detail)``: one of the result's big numbers at the top of the HTML page,
#: e.g. ``("Soft-vote ensemble, test accuracy", "50.00 %", "95 % interval [28.57, 71.43]")``.
Stat = tuple[str, str, str]

#: The page header's labels in the order the header lists them; other labels follow, in
#: section order. The header reads: what the run found, where it leaves the paper, on what.
GLANCE_ORDER = ("Headline", "Departures from the paper", "Data", "Weights", "Stages")

#: The figures the HTML page also shows on its first screen, under the result's numbers, when
#: the run drew them (file names: ``sections.grid.HEATMAP`` and ``sections.per_class.CONFUSION``,
#: spelt out here so that rendering imports no section): which lr and hidden won, and where the
#: vote's errors are.
FIRST_SCREEN = ("grid_heatmap.png", "confusion_vote.png")


@dataclass
class Shown:
    """One section as the page shows it.

    ``in_header``: the section lives in the HTML page's header, which shows its ``glance``
    (so that glance must say everything its blocks say); otherwise its blocks form a
    ``<section>`` of the page body with an entry in the contents. Markdown shows every
    section's blocks in section order either way.
    """

    name: str
    blocks: list[Block]
    glance: list[Glance] = field(default_factory=list)
    in_header: bool = False
    result: list[Stat] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def h1(text: str) -> Block:
    return ("h1", text)


def h2(text: str) -> Block:
    return ("h2", text)


def p(text: str) -> Block:
    return ("p", text)


def code(text: str) -> Block:
    return ("code", text)


def details(summary: str, text: str) -> Block:
    return ("details", summary, text)


def fold(summary: str, blocks: list[Block]) -> Block:
    return ("fold", summary, list(blocks))


def link(text: str, href: str) -> str:
    """``[text](href)`` with ``href`` URL-quoted: a relative path (``/`` separators) opens the
    same file from ``report.md`` and ``report.html``, wherever the two folders are moved
    together; a URI (``file:///...``) is kept as it is."""
    return f"[{text}]({href if '://' in href else quote(href)})"


def ul(items: list[str]) -> Block:
    return ("ul", list(items))


def table(df: pd.DataFrame) -> Block:
    return ("table", df)


def img(file: str, caption: str) -> Block:
    return ("img", file, caption)


def pct(x: float) -> str:
    """A fraction as the report prints every accuracy: ``0.1587`` → ``15.87 %``."""
    return f"{100 * x:.2f} %"
