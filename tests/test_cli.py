"""``fer-ray``: one command whose subcommands are the modules' own entry points, ``--version``,
and ``-c NAME`` finding a shipped config (an unknown name lists them)."""

from __future__ import annotations

import sys

import pytest
import yaml

from fer_ray import __version__, cli, shipped_configs
from fer_ray.errors import ConfigError
from tests.conftest import ROOT

SHIPPED = sorted(p.stem for p in (ROOT / "tune_configs").glob("*.yaml"))


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"fer-ray {__version__}\n"
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith("usage: fer-ray")
    for name in ("tune", "report", "compare", "predict", "data"):
        assert f"\n  {name} " in out


def test_an_unknown_or_missing_command_is_a_usage_error(capsys):
    for argv in (["tnue"], []):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
    assert "invalid choice: 'tnue'" in capsys.readouterr().err


def test_tune_runs_fer_ray_tune_with_a_shipped_config_by_name(capsys):
    assert cli.main(["tune", "-c", "smoke", "--set", "seed=3", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["name"] == "smoke" and printed["seed"] == 3
    assert printed["data"]["n_subjects"] == 12  # smoke.yaml's own value, not a default
    assert cli.main(["tune", "-c", "sfew_paper.yaml", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["name"] == "sfew_paper"
    assert cli.main(["tune", "--print-config"]) == 0  # no -c: the shipped default
    assert yaml.safe_load(capsys.readouterr().out)["name"] == "default"


def test_an_unknown_config_name_lists_the_shipped_ones(capsys):
    assert cli.main(["tune", "-c", "sfew_papr", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error: config file sfew_papr does not exist")
    assert "did you mean 'sfew_paper'?" in err
    assert f"(shipped: {', '.join(SHIPPED)})" in err and len(err.splitlines()) == 1


def test_every_config_in_the_repository_ships():
    assert shipped_configs.names() == SHIPPED
    assert {"default", "smoke", "sfew_paper"} <= set(SHIPPED)
    assert (
        shipped_configs.find("smoke").read_text() == (ROOT / "tune_configs/smoke.yaml").read_text()
    )
    local = ROOT / "tune_configs" / "smoke.yaml"
    assert shipped_configs.find(str(local)) == local  # a file path is used as it is
    with pytest.raises(ConfigError, match="shipped: "):
        shipped_configs.find("nowhere/smoke.yaml")  # a path that is not there is not a name


def test_report_and_compare_go_to_the_report_module(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert cli.main(["report", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["compare", str(missing)])
    assert e.value.code == 2 and "two or more" in capsys.readouterr().err
    assert cli.main(["compare", str(missing), str(tmp_path / "other")]) == 2
    assert str(missing) in capsys.readouterr().err


def test_report_help_has_no_markup(capsys):
    with pytest.raises(SystemExit):
        cli.main(["report", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: fer-ray report") and "``" not in out


def test_predict_and_data_go_to_their_modules(tmp_path, capsys):
    assert cli.main(["predict", "--run", str(tmp_path / "nope"), "face.png"]) == 2
    assert str(tmp_path / "nope") in capsys.readouterr().err
    assert cli.main(["data", "imagefolder", str(tmp_path / "none")]) == 2
    assert str(tmp_path / "none") in capsys.readouterr().err


def test_python_dash_m_fer_ray_is_the_same_command():
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "fer_ray", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out == f"fer-ray {__version__}\n"
