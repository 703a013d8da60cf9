"""The section registry: every section loads, a stage without results adds nothing, and the
Markdown and the HTML carry the same words."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fer_ray.layout import SUMMARY, Analyse, Descriptors, Ensemble, Grid, Prepare
from fer_ray.report.build import build_report, load_parts, page_blocks
from fer_ray.report.render import to_html, to_markdown
from fer_ray.report.run import open_run
from fer_ray.report.sections import SECTIONS
from tests.report.fake_run import ALL_STAGES, write_run

ALWAYS = ("header", "config")  # every run directory has a config and provenance


def test_every_registered_section_loads_plots_and_renders(full_run: Path, tmp_path: Path):
    run = open_run(full_run)
    out = tmp_path / "out"
    out.mkdir()
    tables: list[str] = []
    for name in SECTIONS:
        section = SECTIONS.get(name)
        assert section.name == name
        part = section.load(run)
        assert part is not None, f"{name} found nothing in a complete run"
        section.plots(part, out)
        blocks = section.blocks(part)
        assert blocks, name
        for b in blocks:
            if b[0] == "img":
                assert (out / b[1]).stat().st_size > 1000, f"{name} did not draw {b[1]}"
        tables += part.tables
    assert len(tables) == len(set(tables)), "two sections write the same CSV"


def test_report_order_is_registration_order(full_run: Path):
    parts = load_parts(open_run(full_run))
    assert list(parts) == SECTIONS.names()
    headings = [b[1] for b in page_blocks(parts) if b[0] == "h2"]
    assert headings[0] == "Headline" and headings[-1] == "Config"


# which sections show results of each stage; nodes needs the grid's or the ensemble's
BY_STAGE = {
    Prepare.DIR: {"data"},
    Grid.DIR: {"grid"},
    Ensemble.DIR: {"headline", "ensemble"},
    Analyse.DIR: {"feature_analysis", "per_class"},
    Descriptors.DIR: {"descriptors"},
}


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A complete synthetic run and the names of the files its report holds."""
    tmp = tmp_path_factory.mktemp("full")
    root = write_run(tmp / "run")
    return root, {p.name for p in build_report(root, tmp / "rep").iterdir()}


@pytest.mark.parametrize("missing", ALL_STAGES)
def test_a_stage_without_results_contributes_nothing(
    missing: str, full_report: tuple[Path, set[str]], tmp_path: Path
):
    full_root, full_files = full_report
    root = write_run(tmp_path / "run", tuple(s for s in ALL_STAGES if s != missing))
    parts = load_parts(open_run(root))
    assert set(SECTIONS.names()) - set(parts) == BY_STAGE[missing]
    out = build_report(root, tmp_path / "rep")
    files = {p.name for p in out.iterdir()}
    assert files < full_files
    md = (out / "report.md").read_text()
    for name in BY_STAGE[missing]:
        section = SECTIONS.get(name)
        part = section.load(open_run(full_root))
        assert part is not None
        blocks = section.blocks(part)
        assert not {f"{t}.csv" for t in part.tables} & files, name
        assert not {b[1] for b in blocks if b[0] == "img"} & files, name
        assert not any(f"## {b[1]}" in md for b in blocks if b[0] == "h2"), name


def test_a_run_without_results_has_only_header_and_config(tmp_path: Path):
    root = write_run(tmp_path / "run", ())
    assert list(load_parts(open_run(root))) == list(ALWAYS)
    out = build_report(root, tmp_path / "rep")
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.md"]
    md = (out / "report.md").read_text()
    assert "prepare not run" in md and "## Headline" not in md


class _Words(HTMLParser):
    """The text of an HTML body, with each image's alt and src where Markdown has them."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("title", "style"):
            self.skip += 1
        if tag == "img":
            a = dict(attrs)
            self.words += _split(f"{a['alt']} {a['src']}")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("title", "style"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.words += _split(data)


def _split(text: str) -> list[str]:
    return re.sub(r"[#|]", " ", re.sub(r"[*`]", "", text)).split()


def _md_words(md: str) -> list[str]:
    md = re.sub(r"!\[([^\]]*)\]\(([^)]*)\)", r"\1 \2", md)
    md = re.sub(r"^\|(---\|)+$", "", md, flags=re.M)
    return _split(md)


@pytest.mark.parametrize("selected_on_test", [False, True])
def test_markdown_and_html_say_the_same_thing(selected_on_test: bool, tmp_path: Path):
    root = write_run(tmp_path / "run", selected_on_test=selected_on_test)
    blocks = page_blocks(load_parts(open_run(root)))
    md, html = to_markdown(blocks), to_html(blocks, "fake")
    parser = _Words()
    parser.feed(html)
    parser.close()
    assert parser.words == _md_words(md)
    assert html.count("<table") == md.count("\n|---|") + md.startswith("|---|")
    assert ("selected on test" in md) == selected_on_test


@pytest.mark.parametrize("drop_summary", [False, True])
def test_every_image_on_the_page_was_drawn(drop_summary: bool, tmp_path: Path):
    root = write_run(tmp_path / "run")
    if drop_summary:  # members stored, ensemble summary not yet: no headline, no accuracy plot
        (root / Ensemble.DIR / SUMMARY).unlink()
    out = build_report(root, tmp_path / "rep")
    md = (out / "report.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert shown and all((out / f).is_file() for f in shown)
    assert ("member_accuracy.png" in shown) != drop_summary
    assert ("## Headline" in md) != drop_summary
