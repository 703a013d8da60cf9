"""Issue 24, item 7: the report links to the files behind it. Every link in ``report.html``
and ``report.md`` opens a file or folder that exists, relative to the report folder: every CSV
the report wrote and read, each Tune trial's folder, the tracker's output (with the command
that opens it); and the links still work when the runs and reports folders move together.
The page also has one table per Tune experiment, a row per trial.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
import yaml

from fer_ray.layout import CONFIG, MLFLOW_DB, Grid
from fer_ray.report.build import REPORT_HTML, REPORT_MD, build_report
from fer_ray.report.run import open_run
from fer_ray.report.sections import files
from tests.report import browser
from tests.report.fake_run import write_run
from tests.report.fake_trials import TRIALS, write_trials

MD_LINK = re.compile(r"(!?)\[[^\]]*\]\(([^)\s]+)\)")


def _with_tracking(root: Path, tracking: Any) -> None:
    cfg = yaml.safe_load((root / CONFIG).read_text())
    (root / CONFIG).write_text(yaml.safe_dump({**cfg, "tracking": tracking}, sort_keys=False))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, list[Path]]]:
    """(run folder, report folder, trial folders) laid out as a run lays them out:
    ``runs/fake`` and ``reports/fake`` side by side; TensorBoard and MLflow both tracked."""
    tmp = tmp_path_factory.mktemp("links")
    root = write_run(tmp / "runs" / "fake")
    trials = write_trials(root)
    _with_tracking(root, ["tensorboard", "mlflow"])
    (root / MLFLOW_DB).write_bytes(b"SQLite format 3\x00")
    return root, build_report(root, tmp / "reports" / "fake"), trials


def md_targets(out: Path, images: bool = True) -> list[Path]:
    """Every file a link (and, with ``images``, an image) in ``report.md`` opens, in-page
    anchors aside, as a path."""
    found = MD_LINK.findall((out / REPORT_MD).read_text())
    return [
        (out / unquote(h)).resolve()
        for bang, h in found
        if not h.startswith("#") and (images or not bang)
    ]


def test_every_markdown_link_opens_an_existing_file(made):
    root, out, _ = made
    targets = md_targets(out)
    missing = [t for t in targets if not t.exists()]
    assert targets and not missing, missing[:5]


def test_the_links_cover_every_csv_written_and_read_the_trials_and_the_tracker(made):
    root, out, trials = made
    targets = set(md_targets(out))
    written = {p.resolve() for p in out.glob("*.csv")}
    assert len(written) > 20 and written <= targets, sorted(written - targets)[:5]
    run = open_run(root)
    from fer_ray.report.build import load_parts

    load_parts(run)  # what the sections read: each stored CSV
    read = {p.resolve() for p in run.read}
    assert (root / Grid.DIR / Grid.TRIALS).resolve() in read and read <= targets
    folders = {d.resolve() for ds in trials.values() for d in ds}
    assert len(folders) == sum(len(c) for c in TRIALS.values()) and folders <= targets
    assert (root / "tune").resolve() in targets  # TensorBoard's logdir
    assert (root / MLFLOW_DB).resolve() in targets
    assert (out / "tune_trials.csv").is_file()


def test_the_tracker_commands_name_paths_that_exist_from_the_report_folder(made):
    root, out, _ = made
    md = (out / REPORT_MD).read_text()
    logdir = re.search(r"`tensorboard --logdir ([^`]+)`", md).group(1)
    assert (out / logdir).resolve() == (root / "tune").resolve()
    store = re.search(r"`mlflow ui --backend-store-uri sqlite:///([^`]+)`", md).group(1)
    assert (out / store).resolve() == (root / MLFLOW_DB).resolve()


def test_one_table_per_experiment_a_row_per_trial_each_linking_its_folder(made):
    _, out, trials = made
    html = (out / REPORT_HTML).read_text()
    section = html[html.index('<section id="files">') :]
    section = section[: section.index("</section>")]
    grid = len(TRIALS[Grid.DIR])
    assert grid > files.FOLD_ROWS  # the grid's table is folded away, the ensemble's is not
    assert re.search(rf"<details><summary>The {grid} trials of <code>grid</code>", section)
    folded = section[section.index("<details>") : section.index("</details>")]
    heads = re.findall(r'<button type="button">([^<]*(?:<wbr>[^<]*)*)</button>', folded)
    assert [h.replace("<wbr>", "") for h in heads][:4] == ["trial", "lr", "hidden", "fold"]
    assert "val_acc" in [h.replace("<wbr>", "") for h in heads]
    assert len(re.findall(r"<tr><td><a href=", folded)) == grid
    assert "<td>0.005</td><td>50</td><td>0</td>" in folded  # as the config writes them
    assert "The 3 trials of <code>ensemble</code>" in section
    header = html[html.index("<header>") : html.index("</header>")]
    line = re.search(r"<dt>Files</dt><dd>(.*?)</dd>", header).group(1)
    assert line == (
        "every table as CSV, the 15 Tune trials&#x27; folders, the tracker: "
        '<a href="#files">files and links</a>'
    )


def test_the_links_still_work_when_both_folders_move_together(made, tmp_path: Path):
    root, out, _ = made
    moved = tmp_path / "elsewhere"
    shutil.copytree(root.parent.parent, moved)
    targets = md_targets(moved / "reports" / "fake")
    assert targets and all(t.exists() for t in targets)
    assert all(moved.resolve() in t.parents for t in targets)


def test_a_report_folder_anywhere_links_back_to_the_run(made, tmp_path: Path):
    root, _, _ = made
    out = build_report(root, tmp_path / "deep" / "er" / "report")
    missing = [t for t in md_targets(out) if not t.exists()]
    assert not missing, missing[:5]


# -- in the browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    reason = browser.missing()
    if reason is not None:
        pytest.skip(reason)
    with browser.chromium(tmp_path_factory.mktemp("profile")) as d:
        yield d


@pytest.mark.timeout(180)
def test_every_link_in_the_html_opens_an_existing_file_in_the_browser(made, driver):
    root, out, trials = made
    driver.get((out / REPORT_HTML).as_uri())
    hrefs = driver.execute_script(
        "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"
    )
    page = (out / REPORT_HTML).as_uri()
    files_ = [h for h in hrefs if not h.startswith(page + "#")]
    assert files_ and all(h.startswith("file://") for h in files_), files_[:3]
    missing = [h for h in files_ if not Path(unquote(urlparse(h).path)).exists()]
    assert not missing, missing[:5]
    assert len(files_) == len(
        md_targets(out, images=False)
    )  # the page and the Markdown link the same
    # a trial's link opens its folder: Tune's files are listed there
    link = driver.find_element("css selector", "section#files table a")
    link.click()
    assert Path(unquote(urlparse(driver.current_url).path)) in trials["ensemble"]
    assert "result.json" in driver.find_element("tag name", "body").text


def test_trials_on_shared_storage_are_named_not_linked(tmp_path: Path):
    """Tune storage on a cluster (``output.storage_path``, here a URI): the trial ids and the
    logdir are written out, and no link leads to a file this machine does not have."""
    root = write_run(tmp_path / "runs" / "fake")
    write_trials(root)
    cfg = yaml.safe_load((root / CONFIG).read_text())
    cfg["output"] = {"storage_path": "s3://bucket/tune"}
    (root / CONFIG).write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = build_report(root, tmp_path / "reports" / "fake")
    md = (out / REPORT_MD).read_text()
    assert all(t.exists() for t in md_targets(out))
    assert "`tensorboard --logdir s3://bucket/tune`" in md
    assert "| `1ffe0_00000` |" in md and "- `fake-grid`: 12 trial folders" in md


def test_no_tracker_line_without_a_tracker_or_its_files(tmp_path: Path):
    root = write_run(tmp_path / "runs" / "fake")  # no Tune folders: no event files
    md = (build_report(root, tmp_path / "reports" / "fake") / REPORT_MD).read_text()
    assert "## Files, trials and tracker" in md and "tensorboard --logdir" not in md
    write_trials(root)
    _with_tracking(root, [])
    md = (build_report(root, tmp_path / "reports" / "fake") / REPORT_MD).read_text()
    assert "tensorboard --logdir" not in md and "mlflow ui" not in md
    assert "The 3 trials of `ensemble`" in md
