"""The report's search section from a fake run's search files: which searcher and scheduler ran,
the importance method, the stored study, and a run from a searcher without fANOVA."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fer_ray.layout import Grid
from fer_ray.report.build import build_report
from tests.report.fake_run import write_run


def _section(md: str) -> str:
    start = md.index("## Search: ")
    end = md.find("\n## ", start + 1)
    return md[start : end if end >= 0 else None]


def test_the_section_names_the_searcher_scheduler_and_study(tmp_path: Path):
    out = build_report(write_run(tmp_path / "run"), tmp_path / "rep")
    sec = _section((out / "report.md").read_text())
    assert sec.startswith("## Search: optuna")
    assert "Ray Tune searcher optuna (n_startup_trials=2), scheduler" in sec
    assert "scheduler async_hyperband on the fold count" in sec
    assert "grid/search_study.db (optuna-dashboard opens it)" in sec
    assert "Parameter importance (fANOVA" in sec and "| lr | 0.7000 |" in sec
    assert "optuna's best is -" in sec or "optuna's best is +" in sec
    assert (out / "search_history.png").stat().st_size > 5000


def test_a_random_search_without_scheduler_says_so(tmp_path: Path):
    root = write_run(tmp_path / "run")
    summary_path = root / Grid.DIR / Grid.SEARCH_SUMMARY
    s = json.loads(summary_path.read_text())
    s.update(algorithm="random", options={}, scheduler="none", importance="variance", study=None)
    summary_path.write_text(json.dumps(s))
    imp = pd.read_csv(root / Grid.DIR / Grid.SEARCH_IMPORTANCE).assign(method="variance")
    imp.to_csv(root / Grid.DIR / Grid.SEARCH_IMPORTANCE, index=False)
    chosen_path = root / Grid.DIR / Grid.CHOSEN
    chosen_path.write_text(
        json.dumps({**json.loads(chosen_path.read_text()), "algorithm": "random"})
    )
    sec = _section((build_report(root, tmp_path / "rep") / "report.md").read_text())
    assert sec.startswith("## Search: random")
    assert "Ray Tune searcher random, no scheduler (every proposal runs every fold)" in sec
    assert "share of the objective's variance" in sec and "optuna-dashboard" not in sec
    assert "The ensemble trains with random's choice." in sec
