"""The report's sections, registered in page order: one module per part of the report.

How to add a section:

1. Write ``fer_ray/report/sections/<name>.py`` with ``name``, ``load(run) -> Part | None``
   (read stored files through ``run``; file names from ``fer_ray.layout``; ``None`` while its
   stage has no results), ``plots(part, out)`` and ``blocks(part) -> list[Block]`` (see
   ``fer_ray.report.section``).
   Optionally ``glance(part)`` (lines for the HTML page's header) and ``place = "header"``
   (the section is all glance; see ``fer_ray.report.section``).
2. Add one ``SECTIONS.register`` line below, where it belongs on the page; a recipe's
   section is declared by its recipe instead (``fer_ray.protocol.register(report=...)``).

Every table in ``Part.tables`` is written as ``<key>.csv``, so keys must be unique across
sections. Entries are ``"module"`` strings, so listing sections imports no section (nor
matplotlib); a section module never imports this package's registry.
"""

from __future__ import annotations

from fer_ray import protocol
from fer_ray.registry import Registry
from fer_ray.report.section import Section

SECTIONS: Registry[Section] = Registry("report section", "report.sections")

SECTIONS.register("header", "fer_ray.report.sections.header")
SECTIONS.register("headline", "fer_ray.report.sections.headline")
SECTIONS.register("departures", "fer_ray.report.sections.departures")
SECTIONS.register("data", "fer_ray.report.sections.data")
SECTIONS.register("grid", "fer_ray.report.sections.grid")
SECTIONS.register("search", "fer_ray.report.sections.search")
SECTIONS.register("ensemble", "fer_ray.report.sections.ensemble")
SECTIONS.register("training", "fer_ray.report.sections.training")
SECTIONS.register("feature_analysis", "fer_ray.report.sections.feature_analysis")
SECTIONS.register("pruning", "fer_ray.report.sections.pruning")
SECTIONS.register("per_class", "fer_ray.report.sections.per_class")
SECTIONS.register("architectures", "fer_ray.report.sections.architectures")
SECTIONS.register("architectures_test", "fer_ray.report.sections.architectures_test")
SECTIONS.register("nodes", "fer_ray.report.sections.nodes")
# its ``collect`` runs once the others have loaded: links to what they read and wrote
SECTIONS.register("files", "fer_ray.report.sections.files")
SECTIONS.register("provenance", "fer_ray.report.sections.provenance")
SECTIONS.register("config", "fer_ray.report.sections.config")


def add_recipe_sections() -> None:
    """The sections that recipes declare (``fer_ray.protocol.REPORT``), each in its place."""
    protocol.load_recipes()
    for name, module, before in protocol.REPORT:
        if name not in SECTIONS:
            SECTIONS.register(name, module, before=before)


add_recipe_sections()
