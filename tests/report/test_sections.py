"""The section registry: every section loads, a stage without results adds nothing, and the
Markdown and the HTML carry the same words."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fer_ray.layout import (
    RUN_INFO,
    SUMMARY,
    Analyse,
    AuMaps,
    Clean,
    Descriptors,
    Ensemble,
    Grid,
    NewFaces,
    Prepare,
    Rules,
)
from fer_ray.report.build import build_report, load_parts, page_blocks, shown, with_collected
from fer_ray.report.page import Shown
from fer_ray.report.render import to_markdown
from fer_ray.report.run import open_run
from fer_ray.report.sections import SECTIONS
from tests.report.fake_run import ALL_STAGES, ARCHS, SEED_STAGES, TRAINING, write_run

ALWAYS = ("header", "provenance", "config")  # every run directory has a config and provenance
EVERY = ALL_STAGES + SEED_STAGES
# needs a grid over backbones, which the fake grid is not: tests/report/test_seed_002_003_sections
NOT_FAKED = {"architectures"}
# made from the other sections by ``build`` (``collect``), not by ``load_parts``: test_links
COLLECTED = {n for n in SECTIONS if getattr(SECTIONS.get(n), "collect", None)}


def test_every_registered_section_loads_plots_and_renders(tmp_path: Path):
    run = open_run(write_run(tmp_path / "run", EVERY))
    out = tmp_path / "out"
    out.mkdir()
    tables: list[str] = []
    assert set(SECTIONS) > NOT_FAKED
    for name in (n for n in SECTIONS if n not in NOT_FAKED):
        section = SECTIONS.get(name)
        assert section.name == name
        collect = getattr(section, "collect", None)  # a section about the others
        part = collect(run, out, {}) if collect else section.load(run)
        assert part is not None, f"{name} found nothing in a complete run"
        section.plots(part, out)
        blocks = section.blocks(part)
        assert blocks, name
        for b in blocks:
            if b[0] == "img":
                assert (out / b[1]).stat().st_size > 1000, f"{name} did not draw {b[1]}"
        tables += part.tables
    assert len(tables) == len(set(tables)), "two sections write the same CSV"


def test_report_order_is_registration_order(tmp_path: Path):
    parts = load_parts(open_run(write_run(tmp_path / "run", EVERY)))
    assert list(parts) == [n for n in SECTIONS.names() if n not in NOT_FAKED | COLLECTED]
    headings = [b[1] for b in page_blocks(parts) if b[0] == "h2"]
    assert headings[0] == "Headline" and headings[-1] == "Config"


# which sections show results of each stage; nodes needs the grid's or the ensemble's
BY_STAGE = {
    Prepare.DIR: {"data"},
    Grid.DIR: {"grid", "search"},
    Ensemble.DIR: {"headline", "ensemble", "training"},  # training extends its summary
    Analyse.DIR: {"feature_analysis", "pruning", "per_class"},
    Descriptors.DIR: {"descriptors"},
    Rules.DIR: {"rules"},
    Clean.DIR: {"clean"},
    NewFaces.DIR: {"newfaces"},
    AuMaps.DIR: {"aumaps"},
    ARCHS: {"architectures_test"},
    TRAINING: {"training"},
}


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A complete synthetic run and the names of the files its report holds."""
    tmp = tmp_path_factory.mktemp("full")
    root = write_run(tmp / "run", EVERY)
    return root, {p.name for p in build_report(root, tmp / "rep").iterdir()}


@pytest.mark.parametrize("missing", EVERY)
def test_a_stage_without_results_contributes_nothing(
    missing: str, full_report: tuple[Path, set[str]], tmp_path: Path
):
    full_root, full_files = full_report
    root = write_run(tmp_path / "run", tuple(s for s in EVERY if s != missing))
    parts = load_parts(open_run(root))
    assert set(SECTIONS.names()) - set(parts) - NOT_FAKED - COLLECTED == BY_STAGE[missing]
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
    root = write_run(tmp_path / "run", (), departures=False)
    assert list(load_parts(open_run(root))) == list(ALWAYS)
    out = build_report(root, tmp_path / "rep")
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.md"]
    md = (out / "report.md").read_text()
    assert "prepare not run" in md and "## Headline" not in md


class _Regions(HTMLParser):
    """The words of an HTML page per region (``header``, ``nav``, each section's id), with each
    image's alt text and file name where Markdown has them; inline tags join words."""

    BLOCK = {"p", "li", "td", "th", "h1", "h2", "dt", "dd", "pre", "figcaption", "tr", "ul"}

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.region = ""
        self.skip = 0

    def add(self, text: str) -> None:
        self.text[self.region] = self.text.get(self.region, "") + text

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag in ("title", "style", "script"):
            self.skip += 1
        elif tag in ("header", "nav"):
            self.region = tag
        elif tag == "section":
            self.region = a["id"]
        elif tag == "img":
            assert a["src"].startswith("data:image/png;base64,"), a["src"][:40]
            self.add(f" {a['alt']} {a['data-file']} ")
        if tag in self.BLOCK:
            self.add(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("title", "style", "script"):
            self.skip -= 1
        if tag in self.BLOCK:
            self.add(" ")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.add(data)

    def words(self, region: str) -> list[str]:
        return _split(self.text.get(region, ""))


def _regions(html: str) -> _Regions:
    parser = _Regions()
    parser.feed(html)
    parser.close()
    return parser


def _split(text: str) -> list[str]:
    return re.sub(r"[#|]", " ", re.sub(r"[*`]", "", text)).split()


def _md_words(md: str) -> list[str]:
    md = re.sub(r"!\[([^\]]*)\]\(([^)]*)\)", r"\1 \2", md)
    md = re.sub(r"\[([^\]]*)\]\(([^)]*)\)", r"\1", md)  # a link: the page shows its text
    md = re.sub(r"^\|(---\|)+$", "", md, flags=re.M)
    md = re.sub(r"^- ", "", md, flags=re.M)
    return _split(md)


def _page(root: Path, out: Path) -> tuple[list[Shown], str]:
    out = build_report(root, out)
    run = open_run(root)
    parts = with_collected(run, out, load_parts(run))
    return shown(parts), (out / "report.html").read_text()


@pytest.mark.parametrize("selected_on_test", [False, True])
def test_markdown_and_html_say_the_same_thing(selected_on_test: bool, tmp_path: Path):
    """Each body section word for word; each header section's paragraphs in the page header."""
    root = write_run(tmp_path / "run", selected_on_test=selected_on_test)
    page, html = _page(root, tmp_path / "rep")
    regions = _regions(html)
    header = " ".join(regions.words("header"))
    for s in page:
        md = to_markdown(s.blocks)
        if s.in_header:
            for b in s.blocks:
                said = {"p": lambda b: [b[1].partition(": ")[2] or b[1]], "ul": lambda b: b[1]}
                for text in said.get(b[0], lambda b: [])(b):
                    assert " ".join(_split(text)).rstrip(".") in header, (s.name, text)
        else:
            assert regions.words(s.name) == _md_words(md), s.name
    md = (tmp_path / "rep" / "report.md").read_text()
    assert html.count("<table") == md.count("\n|---|") + md.startswith("|---|")
    assert ("selected on test" in md) == selected_on_test
    assert ("selected on test" in " ".join(regions.words("header"))) == selected_on_test


def test_the_page_header_sums_the_run_up_and_the_end_has_provenance(tmp_path: Path):
    root = write_run(tmp_path / "run")
    page, html = _page(root, tmp_path / "rep")
    header = _regions(html).text["header"]
    labels = re.findall(r"<dt>([^<]*)</dt>", html)
    assert labels == ["Headline", "Departures from the paper", "Data", "Weights", "Stages", "Files"]
    assert "soft-vote ensemble 50.00 %" in header and "synthetic faces instead of SFEW" in header
    assert "weights: synthetic pretraining (paper: VGG-Face); no hub here" in header
    contents = re.findall(r'<li><a href="#([^"]+)">', html)
    body = [s.name for s in page if not s.in_header]
    assert contents == body and body[-2:] == ["provenance", "config"]
    assert body[0] == "data" and "headline" not in body and "header" not in body
    assert html.index('id="provenance"') > html.index('id="nodes"')
    assert "abc123" in _regions(html).text["provenance"]


def test_departures_are_absent_without_stored_entries(tmp_path: Path):
    root = write_run(tmp_path / "run", departures=False)
    out = build_report(root, tmp_path / "rep")
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "departures" not in load_parts(open_run(root))
    assert "Departures" not in md and "Departures" not in html


def test_departures_accept_strings_mappings_and_records(tmp_path: Path):
    root = write_run(tmp_path / "run", departures=False)
    summary = json.loads((root / Ensemble.DIR / SUMMARY).read_text())
    summary["departures"] = {"epochs": "8 instead of 20"}
    (root / Ensemble.DIR / SUMMARY).write_text(json.dumps(summary))
    info = json.loads((root / RUN_INFO).read_text())
    info["departures"] = "one string"
    (root / RUN_INFO).write_text(json.dumps(info))
    part = load_parts(open_run(root))["departures"]
    assert part.facts["departures"] == ["one string", "ensemble: epochs: 8 instead of 20"]
    md = (build_report(root, tmp_path / "rep") / "report.md").read_text()
    assert "## Departures from the paper\n\n- one string\n- ensemble: epochs: 8" in md


def test_the_page_is_one_file(tmp_path: Path):
    """Nothing the page shows comes from outside it (the browser test checks that nothing
    loads); its links lead within it or, by relative paths, to the files behind the report
    (test_links checks that they exist)."""
    _, html = _page(write_run(tmp_path / "run"), tmp_path / "rep")
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(u.startswith("data:") for u in sources), sources
    links = re.findall(r'href="([^"]*)"', html)
    assert links and all(u.startswith("#") or ":" not in u for u in links), links
    assert "http" not in html.replace("http-equiv", "")
    # 14: the search section adds its parallel-coordinates figure and two-key heat map; 16:
    # the first screen shows the grid's heat map and the confusion matrix again (issue 24)
    assert html.count("<img ") == 16 and html.count('class="sortable"') == html.count("<table")
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


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


def test_the_header_says_what_a_stand_ins_targets_reveal(tmp_path: Path):
    root = write_run(tmp_path / "run")
    section = SECTIONS.get("header")
    pre = {"targets": "the 13 Action Unit intensities", "reveals": "the expression class",
           "label_free": False}  # fmt: skip
    (root / Grid.DIR / Grid.FEATURES).write_text(json.dumps({"pretrain": pre}))
    md = to_markdown(section.blocks(section.load(open_run(root))))
    assert "the 13 Action Unit intensities (**supervised, not label-free**; reveals the" in md
    pre.update(targets="which subject each image shows", label_free=True)
    (root / Grid.DIR / Grid.FEATURES).write_text(json.dumps({"pretrain": pre}))
    md = to_markdown(section.blocks(section.load(open_run(root))))
    assert "which subject each image shows (label-free;" in md


def test_table2_names_diverged_cells_instead_of_a_score():
    import pandas as pd

    from fer_ray.report.sections import grid

    t2 = pd.DataFrame({"lr": [1000.0, 0.001], "hidden": [50, 50], "mean": [float("nan"), 0.61],
                       "std": [float("nan"), 0.02], "count": [3, 3], "diverged": [2, 0]})  # fmt: skip
    piv = grid.pivot(t2).set_index("lr")
    assert piv.loc[1000.0, "hidden 50"] == "diverged (2 of 3 folds)"
    assert piv.loc[0.001, "hidden 50"] == "61.00 ± 2.00"
