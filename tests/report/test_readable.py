"""Issue 24, item 7: a readable report. The config as a diff from the defaults (the whole
config folded away), the confusion matrix as row-normalised percentages with a label colour
that contrasts with each cell, a partial report that refreshes itself and keeps its headline
slot, legends outside the data.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fer_ray.config_diff import flatten
from fer_ray.report.build import build_report
from fer_ray.report.render import to_html, to_markdown
from fer_ray.report.run import open_run
from fer_ray.report.sections import SECTIONS
from fer_ray.report.sections import config as config_section
from tests.report.fake_run import config as fake_config
from tests.report.fake_run import write_run


@pytest.fixture(scope="module")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("readable") / "run")


# -- the config as a diff ------------------------------------------------------------------


def test_the_config_section_shows_only_the_keys_that_differ_from_the_defaults(run_root):
    section = SECTIONS.get("config")
    blocks = section.blocks(section.load(open_run(run_root)))
    base = config_section.defaults()
    assert base, "fer_ray's defaults could not be built"
    diff = next(b[1] for b in blocks if b[0] == "code").splitlines()
    differing = [k for k, v in flatten(fake_config()).items() if base.get(k) != v]
    assert [line.split(":")[0] for line in diff] == differing
    assert "train.epochs: 3  # default: " + str(base["train.epochs"]) in diff
    assert "grid.lr: [0.005, 0.0005]  # default: [" in "\n".join(diff)
    assert len(diff) < len(base) / 4  # a handful of lines, not the whole config


def test_the_whole_config_is_folded_away_in_the_html_and_follows_in_the_markdown(run_root):
    section = SECTIONS.get("config")
    blocks = section.blocks(section.load(open_run(run_root)))
    html = to_html(blocks, "t")
    folded = re.search(r"<details><summary>(.*?)</summary><pre><code>(.*?)</code>", html, re.S)
    assert folded and folded.group(1) == "The whole config (config.yaml):"
    assert "ensemble:\n  members: 3" in folded.group(2)
    md = to_markdown(blocks)
    assert "The whole config (config.yaml):\n\n```\nname: fake\n" in md
    assert md.index("train.epochs: 3") < md.index("The whole config (config.yaml):")


def test_a_key_the_defaults_lack_is_marked_and_a_config_at_its_defaults_says_so():
    base = {"train.epochs": 6, "name": "default"}
    diff = config_section.differences({"train": {"epochs": 6}, "extra": {"k": 1}}, base)
    assert config_section.diff_text(diff) == "extra.k: 1  # no default"
    assert config_section.diff_text([]) == "(every key at its default)"


# -- the confusion matrix ------------------------------------------------------------------


def test_the_confusion_matrix_is_row_normalised_with_contrasting_labels(run_root, tmp_path):
    from matplotlib import colormaps

    from fer_ray.report.figures import contrast
    from fer_ray.report.sections import per_class

    part = per_class.load(open_run(run_root))
    counts = part.tables["confusion_vote"].set_index("true")
    labels = per_class.cell_labels(counts)
    n = len(counts)
    assert len(labels) == n * n
    # the fake vote is right on every image: 100 on the diagonal, 0 elsewhere
    assert {(t, c) for i, j, t, c in labels if i == j} == {("100", "white")}
    assert {(t, c) for i, j, t, c in labels if i != j} == {("0", "black")}
    # a mixed matrix: each row sums to 100 %, every label contrasts with its cell
    mixed = counts * 0
    mixed.iloc[0, :4] = [1, 1, 1, 1]  # 25 % each
    mixed.iloc[1, :2] = [2, 1]  # 67 %, 33 %
    shares = per_class.row_shares(mixed)
    assert shares.iloc[0, 0] == 0.25 and round(shares.iloc[1].sum(), 9) == 1
    assert shares.iloc[2].isna().all()  # a class without test images
    cmap = colormaps[per_class.CMAP]
    for i, j, text, colour in per_class.cell_labels(mixed):
        if text == "–":
            continue
        cell = cmap(float(shares.iloc[i, j]))
        other = "white" if colour == "black" else "black"
        rgb = {"black": (0, 0, 0), "white": (1, 1, 1)}
        assert contrast(cell, rgb[colour]) >= contrast(cell, rgb[other])
        assert contrast(cell, rgb[colour]) >= 4.5, (text, colour)
    assert [t for i, j, t, c in per_class.cell_labels(mixed) if i == 1][:2] == ["67", "33"]
    per_class.plots(part, tmp_path)
    assert (tmp_path / per_class.CONFUSION).stat().st_size > 1000
    caption = next(b[2] for b in per_class.blocks(part) if b[0] == "img")
    assert "row-normalised" in caption and "the diagonal is the recall" in caption


# -- the live report -----------------------------------------------------------------------


def test_a_partial_report_refreshes_itself_and_keeps_the_headline_slot(tmp_path: Path):
    from tests.report.test_live import PLANNED, _grid_running

    root = _grid_running(tmp_path)
    out = build_report(root, tmp_path / "rep")
    html, md = (out / "report.html").read_text(), (out / "report.md").read_text()
    head = html[: html.index("</head>")]
    assert '<meta http-equiv="refresh" content="30">' in head
    header = html[html.index("<header>") : html.index("</header>")]
    labels = re.findall(r"<dt>([^<]*)</dt>", header)
    assert labels[:2] == ["Headline", "Departures from the paper"], labels
    lead = re.search(r'<dd class="lead">(.*?)</dd>', header).group(1)
    assert lead.startswith("<strong>running</strong>: no result yet") and "<ul>" not in lead
    assert "still to finish: grid, ensemble, analyse, descriptors" in lead
    assert re.search(r'<span class="value">running</span>', header)
    assert header.index('class="result"') < header.index('class="glance"')
    assert "reloads itself every 30 s" in header
    assert "**Headline**: **running**: no result yet" in md

    write_run(root, PLANNED)  # every stage finished: the final report
    out = build_report(root, tmp_path / "rep")
    html, md = (out / "report.html").read_text(), (out / "report.md").read_text()
    assert 'http-equiv="refresh"' not in html and "reloads itself" not in html
    assert "running" not in html[html.index("<header>") : html.index("</header>")]
    header = html[html.index("<header>") : html.index("</header>")]
    assert re.findall(r'<span class="value">([^<]*)</span>', header)[0] == "50.00 %"


def test_a_partial_report_with_its_result_shows_the_result(tmp_path: Path):
    """The ensemble done, the analysis still running: the numbers, not ``running``."""
    from tests.report.test_live import _plan

    root = write_run(tmp_path / "run", ("prepare", "grid", "ensemble"))
    _plan(root, {s: "run" for s in ("prepare", "grid", "ensemble", "analyse")})
    html = (build_report(root, tmp_path / "rep") / "report.html").read_text()
    assert '<meta http-equiv="refresh" content="30">' in html
    header = html[html.index("<header>") : html.index("</header>")]
    assert re.findall(r'<span class="value">([^<]*)</span>', header)[0] == "50.00 %"
    lead = re.search(r'<dd class="lead">(.*?)</dd>', header).group(1)
    assert lead.startswith("3 members: mean test accuracy")


# -- legends beside the data ---------------------------------------------------------------


def _legends_clear_of_the_data(fig) -> int:
    """Every legend lies outside its axes' plotting area and inside the figure; how many."""
    fig.tight_layout()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    n = 0
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box, data = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert not box.overlaps(data), (ax.get_title(), box, data)
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, "legend cut off"
        assert all(t.get_fontsize() >= 8 for t in legend.get_texts())
        n += 1
    return n


def test_the_member_chart_and_the_learning_curves_keep_their_legends_off_the_data(run_root):
    from fer_ray.report.figures import close
    from fer_ray.report.sections import ensemble

    part = ensemble.load(open_run(run_root))
    fig = ensemble.member_accuracy_figure(part.tables["ensemble_members"], part.facts["summary"])
    assert _legends_clear_of_the_data(fig) == 1
    close(fig)
    grid = part.facts["grid_curves"]
    fig = ensemble.learning_curves_figure(grid, part.tables["ensemble_curves"])
    assert _legends_clear_of_the_data(fig) == 2
    # one curve per grid cell, each with its own colour (lr) and line style (hidden)
    lines = fig.axes[0].get_lines()
    cells = grid.groupby(["lr", "hidden"]).ngroups
    assert len(lines) == cells == 4
    looks = {(line.get_color(), str(line.get_linestyle())) for line in lines}
    assert len(looks) == cells
    by_lr: dict[str, set[str]] = {}
    for line in lines:
        lr = line.get_label().split(",")[0]
        by_lr.setdefault(lr, set()).add(line.get_color())
    assert all(len(colours) == 1 for colours in by_lr.values()) and len(by_lr) == 2
    close(fig)


def test_the_size_curve_and_the_holdout_chart_keep_their_legends_off_the_data(run_root):
    from fer_ray.report.figures import close
    from fer_ray.report.sections import ensemble
    from tests.report.fake_run import HOLDOUTS

    part = ensemble.load(open_run(run_root))
    fig = ensemble.size_curve_chart(part.tables["ensemble_size_curve"], ensemble.intervals(part))
    assert _legends_clear_of_the_data(fig) == 1  # one legend for the three panels
    labels = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert any("95 % test-set interval" in t for t in labels)
    close(fig)
    fig = ensemble.holdout_chart(HOLDOUTS)
    assert _legends_clear_of_the_data(fig) == 1
    close(fig)


def test_table_headings_may_wrap_after_underscores():
    import pandas as pd

    from fer_ray.report.render import html_table

    out = html_table(pd.DataFrame({"vote_recall_low": [0.25], "class": ["angry"]}))
    assert '<button type="button">vote_<wbr>recall_<wbr>low</button>' in out
    assert re.sub(r"<[^>]+>", "", out).startswith("vote_recall_lowclass")


def test_the_grid_heat_maps_labels_contrast_with_their_cells(run_root, tmp_path, monkeypatch):
    """The best (yellow) cells get dark digits, the dark ones light digits."""
    from fer_ray.report.figures import contrast
    from fer_ray.report.sections import grid

    figs = []
    monkeypatch.setattr(grid, "save", lambda fig, path: figs.append(fig))
    grid.plots(grid.load(open_run(run_root)), tmp_path)
    ax = figs[0].axes[0]
    im = ax.images[0]
    values = im.get_array()
    seen = set()
    for text in ax.texts:
        j, i = (round(v) for v in text.get_position())
        cell = im.cmap(im.norm(values[i, j]))[:3]
        colour = (0, 0, 0) if text.get_color() == "black" else (1, 1, 1)
        other = (1, 1, 1) if colour == (0, 0, 0) else (0, 0, 0)
        assert contrast(cell, colour) >= contrast(cell, other), text.get_text()
        seen.add(text.get_color())
    assert len(ax.texts) == values.size and seen <= {"black", "white"}


def _drawn(module, part, tmp_path: Path, monkeypatch) -> list:
    """The figures ``module.plots`` draws for ``part``, kept open instead of saved."""
    figs: list = []
    monkeypatch.setattr(module, "save", lambda fig, path: figs.append(fig))
    module.plots(part, tmp_path)
    return figs


def _clear_of_every_panel(fig) -> int:
    """As ``_legends_clear_of_the_data``, and no legend covers another panel either."""
    n = _legends_clear_of_the_data(fig)
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        if (legend := ax.get_legend()) is None:
            continue
        box = legend.get_window_extent(renderer)
        for other in fig.axes:
            assert not box.overlaps(other.get_window_extent(renderer)), other.get_title()
        assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1, "legend cut off"
    return n


def test_the_pruning_figures_keep_their_legends_off_every_panel(run_root, tmp_path, monkeypatch):
    from fer_ray.report.figures import close
    from fer_ray.report.sections import pruning

    figs = _drawn(pruning, pruning.load(open_run(run_root)), tmp_path, monkeypatch)
    assert len(figs) == 2  # Fig. 4 (bars, no legend) and Fig. 5 (three panels)
    assert _clear_of_every_panel(figs[0]) == 0
    sweep = figs[1]
    assert len(sweep.axes) == 3
    assert _clear_of_every_panel(sweep) == 2  # the two orders once, the paired difference
    texts = [t.get_text() for t in sweep.axes[0].get_legend().get_texts()]
    assert texts == ["random order (mean)", "magnitude order (mean)"]
    for fig in figs:
        close(fig)


def test_the_lr_finder_plot_keeps_its_legend_off_the_data(tmp_path, monkeypatch):
    from fer_ray.report.figures import close
    from fer_ray.report.sections import training
    from tests.report.fake_run import TRAINING

    root = write_run(tmp_path / "run", ("prepare", "grid", "ensemble", TRAINING))
    part = training.load(open_run(root))
    assert part.facts["finder"], "the fake run should have an LR range test"
    (fig,) = _drawn(training, part, tmp_path, monkeypatch)
    assert _clear_of_every_panel(fig) == 1
    close(fig)


def test_the_architectures_chart_tells_its_curves_apart_beside_the_data(tmp_path, monkeypatch):
    from fer_ray.report.figures import close, contrast
    from fer_ray.report.sections import architectures
    from tests.report.test_seed_002_003_sections import _grid, _run

    root = _run(tmp_path / "run")
    _grid(root)
    part = architectures.load(open_run(root))
    confusion, loss = _drawn(architectures, part, tmp_path, monkeypatch)
    assert _clear_of_every_panel(loss) == 1
    lines = loss.axes[0].get_lines()
    assert len(lines) == 2
    looks = {(str(line.get_linestyle()), line.get_marker()) for line in lines}
    assert len(looks) == 2, "each backbone its own line style and marker"
    for ax in confusion.axes:  # every count readable on its cell
        im = ax.images[0]
        for text in ax.texts:
            j, i = (round(v) for v in text.get_position())
            cell = im.cmap(im.norm(im.get_array()[i, j]))[:3]
            mine = (0, 0, 0) if text.get_color() == "black" else (1, 1, 1)
            other = (1, 1, 1) if mine == (0, 0, 0) else (0, 0, 0)
            assert contrast(cell, mine) >= contrast(cell, other), text.get_text()
    close(confusion)
    close(loss)
