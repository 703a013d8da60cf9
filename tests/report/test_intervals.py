"""Issue 12 in the report: every accuracy with its stored 95 % interval, paired comparisons as
differences, the ensemble-size curve, counts beside the paper's only where they mean the same,
and runs made before the intervals still build (without them).

The fake run's interval numbers are fixed (``tests.report.fake_run``), so each test names the
exact text the stored numbers must print as.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from fer_ray.layout import Grid
from fer_ray.report import uncertainty as u
from fer_ray.report.build import build_report
from tests.report.fake_run import write_run


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """(report folder, report.md, report.html) of the fake run with intervals."""
    tmp = tmp_path_factory.mktemp("iv")
    out = build_report(write_run(tmp / "run"), tmp / "rep")
    return out, (out / "report.md").read_text(), (out / "report.html").read_text()


@pytest.fixture(scope="module")
def old_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The same for a run made before the stages stored intervals."""
    tmp = tmp_path_factory.mktemp("old")
    out = build_report(write_run(tmp / "run", intervals=False), tmp / "rep")
    return out, (out / "report.md").read_text(), (out / "report.html").read_text()


def _section(md: str, heading: str) -> str:
    start = md.index(f"## {heading}")
    end = md.find("\n## ", start + 3)
    return md[start : end if end > 0 else None]


def _header(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html[html.index("<header>") : html.index("</header>")])


# -- formatting ---------------------------------------------------------------------------


def test_formats_accuracies_differences_and_n():
    assert u.accuracy(0.6, 0.581, 0.7712) == "60.00 % [58.10, 77.12]"
    assert u.difference(-1e-18, -0.0238, 1e-18) == "+0.00 points [-2.38, +0.00]"
    assert u.difference(0.0476, 0.0119, 0.0952) == "+4.76 points [+1.19, +9.52]"
    assert u.sample(105, 5, "subjects") == "105 images of 5 subjects (one image = 0.95 points)"
    assert u.verdict(-0.05, -0.01) == "significantly lower"
    assert u.verdict(-0.05, 0.0) == "not significantly different"
    assert u.verdict(0.01, 0.05) == "significantly higher"


def test_the_caveat_says_lower_bound_with_few_groups_only():
    few = u.caveat(5, "subjects", 2000)
    assert "2000 bootstrap resamples of subjects" in few
    assert "lower bound on the uncertainty" in few and "only 126 distinct resamples" in few
    assert "4/5 of the usual estimate" in few
    assert "lower bound" not in u.caveat(40, "movies")
    assert "resamples of images" in u.caveat(1, "subjects", unit="item")
    assert u.brief_caveat(3, "movies").endswith("lower bound on the uncertainty with only 3 movies")


# -- what the page says -------------------------------------------------------------------

HEADLINE = (
    "3 members: mean test accuracy 38.10 % [23.81, 52.38]",
    "soft-vote ensemble 50.00 % [28.57, 71.43], +14.29 points [-14.29, +42.86] against member 1,"
    " the best by validation (paired on the same images; McNemar p = 1),"
    " +11.90 points [-4.76, +28.57] against the member mean (paired)",
    "test set 7 images of 2 subjects (one image = 14.29 points)",
    "a lower bound on the uncertainty with only 2 subjects",
)


def test_the_headline_carries_the_intervals_in_both_formats(report):
    _, md, html = report
    headline = _section(md, "Headline")
    header = _header(html)
    for text in HEADLINE:
        assert text in headline, text
        assert text in header, text


def test_table2_cells_show_mean_std_and_the_stored_pooled_interval(report, tmp_path):
    out, md, _ = report
    grid = _section(md, "Grid search (seed 000, Table 2)")
    t2 = pd.read_csv(out / "table2.csv")
    row = t2[(t2["lr"] == 0.0005) & (t2["hidden"] == 50)].iloc[0]
    cell = f"{100 * row['mean']:.2f} ± {100 * row['std']:.2f}; pooled 33.33 [23.81, 42.86]"
    assert re.search(rf"\| 0\.0005 \| {re.escape(cell)} \|", grid), grid
    assert "21 validation images of 3 subjects (one image = 4.76 points)" in grid
    pivot = pd.read_csv(out / "table2_pivot.csv")
    assert (
        pivot.loc[pivot["lr"] == 0.005, "hidden 100"]
        .iloc[0]
        .endswith("pooled 28.57 [19.05, 38.10]")
    )


def test_the_ensemble_states_member_mean_vote_and_the_paired_difference(report):
    out, md, _ = report
    ens = _section(md, "Ensemble (two-phase fine-tunes)")
    assert "member mean 38.10 % [23.81, 52.38]" in ens and "soft vote 50.00 % [28.57, 71.43]" in ens
    assert "paired on the same images: +14.29 points [-14.29, +42.86], not significantly" in ens
    assert "b = 2 images, only member 1 right on c = 1, exact p = 1" in ens
    assert "| soft-vote accuracy | 0.5000 | 0.2857 | 0.7143 | 7 | 2 |" in ens
    table = pd.read_csv(out / "ensemble_intervals.csv")
    assert table["high"].tolist() == [0.5238, 0.7143, 0.4286, 0.2857]
    # the best member by validation is close to a random one: the vote against the members' mean
    assert "| soft vote - member mean, paired | 0.1190 | -0.0476 | 0.2857 | 7 | 2 |" in ens
    assert "share of members right): +11.90 points [-4.76, +28.57], not significantly" in ens


def test_the_ensemble_size_curve_is_a_table_and_a_three_panel_figure(report):
    out, md, html = report
    ens = _section(md, "Ensemble (two-phase fine-tunes)")
    assert "| 2 | 0.4524 | 0.0337 | 1.8123 | 0.0105 | 0.1210 | 0.0201 | 3 | True |" in ens
    assert "accuracy 38.10 % → 50.00 %, NLL 1.901 → 1.776, ECE 0.183 → 0.093" in ens
    assert "ensemble_size_curve.png" in ens and 'data-file="ensemble_size_curve.png"' in html
    assert (out / "ensemble_size_curve.png").stat().st_size > 10_000
    assert pd.read_csv(out / "ensemble_size_curve.csv")["k"].tolist() == [1, 2, 3]


def test_pruning_counts_meet_the_paper_only_where_they_mean_the_same(report):
    _, md, _ = report
    pr = _section(md, "Feature pruning (seed 000, sections 2.5 and 3.5, Figs. 4-5)")
    rows = [line for line in pr.splitlines() if line.startswith("| ")]
    assert "| magnitude | 4 of 16 | 87 of 512 (≈16.9 %) |" in rows
    assert "| angle | 2 of 16 | 81 of 512 (≈15.8 %) |" in rows
    per_member = next(line for line in pr.splitlines() if "its own scores" in line)
    assert "magnitude 2.5, angle 3.0, random 2.5" in per_member
    assert "87" not in per_member and "81" not in per_member
    assert "paper: 87" not in md and "paper: ~25" not in md and "within 1 point" not in md


def test_pruning_rules_are_paired_differences_and_the_sweep_says_where_it_falls(report):
    out, md, _ = report
    pr = _section(md, "Feature pruning (seed 000, sections 2.5 and 3.5, Figs. 4-5)")
    assert "- none (unpruned): 38.10 % [23.81, 52.38]" in pr
    assert (
        "- magnitude: 33.33 % [19.05, 47.62]; against none -4.76 points [-9.52, -1.19], "
        "significantly lower" in pr
    )
    assert "random: 35.71 % [21.43, 50.00]; against none -2.38 points [-7.14, +2.38], not" in pr
    # 8 and 2 kept are significant on their own, 1 kept is not: walking from the most pruned
    # count, the fixed-sequence rule stops at once, so there is no fall-off to claim
    assert "at no kept count by the rule below: the most pruned count (1 kept, 95 % pruned)" in pr
    assert "is already not significantly below unpruned (-11.90 points [-23.81, +1.19])" in pr
    assert "kept features**" not in pr
    assert "Uncorrected, 2 of the 3 pruned counts have their intervals below 0 (8, 2 kept)" in pr
    assert "3 counts each tested one-sided at 2.5 %, about 0.1 would pass by chance" in pr
    assert "Holm's correction over the 3 counts (p-values of the percentile cluster bootstrap" in pr
    assert "`p_holm`), 2 are significant" in pr
    assert "read it by eye off its Fig. 5" in pr and "85-99 % pruning" in pr
    assert "| 2 | 0.9000 | 0.2143 | -0.1667 | -0.2619 | -0.0714 | True |" in pr
    b = pd.read_csv(out / "pruning_baselines.csv").set_index("rule")
    assert b.loc["magnitude", ["low", "high", "diff_low"]].tolist() == [0.1905, 0.4762, -0.0952]
    assert (out / "sweep_falloff.csv").is_file() and (out / "pruning_counts.csv").is_file()


def test_per_class_recall_carries_its_interval(report):
    out, md, _ = report
    pc = _section(md, "Per-class results")
    assert "happy 50.00 % [0.00, 100.00] (2 images)" in pc
    assert "one image = 50.00-100.00 points" in pc and "zero-width interval" in pc
    s = pd.read_csv(out / "per_class_summary.csv").set_index("class")
    assert s.loc["happy", ["vote_recall", "vote_recall_low", "vote_recall_high"]].tolist() == [
        0.5,
        0.0,
        1.0,
    ]
    cols = list(s.columns)
    assert cols.index("vote_recall_low") == cols.index("vote_recall") + 1


# -- a run made before the intervals --------------------------------------------------------


def test_a_run_before_the_intervals_builds_without_them(old_report):
    out, md, html = old_report
    headline = _section(md, "Headline")
    assert "soft-vote ensemble 50.00 %;" in headline and "[" not in headline
    grid = _section(md, "Grid search (seed 000, Table 2)")
    assert "±" in grid and "pooled" not in grid
    assert "87 of 512" not in md and "predates the count on the model-averaged scores" in md
    assert "Where accuracy falls off" not in md
    files = {p.name for p in out.iterdir()}
    gone = {"ensemble_intervals.csv", "ensemble_size_curve.csv", "ensemble_size_curve.png"}
    gone |= {"pruning_counts.csv", "sweep_falloff.csv"}
    assert not gone & files
    assert "vote_recall_low" not in pd.read_csv(out / "per_class_summary.csv")
    assert {"accuracy_mean", "accuracy_std"} <= set(pd.read_csv(out / "pruning_baselines.csv"))
    assert html.count("<img ") == 12  # 10, and the first screen's two again (issue 24)


def test_the_pooled_columns_may_be_missing_from_one_cell(tmp_path: Path):
    """A cell without out-of-fold rows (a failed trial) has no pooled value: no interval then."""
    root = write_run(tmp_path / "run")
    t2 = pd.read_csv(root / Grid.DIR / Grid.TABLE2)
    t2.loc[0, ["pooled", "low", "high"]] = float("nan")
    t2.to_csv(root / Grid.DIR / Grid.TABLE2, index=False)
    md = (build_report(root, tmp_path / "rep") / "report.md").read_text()
    assert "pooled" not in _section(md, "Grid search (seed 000, Table 2)")
