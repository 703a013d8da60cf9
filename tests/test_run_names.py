"""Run names cannot escape the runs and reports folders, and --fresh deletes only a run folder
fer_ray made, and only after every input check passed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_ray import config as config_mod
from fer_ray import layout
from fer_ray.errors import ConfigError
from fer_ray.layout import RunPaths
from fer_ray.tune import main

SMOKE = str(Path(__file__).resolve().parent.parent / "tune_configs" / "smoke.yaml")


@pytest.mark.parametrize("name", ["../x", "/abs/folder", "a/b", "..", ".", "''", "a b", "x\\y"])
def test_unsafe_names_are_config_errors(name: str) -> None:
    with pytest.raises(ConfigError, match="must be one folder name"):
        config_mod.load(SMOKE, [f"name={name}"])


@pytest.mark.parametrize("name", ["smoke", "run-1.b_2", "A..b"])
def test_plain_names_are_accepted(name: str) -> None:
    assert config_mod.load(SMOKE, [f"name={name}"]).name == name


def test_a_symlink_out_of_the_runs_folder_is_refused(tmp_path: Path) -> None:
    runs, outside = tmp_path / "runs", tmp_path / "precious"
    runs.mkdir()
    outside.mkdir()
    (runs / "evil").symlink_to(outside)
    cfg = config_mod.load(SMOKE, ["name=evil", f"output.runs_dir={runs}"])
    with pytest.raises(ConfigError, match="outside output.runs_dir"):
        RunPaths.of(cfg)
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "evil").symlink_to(outside)
    cfg = config_mod.load(SMOKE, ["name=ok", f"output.reports_dir={reports}"])
    layout.report_dir(cfg)  # a plain name is fine
    cfg = config_mod.load(SMOKE, ["name=evil", f"output.reports_dir={reports}"])
    with pytest.raises(ConfigError, match="outside output.reports_dir"):
        layout.report_dir(cfg)


def _args(tmp_path: Path, name: str, *more: str) -> list[str]:
    return ["-c", SMOKE, "--set", f"name={name}", "--set", f"output.runs_dir={tmp_path / 'runs'}",
            "--set", f"output.reports_dir={tmp_path / 'reports'}", *more]  # fmt: skip


def test_fresh_with_an_escaping_name_deletes_nothing(tmp_path: Path, capsys) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("years of work")
    for name in (str(victim), "../victim", "../../victim"):
        assert main(_args(tmp_path, name, "--fresh")) == 2
        assert "must be one folder name" in capsys.readouterr().err
    assert main(_args(tmp_path, "../victim", "--dry-run")) == 2
    assert (victim / "thesis.tex").read_text() == "years of work"


def test_fresh_refuses_a_folder_fer_ray_did_not_make(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "runs" / "mine"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("keep me")
    assert main(_args(tmp_path, "mine", "--fresh")) == 1
    err = capsys.readouterr().err
    assert "is not a fer_ray run folder" in err and "notes" not in err
    assert (folder / "notes.txt").read_text() == "keep me"


def test_fresh_deletes_nothing_when_an_input_check_fails(tmp_path: Path, capsys) -> None:
    run = tmp_path / "runs" / "old"
    run.mkdir(parents=True)
    (run / layout.MARKER).touch()
    (run / "result.csv").write_text("a,b\n1,2\n")
    bad = ["--set", "data.name=imagefolder", "--set", f"data.root={tmp_path / 'no_such'}"]
    assert main(_args(tmp_path, "old", "--fresh", *bad)) == 2
    assert "data error" in capsys.readouterr().err
    assert (run / "result.csv").is_file()
