"""``python -m fer_ray.report runs/a runs/b``: runs side by side, paired where they share the
test items. On small fake runs (stored files only, as the stages write them)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fer_ray.analysis.intervals import paired_difference
from fer_ray.errors import ReportError
from fer_ray.layout import CONFIG, Ensemble, Grid
from fer_ray.report import compare
from fer_ray.report import uncertainty as u
from fer_ray.report.__main__ import main
from tests.report import browser
from tests.report.fake_run import MEMBERS, write_run

N_ITEMS, CLASSES = 28, 7
GROUPS = np.array([f"s{i // 4:02d}" for i in range(N_ITEMS)])  # 4 images per subject


def _run(root: Path, test_idx: np.ndarray, hits: np.ndarray, **config: object) -> Path:
    """A finished fake run whose members and vote got ``hits`` (0/1 per test item) right,
    with the stored test predictions and splits the comparison reads."""
    write_run(root)
    cfg = yaml.safe_load((root / CONFIG).read_text())
    for dotted, value in config.items():  # section__key=value, or key=value at the top
        *section, key = dotted.split("__")
        (cfg.setdefault(section[0], {}) if section else cfg)[key] = value
    (root / CONFIG).write_text(yaml.safe_dump(cfg))
    labels = np.arange(len(test_idx)) % CLASSES
    probs = np.full((len(test_idx), CLASSES), 0.1 / CLASSES)
    pred = np.where(hits.astype(bool), labels, (labels + 1) % CLASSES)
    probs[np.arange(len(test_idx)), pred] += 0.9
    for m in range(MEMBERS):
        d = root / Ensemble.DIR / Ensemble.MEMBERS_DIR / Ensemble.member_dir(m)
        np.savez(d / Ensemble.MEMBER, test_idx=test_idx, test_labels=labels, test_probs=probs)
    np.savez(root / Ensemble.DIR / Ensemble.VOTE, probs=probs, labels=labels)
    test = np.isin(np.arange(N_ITEMS), test_idx)
    pd.DataFrame(
        {"item": np.arange(N_ITEMS), "label": 0, "group": GROUPS, "fold": -1, "test": test}
    ).to_csv(root / Grid.DIR / Grid.SPLITS, index=False)
    return root


TEST = np.arange(0, N_ITEMS, 2)  # 14 images of 7 subjects
HITS_A = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0])
HITS_B = np.array([1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0])


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    a = _run(tmp_path / "runs" / "a", TEST, HITS_A)
    b = _run(tmp_path / "runs" / "b", TEST, HITS_B, train__epochs=5)
    other = _run(tmp_path / "runs" / "c", np.arange(1, N_ITEMS, 2), HITS_A, seed=1)
    return [a, b, other]


def _md_table(md: str, heading: str) -> str:
    return md.split(f"## {heading}")[1].split("\n## ")[0]


def test_the_comparison_pairs_runs_on_shared_test_items_only(runs: list[Path], tmp_path: Path):
    out = compare.compare_runs(runs, tmp_path / "cmp")
    pairs = pd.read_csv(out / "compare_paired.csv")
    ab = pairs[(pairs["a"] == "a") & (pairs["b"] == "b")].iloc[0]
    expected = paired_difference(HITS_A, HITS_B, GROUPS[TEST])
    assert ab["vote a - b [95 %]"] == u.difference(expected.estimate, expected.low, expected.high)
    assert ab["paired on"] == "14 images of 7 groups"
    assert ab["vote a"] == "71.43 %" and ab["vote b"] == "42.86 %"
    assert ab["member mean a - b [95 %]"].startswith("+28.57 points")
    ac = pairs[(pairs["a"] == "a") & (pairs["b"] == "c")].iloc[0]
    assert ac["vote a - b [95 %]"] == "not paired: other test items (14 and 14, 0 shared)"


def test_other_data_is_never_paired_even_with_the_same_item_ids(tmp_path: Path):
    a = _run(tmp_path / "a", TEST, HITS_A)
    b = _run(tmp_path / "b", TEST, HITS_B, data__seed=3)  # other synthetic faces, same ids
    pairs = compare.paired(*_opened([a, b]))
    assert pairs.iloc[0]["vote a - b [95 %]"].startswith("not paired: other data")


def _opened(dirs: list[Path]) -> tuple[list, list[str]]:
    runs = [compare.open_run(d) for d in dirs]
    return runs, compare.names_of(runs)


def test_configs_are_diffed_to_the_keys_that_differ(runs: list[Path], tmp_path: Path):
    diff = compare.config_diff(*_opened(runs))
    assert diff["key"].tolist() == ["seed", "train.epochs"]
    assert diff.set_index("key").loc["train.epochs"].tolist() == ["3", "5", "3"]


def test_headline_and_table2_side_by_side_with_intervals(runs: list[Path], tmp_path: Path):
    out = compare.compare_runs(runs[:2], tmp_path / "cmp")
    md = (out / "report.md").read_text()
    head = _md_table(md, "Headline")
    assert head.count("| a |") == 1 and head.count("| b |") == 1
    assert re.search(r"\d+\.\d\d % \[\d+\.\d\d, \d+\.\d\d\]", head)  # stored intervals
    t2 = pd.read_csv(out / "compare_table2.csv")
    assert list(t2.columns) == ["lr", "hidden", "a", "b"] and len(t2) == 4
    assert all(" ± " in v for v in t2["a"])


def test_writes_markdown_self_contained_html_csvs_and_one_png_per_overlay(
    runs: list[Path], tmp_path: Path
):
    out = compare.compare_runs(runs, tmp_path / "cmp")
    names = {p.name for p in out.iterdir()}
    pngs = {compare.CURVES_PNG, compare.SIZE_PNG, compare.SWEEP_PNG}
    assert pngs <= names and {"report.md", "report.html"} <= names
    assert {f"compare_{t}.csv" for t in ("runs", "config_diff", "headline", "paired")} <= names
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3
    assert "Content-Security-Policy" in html and "<title>fer_ray comparison: a vs b vs c" in html


def test_cli_compares_two_or_more_and_still_reports_one(runs: list[Path], tmp_path: Path, capsys):
    assert main([str(runs[0]), str(runs[1]), "--out", str(tmp_path / "cmp")]) == 0
    assert "comparison written to" in capsys.readouterr().out
    assert main([str(runs[0]), "--out", str(tmp_path / "one")]) == 0
    assert (tmp_path / "one" / "report.md").read_text().startswith("# fer_ray report: fake")
    assert main([str(runs[0]), str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("report error:") and "nope" in err and "\n" not in err.rstrip("\n")
    with pytest.raises(ReportError, match="at least two"):
        compare.compare_runs(runs[:1], tmp_path / "y")


@pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))
@pytest.mark.timeout(180)
def test_the_comparison_page_opens_alone_in_chromium(runs: list[Path], tmp_path: Path):
    out = compare.compare_runs(runs, tmp_path / "cmp")
    alone = tmp_path / "alone"
    alone.mkdir()
    page = alone / "report.html"
    page.write_text((out / "report.html").read_text())
    with tempfile.TemporaryDirectory() as profile, browser.chromium(Path(profile)) as d:
        d.get(page.as_uri())
        assert browser.console_errors(d) == []
        assert d.execute_script("return document.images.length") == 3
        assert browser.broken_images(d) == []
