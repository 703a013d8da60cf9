import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fer_ray.errors import ReportError
from fer_ray.layout import CONFIG, DONE, RUN_INFO, SUMMARY, Ensemble, Grid
from fer_ray.report.build import build_report, load_parts, page_blocks
from fer_ray.report.page import Shown, h2, img, p
from fer_ray.report.render import to_html, to_markdown, to_page
from fer_ray.report.run import open_run


def _run(root: Path, selected_on_test: bool) -> Path:
    cfg = {
        "name": "t",
        "model": {"weights": "synthetic", "backbone": "resnet18"},
        "grid": {"folds": 5},
        "train": {"epochs": 8},
        "ensemble": {
            "phase2_epochs": 8,
            "phase2_lr": 0.001,
            "val_fraction": 0.2,
            "selection": "test" if selected_on_test else "val",
        },
    }
    root.mkdir(parents=True)
    (root / CONFIG).write_text(yaml.safe_dump(cfg, sort_keys=False))
    (root / RUN_INFO).write_text(
        json.dumps({"git_commit": "abc123", "versions": {"ray": "2.60.0"}})
    )
    (root / Grid.DIR).mkdir()
    (root / Grid.DIR / DONE).write_text(json.dumps({"seconds": 12.0}))
    ens = root / Ensemble.DIR
    ens.mkdir()
    summary = {
        "members": 3,
        "test_acc_mean": 0.5,
        "test_acc_std": 0.05,
        "vote_acc": 0.55,
        "selected_on_test": selected_on_test,
        "chance_uniform": 1 / 7,
        "chance_majority": 0.2,
        "n_test": 40,
    }
    (ens / SUMMARY).write_text(json.dumps(summary))
    members = pd.DataFrame({"member": [0, 1, 2], "test_acc": [0.45, 0.5, 0.55]})
    members.to_csv(ens / Ensemble.MEMBERS, index=False)
    return root


@pytest.mark.parametrize("on_test", [False, True])
def test_test_selection_is_labelled_in_both_formats(on_test, tmp_path):
    blocks = page_blocks(load_parts(open_run(_run(tmp_path / "run", on_test))))
    md, html = to_markdown(blocks), to_html(blocks, "t")
    assert ("selected on test" in md) == on_test
    assert ("selected on test" in html) == on_test
    assert "50.00 % ± 5.00 %" in md and "soft-vote ensemble 55.00 %" in md
    assert "abc123" in md and "| 0 | 0.4500 |" in md


def test_missing_run_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="not a fer_ray run directory"):
        build_report(tmp_path / "nope", tmp_path / "out")


def test_a_bare_page_links_its_figures_and_a_report_page_embeds_them(tmp_path):
    blocks = [p("`code` and **bold**"), img("fig.png", "a figure")]
    bare = to_html(blocks, "t")
    assert 'src="fig.png"' in bare and "Content-Security-Policy" not in bare
    assert "<code>code</code> and <strong>bold</strong>" in bare
    (tmp_path / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    page = to_page([Shown("s", [h2("S"), *blocks])], "t", tmp_path)
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in page and "fig.png" in page
    assert "Content-Security-Policy" in page and '<a href="#s">S</a>' in page
