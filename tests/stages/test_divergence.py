"""A diverged trial is named, not scored as chance: Table 2, the report and the terminal say
which cells diverged, they are never chosen, and a grid where every cell diverged stops."""

from __future__ import annotations

import pandas as pd
import pytest

from fer_ray.tune import main
from tests.conftest import SMOKE

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]  # one Ray, both runs


def _args(tmp, name, lr):
    return ["-c", str(SMOKE), "--set", f"name={name}", "--set", f"output.runs_dir={tmp / 'runs'}",
            "--set", f"output.reports_dir={tmp / 'reports'}", "--set", f"grid.lr={lr}",
            "--set", "train.optimizer=sgd", "--set", "ensemble.members=1",
            "--set", "analyse.enabled=false"]  # fmt: skip


def test_diverged_cells_are_named_and_never_chosen(tmp_path, capsys):
    assert main(_args(tmp_path, "div", "[1.0e+30, 0.005]")) == 0
    out = capsys.readouterr().out
    assert "[grid] diverged (non-finite loss; no score, never chosen): lr=1e+30" in out
    run = tmp_path / "runs" / "div"
    t2 = pd.read_csv(run / "grid" / "table2.csv").set_index("lr")
    assert t2.loc[1e30, "diverged"] == t2.loc[1e30, "count"] and pd.isna(t2.loc[1e30, "mean"])
    assert t2.loc[0.005, "diverged"] == 0 and t2.loc[0.005, "mean"] > 0
    chosen = pd.read_json(run / "grid" / "chosen.json", typ="series")
    assert chosen["lr"] == 0.005
    report = (tmp_path / "reports" / "div" / "report.md").read_text()
    assert "**Diverged**" in report and "diverged (3 of 3 folds)" in report


def test_a_grid_where_every_cell_diverged_stops_with_one_line(tmp_path, capsys):
    assert main(_args(tmp_path, "alldiv", "[1.0e+30]")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: every one of the 1 searched cells diverged")
    assert not (tmp_path / "runs" / "alldiv" / "grid" / "done.json").exists()
