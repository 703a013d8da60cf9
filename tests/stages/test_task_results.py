import json

from fer_ray.stages.task_results import store_json, timed, work_row


def test_timed_adds_where_and_seconds_and_work_row_keeps_only_those(tmp_path):
    out = timed(lambda a, b=0: {"sum": a + b}, 2, b=3)
    assert out["sum"] == 5 and out["seconds"] >= 0
    assert set(out) == {"sum", "node_id", "node_ip", "seconds"}
    row = work_row("member 0 angles", out)
    assert row == {
        "unit": "member 0 angles",
        **{k: out[k] for k in ("node_id", "node_ip", "seconds")},
    }
    assert store_json(tmp_path / "tasks" / "00_angles.json", out) == ""
    assert json.loads((tmp_path / "tasks" / "00_angles.json").read_text()) == out
