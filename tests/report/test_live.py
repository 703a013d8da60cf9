"""The report of a run that is still going (or stopped unfinished) says it is partial and what
runs; the report of a finished run does not. Built from stored files only, as during a run."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from fer_ray import trial_logs
from fer_ray.layout import DONE, PLAN, PROGRESS, STARTED
from fer_ray.report import live
from fer_ray.report.build import build_report
from fer_ray.report.run import open_run
from tests.report.fake_run import write_run

PLANNED = ("prepare", "grid", "ensemble", "analyse", "descriptors")


def _plan(root: Path, actions: dict[str, str]) -> None:
    stages = [{"stage": s, "action": a, "experiments": [s]} for s, a in actions.items()]
    (root / PLAN).write_text(json.dumps({"stages": stages}))


def _trial(root: Path, name: str, val_accs: list[float], torn: bool = False) -> None:
    """A Tune trial folder as Tune writes it under the run's default storage (``tune/``)."""
    d = root / "tune" / "grid" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / trial_logs.PARAMS).write_text(json.dumps({"lr": 0.005, "hidden": 50, "fold": 0}))
    lines = [json.dumps({"epoch": i + 1, "val_acc": v}) for i, v in enumerate(val_accs)]
    text = "\n".join(lines) + "\n" + ('{"epoch": 9, "val_a' if torn else "")
    (d / trial_logs.RESULT).write_text(text)


def _grid_running(tmp_path: Path) -> Path:
    """prepare done; grid started (2 trials reported, 1 of 6 finished); the rest to come."""
    root = write_run(tmp_path / "run", ("prepare",))
    _plan(root, {s: "run" for s in PLANNED})
    (root / "grid").mkdir()
    (root / "grid" / STARTED).write_text(json.dumps({"fingerprint": "a" * 16}))
    _trial(root, "grid_trainable_00000", [0.2, 0.25, 0.31])
    _trial(root, "grid_trainable_00001", [0.18], torn=True)  # Tune is writing its 2nd line
    progress = {"total": 6, "finished": 1, "running": 2, "errored": 0, "metric": "val_acc",
                "updated": time.time()}  # fmt: skip
    (root / "grid" / PROGRESS).write_text(json.dumps(progress))
    return root


def test_a_run_inside_its_grid_stage_reports_partial_with_what_runs(tmp_path: Path):
    root = _grid_running(tmp_path)
    out = build_report(root, tmp_path / "rep")
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert md.startswith("# fer_ray report: fake (partial: run in progress or unfinished)")
    assert "**Partial report**" in md
    running = "grid running (1 of 6 trials finished, 2 running, 4 results reported, "
    assert running + "best val_acc so far 0.310)" in md
    assert "Stages done: prepare" in md and "pending: ensemble; analyse; descriptors" in md
    assert "<title>fer_ray report: fake (partial" in html
    header = html[html.index("<header>") : html.index("</header>")]
    assert "<dt>Partial report</dt>" in header and "1 of 6 trials finished" in header
    assert "## Data" in md and "## Grid" not in md  # only what is done is shown


def test_the_final_report_replaces_the_partial_one_and_says_nothing_of_it(tmp_path: Path):
    root = _grid_running(tmp_path)
    out = build_report(root, tmp_path / "rep")
    assert "partial" in (out / "report.md").read_text()
    write_run(root, PLANNED)  # every stage finished (each writes its done.json)
    out = build_report(root, tmp_path / "rep")
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert not re.search("partial", md, re.I) and not re.search("partial", html, re.I)
    assert "grid done (12s)" in md and "descriptors done (12s)" in md


def test_started_without_done_is_partial_also_without_a_plan(tmp_path: Path):
    """A run directory as an interrupted driver leaves it, read by ``python -m fer_ray.report``:
    no plan.json (an older run), grid started.json but no done.json."""
    root = write_run(tmp_path / "run", ("prepare", "grid"))
    (root / "grid" / DONE).unlink()
    (root / "grid" / STARTED).write_text("{}")
    states, planned = live.stage_states(open_run(root))
    assert not planned
    assert [(s.stage, s.state) for s in states] == [
        ("prepare", "done"), ("grid", "running"), ("ensemble", "not run"), ("analyse", "not run"),
    ]  # fmt: skip
    md = (build_report(root, tmp_path / "rep") / "report.md").read_text()
    assert "(partial" in md and "Stages done: prepare · running: grid." in md


def test_nothing_started_without_a_plan_is_not_called_partial(tmp_path: Path):
    root = write_run(tmp_path / "run", ())
    states, planned = live.stage_states(open_run(root))
    assert not live.is_partial(states, planned)


def test_a_progress_file_older_than_the_stage_start_is_a_previous_runs(tmp_path: Path):
    root = _grid_running(tmp_path)
    old = time.time() - 3600
    os.utime(root / "grid" / PROGRESS, (old, old))
    states, _ = live.stage_states(open_run(root))
    grid = next(s for s in states if s.stage == "grid")
    assert grid.trials[0].total is None and grid.trials[0].started == 2
    assert "2 trials started, 4 results reported" in grid.text()


def test_results_frame_has_one_row_per_report_with_the_trial_config(tmp_path: Path):
    root = _grid_running(tmp_path)
    trials = trial_logs.read_trials(str(root / "tune" / "grid"))
    frame = trial_logs.results_frame(trials, "grid")
    assert len(frame) == 4 and set(frame["trial"]) == {t.name for t in trials}
    assert {"config/lr", "config/hidden", "config/fold", "val_acc", "experiment"} <= set(frame)
    assert trial_logs.experiment_path(root, {"name": "fake"}, "grid") == str(root / "tune/grid")
    shared = {"name": "fake", "output": {"storage_path": "s3://bucket/fer"}}
    assert trial_logs.experiment_path(root, shared, "grid") == "s3://bucket/fer/fake-grid"
