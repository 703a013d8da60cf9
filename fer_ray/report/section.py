"""The one shape of a report section, so the page is the same loop over every stage's part.

A section is a module (or any object) with:

* ``name``: its key in ``fer_ray.report.sections.SECTIONS``;
* ``load(run) -> Part | None``: read its stage's stored files; ``None`` when the stage has no
  results yet, so an unfinished run still gets a report of what is there;
* ``plots(part, out)``: write its PNGs into the report folder (a no-op when it has none);
* ``blocks(part) -> list[Block]``: its part of the page, from the loaded part alone.

Only ``load`` touches the run directory, which keeps ``plots`` and ``blocks`` testable on a
hand-made ``Part``.
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
