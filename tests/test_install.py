"""``pip install .`` is enough to run: the wheel carries the shipped configs and the ``fer-ray``
command, and (slow) runs the smoke config from a fresh environment outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib

from fer_ray import __version__, tracking
from tests.conftest import ROOT, TINY

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SOURCES = ("pyproject.toml", "setup.py", "README.md", "fer_ray", "tune_configs")


def test_the_package_declares_its_command_and_an_extra_per_tracker():
    project = PYPROJECT["project"]
    assert project["scripts"] == {"fer-ray": "fer_ray.cli:main"}
    extras = project["optional-dependencies"]
    assert set(tracking.TRACKERS.names()) <= set(extras)  # fer_ray[<tracker>] installs it
    assert extras["mlflow"][0].startswith("mlflow") and extras["wandb"][0].startswith("wandb")
    runtime = " ".join(project["dependencies"])
    assert "pytest" not in runtime and "ruff" not in runtime  # dev tools only in [dev]


def _copy_sources(dest: Path) -> Path:
    """The files a build reads, outside the checkout (a build writes build/ and egg-info)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    dest.mkdir(parents=True)
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    return dest


def _venv(dest: Path) -> Path:
    """A fresh virtual environment whose dependencies (Ray, torch, ...) are this one's:
    a .pth line adds this environment's site-packages after its own, so nothing is
    downloaded and fer_ray itself comes only from what is installed into it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    (purelib,) = (dest / "lib").glob("python*/site-packages")
    (purelib / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return dest / "bin"


@pytest.mark.slow
def test_the_wheel_installs_offline_and_runs_the_smoke_config_outside_the_checkout(tmp_path):
    src = _copy_sources(tmp_path / "src")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = ["wheel", "--no-deps", "--no-index", "--no-build-isolation"]
    subprocess.run([*pip, *build, "-w", str(tmp_path / "dist"), str(src)], check=True)
    (wheel,) = (tmp_path / "dist").glob("fer_ray-*.whl")
    bindir = _venv(tmp_path / "venv")
    install = ["install", "--no-deps", "--no-index", "--ignore-installed", str(wheel)]
    subprocess.run([str(bindir / "python"), "-m", *pip[2:], *install], check=True)
    work = tmp_path / "work"  # a folder with no tune_configs/ and no fer_ray/ in it
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"

    def fer_ray(*args: str) -> subprocess.CompletedProcess:
        cmd = [str(bindir / "fer-ray"), *args]
        return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)

    version = fer_ray("--version")
    assert version.returncode == 0 and version.stdout == f"fer-ray {__version__}\n"
    where = subprocess.run(
        [str(bindir / "python"), "-c", "import fer_ray; print(fer_ray.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.startswith(str(tmp_path / "venv"))  # the wheel's copy, not the checkout
    unknown = fer_ray("tune", "-c", "sfew")
    assert unknown.returncode == 2 and "(shipped: " in unknown.stderr and "smoke" in unknown.stderr
    sets = [f"output.runs_dir={tmp_path / 'runs'}", f"output.reports_dir={tmp_path / 'rep'}"]
    args = [a for s in (*sets, *TINY) for a in ("--set", s)]
    run = fer_ray("tune", "-c", "smoke", *args)
    print(run.stdout[-3000:], run.stderr[-3000:])
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "rep" / "smoke" / "report.md").is_file()
    assert (tmp_path / "runs" / "smoke" / "ensemble").is_dir()
    assert sorted(p.name for p in work.iterdir()) == []  # nothing written where it ran


@pytest.mark.slow
def test_an_editable_install_finds_the_configs_in_the_checkout(tmp_path):
    src = _copy_sources(tmp_path / "src")
    bindir = _venv(tmp_path / "venv")
    install = ["install", "-q", "--no-deps", "--no-index", "--no-build-isolation"]
    subprocess.run(
        [str(bindir / "python"), "-m", "pip", *install, "--ignore-installed", "-e", str(src)],
        check=True, capture_output=True,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # the package fer_ray.configs itself, not the fallback to the folder beside fer_ray
    code = "import importlib.resources as r; print(r.files('fer_ray.configs'))"
    out = subprocess.run(
        [str(bindir / "python"), "-c", code],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert out == [str(src / "tune_configs")]
    shown = subprocess.run(
        [str(bindir / "fer-ray"), "tune", "-c", "smoke", "--print-config"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert shown.returncode == 0 and shown.stdout.startswith("name: smoke\n"), shown.stderr
