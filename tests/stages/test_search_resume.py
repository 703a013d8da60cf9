"""A search trial that crashes after a fold resumes at the next fold (issue: a resumed search
loses at most the fold in progress) and ends with the numbers of an uninterrupted search."""

import json

import pandas as pd
import pytest

from fer_ray.pipeline import run_pipeline
from tests.conftest import TINY, smoke_config

pytestmark = pytest.mark.slow

SEARCH = [*TINY, "search.algorithm=random", "search.trials=2",
          "resources.max_concurrent_trials=1", "search.hidden_range=[8, 32]"]  # fmt: skip


def test_a_crashed_search_trial_goes_on_at_its_next_fold(tmp_path, monkeypatch):
    cache = f"faces.cache_dir={tmp_path / 'cache' / 'crops'}"
    run_pipeline(smoke_config(tmp_path / "reference", *SEARCH, cache))
    marker = tmp_path / "fault"
    monkeypatch.setenv("FER_RAY_FAULT_AT_STEP", "1")  # after a trial's first fold
    monkeypatch.setenv("FER_RAY_FAULT_MARKER", str(marker))
    run_pipeline(smoke_config(tmp_path, *SEARCH, cache))
    assert marker.is_file(), "no fault was injected"
    (trial,) = [p for p in (tmp_path / "runs/smoke/tune/search").iterdir()
                if marker.read_text() in p.name]  # fmt: skip
    rows = [json.loads(x) for x in (trial / "result.json").read_text().splitlines() if x]
    # restarted from scratch it would report folds 1, 1, 2; resumed, fold 1 is not redone
    assert [r["folds_done"] for r in rows] == [1, 2]
    assert [r["resumed_from"] for r in rows] == [0, 1]
    # the same proposals, in the order they were proposed, with the same scores
    got, ref = (
        pd.read_csv(root / "runs/smoke/grid/search_trials.csv").drop(columns="trial")
        for root in (tmp_path, tmp_path / "reference")
    )
    pd.testing.assert_frame_equal(got, ref)
    chosen = [json.loads((root / "runs/smoke/grid/chosen.json").read_text())
              for root in (tmp_path, tmp_path / "reference")]  # fmt: skip
    assert {k: v for k, v in chosen[0].items() if k != "trial"} == {
        k: v for k, v in chosen[1].items() if k != "trial"}  # fmt: skip
