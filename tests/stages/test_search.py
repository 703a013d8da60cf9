"""search.algorithm=optuna end to end on smoke: TPE proposals scored as grid cells, the grid
beside it, reproducible one proposal at a time, and the report's section."""

import json

import pandas as pd
import pytest

from fer_ray.pipeline import run_pipeline
from tests.conftest import smoke_config

pytestmark = pytest.mark.slow

OPTUNA = [
    "search.algorithm=optuna",
    "search.trials=3",
    "search.compare_grid=true",
    "resources.max_concurrent_trials=1",
    "analyse.enabled=false",
    "ensemble.members=1",
]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, shared_cache):
    out = []
    for name in ("a", "b"):
        tmp = tmp_path_factory.mktemp(name)
        cfg = smoke_config(tmp, *OPTUNA, f"faces.cache_dir={shared_cache / 'crops'}")
        run_pipeline(cfg)
        out.append(tmp)
    return out


def test_optuna_trials_are_scored_like_grid_cells_and_reproducible(two_runs):
    a, b = (t / "runs" / "smoke" / "grid" for t in two_runs)
    ta, tb = (pd.read_csv(d / "optuna_trials.csv").drop(columns="trial") for d in (a, b))
    assert len(ta) == 3 and ta["complete"].all()
    pd.testing.assert_frame_equal(ta, tb)  # one proposal at a time: the same search twice
    for row in ta.itertuples():
        accs = [float(x) for x in row.fold_accs.split(",")]
        assert row.fold_mean_val_acc == pytest.approx(sum(accs) / len(accs))
        assert row.low <= row.pooled <= row.high
    chosen = json.loads((a / "chosen.json").read_text())
    best = ta.loc[ta["fold_mean_val_acc"].idxmax()]
    assert chosen["algorithm"] == "optuna" and chosen["lr"] == pytest.approx(best["lr"])
    assert "grid" in chosen["other"]  # the grid ran on the same data, for comparison
    members = pd.read_csv(a.parent / "ensemble" / "members.csv")
    assert len(members) == 1


def test_report_shows_the_search_beside_the_grid(two_runs):
    report = (two_runs[0] / "reports" / "smoke" / "report.md").read_text()
    assert "## Search: Optuna (TPE)" in report and "The grid on the same data" in report
    assert (two_runs[0] / "reports" / "smoke" / "optuna_history.png").stat().st_size > 5000
