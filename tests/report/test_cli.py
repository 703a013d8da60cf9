"""``python -m fer_ray.report``: rebuilds from stored files with no Ray, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fer_ray.layout import SUMMARY, Analyse
from fer_ray.report.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def test_rebuilds_without_ray_or_stages(full_run: Path, tmp_path: Path):
    code = (
        "import sys, fer_ray.report.__main__ as m; r = m.main(sys.argv[1:]);"
        "bad = [k for k in sys.modules if k.split('.')[0] == 'ray' or k.startswith('fer_ray.st')];"
        "assert not bad, bad; sys.exit(r)"
    )
    out = tmp_path / "rep"
    subprocess.run(
        [sys.executable, "-c", code, str(full_run), "--out", str(out)], check=True, cwd=ROOT
    )
    assert (out / "report.md").is_file() and (out / "report.html").read_text().count("<table") > 5


def test_not_a_run_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert main([str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("report error: ") and "config.yaml" in err
    assert not (tmp_path / "out").exists()


def test_a_half_written_stage_names_the_missing_file(full_run: Path, tmp_path: Path, capsys):
    (full_run / Analyse.DIR / Analyse.SWEEP).unlink()
    assert (full_run / Analyse.DIR / SUMMARY).is_file()
    assert main([str(full_run), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and Analyse.SWEEP in err and "'analyse'" in err
    assert not (tmp_path / "out").exists(), "nothing is written before every section loaded"
