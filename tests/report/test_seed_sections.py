"""The rules (seed 001) and clean (seed 004) report sections on hand-made stage results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_ray.report.render import to_markdown
from fer_ray.report.run import open_run
from fer_ray.report.sections import SECTIONS
from tests.report.fake_run import write_run
from tests.report.fake_seed_stages import write_clean, write_rules


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    root = write_run(tmp_path / "runs" / "fake")
    rng = np.random.default_rng(0)
    write_rules(root / "rules", rng)
    write_clean(root / "clean", rng)
    return root


@pytest.mark.parametrize("name", ["rules", "clean"])
def test_no_stage_results_no_section(tmp_path: Path, name: str):
    assert SECTIONS.get(name).load(open_run(write_run(tmp_path / "runs" / "bare"))) is None


def test_rules_section_beside_seed_001(run_dir: Path, tmp_path: Path):
    section = SECTIONS.get("rules")
    part = section.load(open_run(run_dir))
    section.plots(part, tmp_path)
    assert (tmp_path / "rules_depth_sweep.png").stat().st_size > 1000
    text = to_markdown(section.blocks(part))
    assert "seed 001: 96.64 %" in text and "54.90 %" in text
    assert "1 - 1/7 = 85.71 %" in text  # the floor the per-class mean cannot fall below
    fid = part.tables["rules_fidelity"].set_index("class")
    assert fid.loc["angry", "seed001"] == 0.9934 and np.isnan(fid.iloc[-1]["seed001"])
    # only the first explained member's rules are printed, every class of it
    code = next(b[1] for b in section.blocks(part) if b[0] == "code")
    assert code.count("member 0 ·") == 3 and "member 1" not in code


def test_clean_section_gallery_flags_and_intervals(run_dir: Path, tmp_path: Path):
    section = SECTIONS.get("clean")
    part = section.load(open_run(run_dir))
    section.plots(part, tmp_path)
    for png in ("clean_gallery.png", "clean_losses.png"):
        assert (tmp_path / png).stat().st_size > 1000
    text = to_markdown(section.blocks(part))
    s = part.facts["summary"]["flags"]
    assert f"precision {100 * s['precision']:.2f} % (flagging at random: 10.00 %)" in text
    assert "flagged 54.00 % [44.00, 64.00], +4.00 points [+0.00, +8.00] vs none" in text
    assert "Flagged against the oracle: -3.00 points [-7.00, +1.00]" in text
    assert "36.70 %" in text and "30.03 %" in text


def test_clean_section_says_its_none_members_are_the_ensembles(run_dir: Path):
    """One member trainer: the 'none' variant is the ensemble's members under any train.*."""
    from fer_ray.recipes.clean import report as clean

    s = SECTIONS.get("clean").load(open_run(run_dir)).facts["summary"]
    assert "the ensemble's own members" in clean.retrain_text(s, "subjects")
    assert "not the ensemble's" not in clean.retrain_text(s, "subjects")
