"""``python -m fer_ray.tune --dry-run``: the plan the fingerprints decide, in words, the work and
an estimate, with nothing run and nothing written. Without Ray (a stored run is faked by
writing the stage files the pipeline writes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fer_ray import config, files, layout, pipeline, timing, tune
from fer_ray.estimate import slots as _slots
from fer_ray.plan import dry_run, stage_plan
from fer_ray.recipes.core.estimates import tune_stage as _tune_stage
from fer_ray.stages.capacity import capacity
from fer_ray.stages.cluster import Node, dashboard_token_note
from tests.conftest import SMOKE, smoke_config


def _fake_done_run(cfg, inputs, stages=("prepare", "grid", "ensemble", "analyse")) -> Path:
    """The stage files a finished run leaves: started.json (with its keys) and done.json."""
    root = layout.RunPaths.of(cfg).root
    root.mkdir(parents=True, exist_ok=True)
    config.save(cfg, root / layout.CONFIG)
    fps, keys = pipeline.stage_fingerprints(cfg, inputs), pipeline.stage_inputs(cfg, inputs)
    for s in stages:
        files.write_json(root / s / layout.STARTED, {"fingerprint": fps[s], "keys": keys[s]})
        files.write_json(root / s / layout.DONE, {"fingerprint": fps[s], "seconds": 1.0})
    return root


def test_a_finished_run_is_skipped_and_a_changed_key_is_named(tmp_path: Path):
    cfg = smoke_config(tmp_path)
    inputs = pipeline.input_identity(cfg)
    _fake_done_run(cfg, inputs)
    plans = stage_plan(cfg, False, False, inputs)
    assert [(p.stage, p.action) for p in plans][:4] == [(s, "skip") for s in
                                                        ("prepare", "grid", "ensemble", "analyse")]  # fmt: skip
    changed = smoke_config(tmp_path, "grid.lr=[0.01]")
    why = {p.stage: (p.action, p.why) for p in stage_plan(changed, False, False, inputs)}
    assert why["prepare"][0] == "skip"
    assert why["grid"] == ("run", "inputs changed: grid.lr: [0.005, 0.0005] → [0.01]")
    assert why["ensemble"] == ("run", "grid reruns, so everything after it does")
    assert why["descriptors"] == ("off", "turned off by the config")
    fresh = {p.stage: p.action for p in stage_plan(cfg, False, True, inputs)}
    assert fresh["prepare"] == fresh["analyse"] == "run"


def test_an_interrupted_stage_says_the_run_would_stop_without_resume(tmp_path: Path):
    cfg = smoke_config(tmp_path)
    inputs = pipeline.input_identity(cfg)
    root = _fake_done_run(cfg, inputs)
    (root / "ensemble" / layout.DONE).unlink()
    plans = {p.stage: p for p in stage_plan(cfg, False, False, inputs)}
    assert plans["ensemble"].action == "resume" and "add --resume" in plans["ensemble"].why
    assert plans["analyse"].action == "run"
    resumed = {p.stage: p for p in stage_plan(cfg, True, False, inputs)}
    assert resumed["ensemble"].why.startswith("interrupted; --resume finishes it")


def test_the_dry_run_prints_work_resources_and_an_estimate_and_writes_nothing(
    tmp_path: Path, capsys
):
    sets = [f"output.runs_dir={tmp_path / 'runs'}", f"output.reports_dir={tmp_path / 'rep'}"]
    argv = ["--config", str(SMOKE), "--dry-run"] + [a for s in sets for a in ("--set", s)]
    assert tune.main(argv) == 0
    out = capsys.readouterr().out
    assert not (tmp_path / "runs").exists() and not (tmp_path / "rep").exists()
    assert re.search(r"prepare\s+run\s+no results yet", out)
    assert re.search(r"grid\s+run\s+prepare reruns, so everything after it does", out)
    assert "grid: 6 trials x 3 epochs on ~84 training images (validation ~42)" in out
    assert "ensemble: 3 members x 5 epochs (3 + 2)" in out
    assert "analyse: 18 Ray tasks (3 members x 6 analyses)" in out
    assert "each trial 1 CPU; each task 1 CPU" in out
    assert "local Ray with 2 CPU (resources.num_cpus), " in out and "2 trials" in out
    assert re.search(
        r"probe \(cpu, 1 thread\(s\), \d+ images of 48 px, trials train on features\)", out
    )
    assert re.search(r"estimate: [\d.]+ (s|min) wall \(ray start", out)


def test_the_estimate_adds_its_parts(tmp_path: Path):
    plan = dry_run(smoke_config(tmp_path), out=lambda line: None)
    assert set(plan.estimate) >= {"ray start", "prepare", "grid", "ensemble", "analyse"}
    assert plan.total_s == pytest.approx(sum(plan.estimate.values()))
    assert plan.total_s == pytest.approx(timing.total(plan.rows))
    assert plan.facts["images"] == 168 and plan.facts["trial_slots"] == 2


def test_the_estimate_has_a_row_per_enabled_stage(tmp_path: Path):
    """Every stage that is on gets a row (a skipped one costs nothing, one without an estimate
    hook says so), between Ray's start and the report; off stages get none."""
    cfg = smoke_config(tmp_path, "newfaces.enabled=true")
    inputs = pipeline.input_identity(cfg)
    _fake_done_run(cfg, inputs, stages=("prepare",))
    lines: list[str] = []
    plan = dry_run(cfg, out=lines.append)
    on = [p.stage for p in plan.stages if p.action != "off"]
    assert "newfaces" in on and "descriptors" not in on
    assert [r.stage for r in plan.rows] == [timing.RAY_START, *on, timing.REPORT]
    rows = {r.stage: r for r in plan.rows}
    assert rows["prepare"].action == "skip" and rows["prepare"].seconds == 0.0
    assert rows["grid"].action == "run" and rows["grid"].seconds > 0
    assert set(rows["grid"].parts) == {"features", "grid"}
    assert rows["newfaces"].seconds is None and "not estimated" in rows["newfaces"].basis
    table = lines[lines.index(next(x for x in lines if x.startswith("estimate per stage"))) + 1 :]
    for stage in on:
        assert any(re.match(rf"\s+{re.escape(stage)}\s", line) for line in table), stage
    assert not (tmp_path / "runs" / "smoke" / timing.TIMING).exists()  # the dry run writes nothing


def test_slots_and_waves():
    nodes = [Node("a", "x", 8, 1), Node("b", "y", 4, 0)]
    assert _slots(nodes, 1, 0) == 12 and _slots(nodes, 2, 0) == 6
    assert _slots(nodes, 1, 0.25) == 4  # the GPU node holds four, the CPU node none
    one, at_once = _tune_stage(trials=5, per_trial=10.0, slots=2, reports=0)
    three, _ = _tune_stage(trials=6, per_trial=10.0, slots=2, reports=0)
    assert at_once == 2 and three - one == pytest.approx(0.0)  # both are 3 waves


def test_an_unreachable_cluster_falls_back_to_this_machine(tmp_path: Path):
    cfg = smoke_config(tmp_path, "resources.address=127.0.0.1:9", "resources.connect_timeout_s=2")
    cap = capacity(cfg)
    assert cap.where.startswith("the cluster at 127.0.0.1:9 did not answer")
    assert cap.nodes[0].cpu == 2


def test_the_dashboard_note_says_where_the_token_is_only_when_auth_is_on():
    assert dashboard_token_note("127.0.0.1:8265", None, joined=False) is None
    assert dashboard_token_note(None, "token", joined=False) is None
    local = dashboard_token_note("127.0.0.1:8265", "token", joined=False)
    assert "`ray get-auth-token`" in local and "~/.ray/auth_token" in local
    assert "Authorization: Bearer <token>" in local
    assert "on its head" in dashboard_token_note("10.0.0.1:8265", "TOKEN", joined=True)


def test_the_dry_run_lists_every_problem_at_once(tmp_path: Path, capsys):
    """Requests no node can hold: all named at once, before anything is probed or run."""
    sets = [f"output.runs_dir={tmp_path / 'runs'}", "resources.gpus_per_trial=0.25",
            "resources.cpus_per_task=64"]  # fmt: skip
    argv = ["--config", str(SMOKE), "--dry-run"] + [a for s in sets for a in ("--set", s)]
    assert tune.main(argv) == 1
    out, err = capsys.readouterr()
    problems = [line for line in out.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 3, out  # a GPU job pretrains on a GPU too: that request fails
    assert "gpus_per_trial asks for 1 CPU + 0.25 GPU" in problems[0]
    assert "features_cpus/features_gpus asks for 2 CPU + 1 GPU" in problems[1]
    assert "cpus_per_task asks for 64 CPU" in problems[2]
    assert "found 3 problem(s)" in err and not (tmp_path / "runs").exists()
