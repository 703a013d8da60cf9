"""``python -m fer_ray.predict``: the errors that need no finished run (the predictions
themselves are checked on a trained run in tests/stages/test_seed_stages.py)."""

from __future__ import annotations

import pytest

from fer_ray import config, predict


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    assert predict.main(["--run", str(tmp_path / "nope"), "x.png"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"data error: --run {tmp_path / 'nope'}: not a fer_ray run directory (no config.yaml)"
    )


def test_an_unfinished_run_says_what_is_missing(tmp_path, capsys):
    run = tmp_path / "runs" / "half"
    run.mkdir(parents=True)
    config.save(config.from_dict({}, [f"output.runs_dir={tmp_path / 'runs'}"]), run / "config.yaml")
    assert predict.main(["--run", str(run), "x.png"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: run {run} is not finished: {run / 'ensemble' / 'done.json'}")
    assert "--resume" in err and "\n" not in err


def test_an_unknown_detector_gets_a_did_you_mean(tmp_path, capsys):
    assert predict.main(["--run", str(tmp_path), "--detector", "har", "x.png"]) == 2
    assert "did you mean 'haar'?" in capsys.readouterr().err


@pytest.mark.parametrize(("run_detector", "override", "used"), [
    ("groundtruth", None, "haar"), ("dlib", None, "dlib"), ("groundtruth", "center", "center"),
])  # fmt: skip
def test_a_groundtruth_run_detects_with_haar(run_detector, override, used):
    cfg = config.from_dict({}, [f"faces.detector={run_detector}"])
    assert predict.detector_name(cfg, override) == used
