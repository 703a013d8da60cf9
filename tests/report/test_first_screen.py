"""Issue 24, item 7: the report leads with the result. The page's first screen has the soft
vote's and the members' mean test accuracy as big numbers with their intervals, and the key
figures (the grid's heat map, the vote's confusion matrix), above the header's lines; the
Markdown says the same numbers first under its headline.

The fake run's interval numbers are fixed (``tests.report.fake_run.ENSEMBLE_INTERVALS``).
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest

from fer_ray.report.build import build_report
from fer_ray.report.page import FIRST_SCREEN
from tests.report.fake_run import write_run


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """(report folder, report.md, report.html) of the complete fake run."""
    tmp = tmp_path_factory.mktemp("first")
    out = build_report(write_run(tmp / "run"), tmp / "rep")
    return out, (out / "report.md").read_text(), (out / "report.html").read_text()


def _header(html: str) -> str:
    return html[html.index("<header>") : html.index("</header>")]


def _stats(html: str) -> list[tuple[str, str, str]]:
    """(label, value, detail) of each big number, tags stripped."""
    found = re.findall(
        r'<span class="label">(.*?)</span> <span class="value">(.*?)</span> '
        r'<span class="detail">(.*?)</span>',
        _header(html),
    )
    return [tuple(unescape(re.sub(r"<[^>]+>", "", x)) for x in stat) for stat in found]


def test_the_page_opens_with_the_two_accuracies_and_their_intervals(report):
    _, _, html = report
    vote, mean = _stats(html)
    assert vote == (
        "Soft-vote ensemble, test accuracy",
        "50.00 %",
        "(95 % interval [28.57, 71.43])",
    )
    assert mean[:2] == ("Members' mean test accuracy", "38.10 %")
    assert re.fullmatch(
        r"\(95 % interval \[23\.81, 52\.38\]; ± \d+\.\d\d % across 3 members\)", mean[2]
    )
    header = _header(html)
    # the numbers come first: before the key figures, and both before the prose lines
    assert header.index('class="result"') < header.index('class="keyfigs"')
    assert header.index('class="keyfigs"') < header.index('class="glance"')
    assert html.index("</header>") < html.index('<nav class="toc"')


def test_the_key_figures_are_on_the_first_screen_and_still_in_their_sections(report):
    out, _, html = report
    header = _header(html)
    keyfigs = header[header.index('class="keyfigs"') : header.index('class="glance"')]
    assert re.findall(r'data-file="([^"]+)"', keyfigs) == list(FIRST_SCREEN)
    assert all((out / f).is_file() for f in FIRST_SCREEN)
    main = html[html.index("<main>") :]
    assert all(f'data-file="{f}"' in main for f in FIRST_SCREEN)


def test_the_first_screen_figure_names_are_the_sections_own():
    from fer_ray.report.sections import grid, per_class

    assert FIRST_SCREEN == (grid.HEATMAP, per_class.CONFUSION)


def test_the_markdown_headline_says_the_numbers_first(report):
    _, md, _ = report
    head = md[md.index("## Headline") :].split("\n\n")
    assert head[1] == "**Soft-vote ensemble, test accuracy 50.00 %** (95 % interval [28.57, 71.43])"
    assert head[2].startswith("**Members' mean test accuracy 38.10 %** (95 % interval [23.81,")
    assert head[3].startswith("3 members: mean test accuracy 38.10 %")


def test_a_run_before_the_intervals_shows_the_numbers_without_brackets(tmp_path: Path):
    out = build_report(write_run(tmp_path / "run", intervals=False), tmp_path / "rep")
    stats = _stats((out / "report.html").read_text())
    assert [s[:2] for s in stats][0] == ("Soft-vote ensemble, test accuracy", "50.00 %")
    assert stats[0][2] == "(7 test images)" and "across 3 members" in stats[1][2]
    assert not any("[" in s[2] for s in stats)


def test_a_run_selected_on_test_says_so_beside_the_numbers(tmp_path: Path):
    out = build_report(write_run(tmp_path / "run", selected_on_test=True), tmp_path / "rep")
    stats = _stats((out / "report.html").read_text())
    assert all(s[0].endswith("(selected on test)") for s in stats)


def test_the_numbers_come_with_the_pretraining_caveat(tmp_path: Path):
    import json

    from fer_ray.layout import Grid

    root = write_run(tmp_path / "run")
    pre = {"targets": "the 13 Action Unit intensities", "reveals": "the expression class",
           "label_free": False}  # fmt: skip
    features = json.loads((root / Grid.DIR / Grid.FEATURES).read_text())
    (root / Grid.DIR / Grid.FEATURES).write_text(json.dumps({**features, "pretrain": pre}))
    html = (build_report(root, tmp_path / "rep") / "report.html").read_text()
    header = _header(html)
    note = re.search(r'</div><p class="note">(.*?)</p>', header)
    assert note, "no note under the numbers"
    text = unescape(re.sub(r"<[^>]+>", "", note.group(1)))
    assert text.startswith("Model weights: synthetic (resnet18): pretrained here on the 13")
    assert "(supervised, not label-free; reveals the expression class)" in text
    assert header.index('class="result"') < header.index('class="note"')
    assert header.index('class="note"') < header.index('class="keyfigs"')
