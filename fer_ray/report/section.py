"""The one shape of a report section, so the page is the same loop over every stage's part.

A section is a module (or any object) with:

* ``name``: its key in ``fer_ray.report.sections.SECTIONS``;
* ``load(run) -> Part | None``: read its stage's stored files; ``None`` when the stage has no
  results yet, so an unfinished run still gets a report of what is there;
* ``plots(part, out)``: write its PNGs into the report folder (a no-op when it has none);
* ``blocks(part) -> list[Block]``: its part of the page, from the loaded part alone.

and, optionally (``build`` supplies the defaults):

* ``glance(part) -> list[Glance]``: lines for the HTML page's header, which sums the run up
  (default: none);
* ``result(part) -> list[Stat]``: the run's result as big numbers (label, value, detail) at
  the top of the HTML page's header (default: none; the headline gives them, and its blocks
  say the same numbers for the Markdown);
* ``notes(part) -> list[str]``: lines under those numbers that qualify them (the header's:
  what the weights were pretrained on); shown only beside numbers;
* ``collect(run, out, parts) -> Part``: for a section about the others (``files``: links to
  what they read and wrote, relative to the report folder ``out``), made by ``build`` once
  they have loaded (``parts``: theirs, by name); its ``load`` then returns ``None``;
* ``place``: ``"header"`` for a section whose whole content is its glance (title, headline,
  departures from the paper): the HTML shows it in the page header, not as a body section;
  default ``"body"``. Markdown shows every section's blocks in section order either way.

Only ``load`` touches the run directory, which keeps ``plots``, ``blocks`` and ``glance``
testable on a hand-made ``Part``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from fer_ray.report.page import Block
from fer_ray.report.run import Run


@dataclass
class Part:
    """One section's loaded results: ``tables`` become ``<name>.csv``; ``facts`` feed its text."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


class Section(Protocol):
    name: str

    def load(self, run: Run) -> Part | None: ...

    def plots(self, part: Part, out: Path) -> None: ...

    def blocks(self, part: Part) -> list[Block]: ...
