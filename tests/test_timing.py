"""The estimate per stage against the measured seconds (``fer_ray.timing``): what a run
records, how the dry run calibrates from earlier runs, and a real tiny run's record, report
and next dry run. No assertion on how long anything took: the machine's load decides that."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from fer_ray import files, timing
from fer_ray.timing import Row
from tests.conftest import TINY, smoke_config


def _invocation(stages: dict[str, tuple[float, float]], where: str = "here") -> dict:
    """An earlier invocation: per stage (probe's figure, measured seconds)."""
    return {
        "machine": timing.machine(where),
        "stages": [{"stage": s, "action": "run", "probe_s": p} for s, (p, _) in stages.items()],
        "measured": {s: m for s, (_, m) in stages.items()},
    }


def test_without_earlier_runs_the_probe_is_the_estimate_and_a_skipped_stage_costs_nothing():
    rows = [
        Row(timing.RAY_START, "", 6.0, 6.0, "fixed overhead", {"ray start": 6.0}),
        Row("prepare", "skip", 0.0, 0.0, ""),
        Row("grid", "run", 100.0, None, "", {"features": 40.0, "grid": 60.0}),
        Row("rules", "run", None, None, ""),
    ]
    out = {r.stage: r for r in timing.calibrate(rows, [])}
    assert out["grid"].seconds == 100.0 and out["grid"].basis == "probe"
    assert out["grid"].parts == {"features": 40.0, "grid": 60.0}
    assert out["prepare"].seconds == 0.0 and out["prepare"].basis == "done: skipped"
    assert out["rules"].seconds is None and "not estimated" in out["rules"].basis
    assert out[timing.RAY_START].basis == "fixed overhead"
    assert timing.total(list(out.values())) == 106.0


def test_earlier_runs_scale_each_stage_by_its_own_measured_to_probe_ratio():
    earlier = [
        _invocation({"grid": (100.0, 50.0), "ensemble": (10.0, 30.0), "rules": (0.0, 9.0)}),
        _invocation({"grid": (200.0, 100.0), "ensemble": (20.0, 60.0)}),
        _invocation({"grid": (1_000.0, 1.0), "analyse": (400.0, 1.0)}),  # far: beyond SPAN
    ]
    earlier[0]["stages"][2]["probe_s"] = None  # a stage with no estimate hook: measured 9 s
    rows = [Row("grid", "run", 150.0, None, "", {"features": 50.0, "grid": 100.0}),
            Row("ensemble", "run", 10.0, None, "", {"ensemble": 10.0}),
            Row("rules", "run", None, None, ""),
            Row("analyse", "run", 4.0, None, "", {"analyse": 4.0})]  # fmt: skip
    timing_near = timing.NEAREST
    try:
        timing.NEAREST = 2
        out = {r.stage: r for r in timing.calibrate(rows, earlier)}
    finally:
        timing.NEAREST = timing_near
    assert out["grid"].seconds == pytest.approx(75.0)  # x 0.5
    assert out["grid"].parts == {"features": pytest.approx(25.0), "grid": pytest.approx(50.0)}
    assert out["ensemble"].seconds == pytest.approx(30.0)  # x 3
    assert "2 earlier run(s)" in out["grid"].basis and "x 3.00" in out["ensemble"].basis
    assert out["rules"].seconds == 9.0 and "measured in 1 earlier run" in out["rules"].basis
    # measured only at 100x its size: a smoke run says nothing about a long run, nor back
    assert out["analyse"].seconds == 4.0 and out["analyse"].basis == "probe"


def test_a_resumed_stage_another_machine_or_another_probe_does_not_calibrate(tmp_path: Path):
    resumed = _invocation({"grid": (100.0, 10.0)})
    resumed["stages"][0]["action"] = "resume"  # its seconds are only the remainder
    assert timing.ratios([resumed]) == {}
    runs = tmp_path / "runs"
    for name, inv in (("a", _invocation({"grid": (1.0, 2.0)})),
                      ("b", _invocation({"grid": (1.0, 2.0)}, where="elsewhere")),
                      ("d", _invocation({"grid": (1.0, 2.0)}))):  # fmt: skip
        files.write_json(runs / name / timing.TIMING, {"invocations": [inv]})
    d = timing.read(runs / "d")[0]
    d["machine"]["method"] = "median-step"  # probed another way: its ratios do not apply
    files.write_json(runs / "d" / timing.TIMING, {"invocations": [d]})
    (runs / "c").mkdir()
    (runs / "c" / timing.TIMING).write_text("{torn")  # damaged: ignored, never fatal
    assert len(timing.earlier(runs, timing.machine("here"))) == 1


def test_a_run_records_its_estimate_then_each_measured_stage(tmp_path: Path):
    rows = [Row("prepare", "run", 2.0, 2.0, "probe"), Row("grid", "skip", 0.0, 0.0, "")]
    for _ in range(timing.KEEP + 2):
        timing.start(tmp_path, rows, "here")
    timing.measured(tmp_path, "prepare", 3.0)
    timing.measured(tmp_path, "total", 4.0)
    runs = timing.read(tmp_path)
    assert len(runs) == timing.KEEP  # the oldest invocations go first
    last = runs[-1]
    assert last["measured"] == {"prepare": 3.0, "total": 4.0}
    assert [r["stage"] for r in last["stages"]] == ["prepare", "grid"]
    rows_out = timing.comparison(last)
    assert [r["stage"] for r in rows_out] == ["prepare", "total"]  # skipped: not compared
    assert rows_out[0]["ratio"] == pytest.approx(1.5)
    lines = timing.comparison_lines(last)
    assert re.search(r"prepare\s+2\s+3\s+1\.50", lines[1])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_real_run_records_measured_seconds_per_stage_beside_the_estimate(
    tmp_path: Path, shared_cache: Path, capsys
):
    """A tiny run: its timing.json has the estimate and the measured seconds of every stage it
    ran, the terminal and the report show them side by side, and the next dry run of another
    run on this machine is calibrated by it."""
    from fer_ray.pipeline import run_pipeline
    from fer_ray.plan import dry_run

    cache = f"faces.cache_dir={shared_cache / 'crops'}"
    cfg = smoke_config(tmp_path, "name=timed", cache, *TINY)
    report = run_pipeline(cfg)
    out = capsys.readouterr().out
    inv = timing.read(tmp_path / "runs" / "timed")[-1]
    ran = ["prepare", "grid", "ensemble"]  # analyse is off in TINY
    assert [r["stage"] for r in inv["stages"]] == [timing.RAY_START, *ran, timing.REPORT]
    assert all(r["estimate_s"] is not None and r["estimate_s"] > 0 for r in inv["stages"])
    assert set(inv["measured"]) == {timing.RAY_START, *ran, timing.REPORT, "total"}
    for stage in ran:  # the same seconds as the stage's done.json
        done = files.read_json(tmp_path / "runs" / "timed" / stage / "done.json")
        assert inv["measured"][stage] == done["seconds"]
    assert "[estimate]   grid" in out and "time, estimated and measured" in out
    table = pd.read_csv(report / "timing.csv", dtype=str)
    assert list(table["stage"]) == [timing.RAY_START, *ran, timing.REPORT, "total"]
    assert table.set_index("stage").loc[ran, "measured s"].str.fullmatch(r"\d+").all()
    assert "Time per stage in seconds" in (report / "report.md").read_text()

    lines: list[str] = []
    plan = dry_run(smoke_config(tmp_path, "name=next", cache, *TINY), out=lines.append)
    rows = {r.stage: r for r in plan.rows}
    assert list(rows) == [timing.RAY_START, *ran, timing.REPORT]  # a row per enabled stage
    for stage in ran:
        assert "earlier run(s) here" in rows[stage].basis, rows[stage]
    assert plan.total_s == pytest.approx(timing.total(plan.rows))
    assert any(re.match(r"\s+grid\s+run\s+\d+\s+\d+\s+probe x ", line) for line in lines)
