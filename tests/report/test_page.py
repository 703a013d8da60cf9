"""``report.html`` in a real browser (headless Chromium): it opens alone, with no console error
and every figure drawn, and a click on a column heading sorts the table.

Skipped, with the command to run, where Chromium or its driver is not installed (a fresh
machine running the README's plain install); ``.ci/run`` installs both.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fer_ray.report.build import REPORT_HTML, build_report
from tests.report import browser
from tests.report.fake_run import write_run

pytestmark = [
    pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing())),
    pytest.mark.timeout(180),
]
# every section of the fake run draws its figures (14), and the first screen shows the grid's
# heat map and the confusion matrix again (16, issue 24)
FIGURES = 16


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake run's report.html, copied ALONE into an empty folder: it must need nothing."""
    tmp = tmp_path_factory.mktemp("page")
    out = build_report(write_run(tmp / "run"), tmp / "report")
    alone = tmp / "alone"
    alone.mkdir()
    return Path(shutil.copy(out / REPORT_HTML, alone / REPORT_HTML))


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with browser.chromium(tmp_path_factory.mktemp("profile")) as d:
        yield d


@pytest.fixture
def opened(driver: Any, page: Path) -> Any:
    """The page freshly loaded, its console log drained into ``driver.load_errors``."""
    driver.get(page.as_uri())
    driver.load_errors = browser.console_errors(driver)
    return driver


def test_the_page_opens_alone_without_console_errors_or_broken_images(opened: Any):
    assert opened.load_errors == [], "console errors while loading report.html"
    assert opened.execute_script("return document.images.length") == FIGURES
    assert browser.broken_images(opened) == []
    assert opened.title == "fer_ray report: fake"
    toc = opened.execute_script(
        "return Array.from(document.querySelectorAll('nav.toc a')).map(a => a.hash)"
    )
    assert toc[0] == "#data" and toc[-2:] == ["#provenance", "#config"]
    assert all(opened.execute_script(f"return !!document.querySelector('{h}')") for h in toc)


def _column(driver: Any, section: str, name: str) -> tuple[Any, list[list[str]], int]:
    """(heading button, rows as cell texts, column index) of the first table in a section."""
    table = driver.find_element("css selector", f"section#{section} table")
    heads = [th.text.strip(" ↕▲▼") for th in table.find_elements("css selector", "thead th")]
    col = heads.index(name)
    button = table.find_elements("css selector", "thead th button")[col]
    return button, _rows(table), col


def _rows(table: Any) -> list[list[str]]:
    return table.parent.execute_script(
        "return Array.from(arguments[0].tBodies[0].rows)"
        ".map(r => Array.from(r.cells).map(c => c.textContent))",
        table,
    )


def _number(text: str) -> float:
    return float(re.match(r"[-+]?[\d.]+(e[-+]?\d+)?", text.strip()).group())


def _sort_state(driver: Any, section: str) -> list[str | None]:
    th = driver.find_elements("css selector", f"section#{section} table thead th")
    return [t.get_attribute("aria-sort") for t in th]


def test_clicking_a_heading_sorts_numbers_numerically(opened: Any):
    # the members' test accuracies come in member order; one click sorts them ascending
    button, before, col = _column(opened, "ensemble", "test_acc")
    button.click()
    table = opened.find_element("css selector", "section#ensemble table")
    after = _rows(table)
    assert after == sorted(before, key=lambda r: _number(r[col]))
    assert after != before, "the fake run's members should not come sorted already"
    assert _sort_state(opened, "ensemble")[col] == "ascending"

    # the data counts' "total" column is 4, ..., 4, 28: sorted as text, "28" would come first
    button, before, col = _column(opened, "data", "total")
    button.click()
    table = opened.find_element("css selector", "section#data table")
    up = _rows(table)
    assert [r[col] for r in up] == sorted((r[col] for r in before), key=float)
    assert up[-1][0] == "total" and up[-1][col] == "28"
    button.click()  # a second click reverses: the total row (28) comes first
    down = _rows(table)
    assert down[0][0] == "total" and [_number(r[col]) for r in down] == sorted(
        (_number(r[col]) for r in before), reverse=True
    )
    assert sorted(map(tuple, down)) == sorted(map(tuple, before)), "rows kept their cells"
    assert _sort_state(opened, "data")[col] == "descending"

    # text sorts as text (the classes come alphabetical: two clicks reverse them)
    button, before, col = _column(opened, "per_class", "class")
    button.click()
    button.click()
    table = opened.find_element("css selector", "section#per_class table")
    assert [r[col] for r in _rows(table)] == sorted((r[col] for r in before), reverse=True)
    assert browser.console_errors(opened) == [], "console errors while sorting"


def test_a_screenshot_of_the_whole_page(opened: Any, tmp_path: Path):
    path = browser.screenshot(opened, tmp_path / "report.png")
    size = path.stat().st_size
    assert size > 50_000, size
    with path.open("rb") as f:
        head = f.read(24)
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and height > 3 * width, (width, height)
    print(f"screenshot of the fake run's report.html: {path}")


def test_the_first_screen_shows_the_result_and_the_key_figures(driver: Any, page: Path):
    """At 1400 x 900 (issue 24) the big numbers and both key figures are above the fold."""
    driver.set_window_size(1400, 900)
    try:
        driver.get(page.as_uri())
        fold = driver.execute_script("return window.innerHeight")
        bottoms = driver.execute_script(
            "return Array.from(document.querySelectorAll("
            "'header .result .value, header .keyfigs img')).map(e => e.getBoundingClientRect().bottom)"
        )
        assert len(bottoms) == 4, bottoms  # two numbers, two figures
        assert all(0 < b <= fold for b in bottoms), (bottoms, fold)
        sizes = driver.execute_script(
            "return Array.from(document.querySelectorAll('header .result .value'))"
            ".map(e => parseFloat(getComputedStyle(e).fontSize))"
        )
        body = driver.execute_script("return parseFloat(getComputedStyle(document.body).fontSize)")
        assert all(s >= 2 * body for s in sizes), (sizes, body)
    finally:
        driver.set_window_size(browser.WIDTH, browser.HEIGHT)


def test_wide_tables_fit_the_page_instead_of_scrolling_sideways(driver: Any, page: Path):
    """The per-class table's eleven columns scrolled sideways (issue 24): headings now wrap
    after ``_``, and no table of the fake run is wider than the page at 1200 or 1400 px."""
    try:
        for width in (1400, browser.WIDTH):
            driver.set_window_size(width, 900)
            driver.get(page.as_uri())
            wide = driver.execute_script(
                "return Array.from(document.querySelectorAll('div.scroll'))"
                ".filter(e => e.scrollWidth > e.clientWidth)"
                ".map(e => (e.closest('section') || {}).id)"
            )
            assert wide == [], (width, wide)
    finally:
        driver.set_window_size(browser.WIDTH, browser.HEIGHT)
