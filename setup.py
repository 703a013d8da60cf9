"""The package list: every ``fer_ray`` package found on disk, plus ``fer_ray.configs``, whose
files (the shipped configs) live in ``tune_configs/`` at the repository root. Everything else
is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["fer_ray", "fer_ray.*"]), "fer_ray.configs"],
    package_dir={"fer_ray.configs": "tune_configs"},
)
