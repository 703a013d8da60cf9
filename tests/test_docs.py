"""The README and the documentation site: short, self-contained, every link resolving.

``.ci/run`` builds the site with ``mkdocs build --strict``; these fast checks catch the usual
breakages without a build: a page missing from the navigation, a link to a file that does not
exist or lies outside the repository, a README that grew back, a paper named by number, and a
generated reference that lost a config key or a command.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from fer_ray import config
from tests.conftest import ROOT

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
TEXTS = [ROOT / "README.md", *PAGES]
TEST_COMMAND = 'pip install -e ".[dev]" && python -m pytest -q'
LINK = re.compile(r"\]\(([^)\s]+)\)")
# Where a product text must never point: the machine's folders, not the repository's.
OUTSIDE = re.compile(r"(/work/|/tmp/|/root/|/home/|shared/seeds|\.\./shared)")
PAPER_BY_NUMBER = re.compile(r"\b[Ss]eeds? 00[0-4]\b")


def _hooks():
    spec = importlib.util.spec_from_file_location("fer_ray_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nav_pages(nav: list) -> list[str]:
    pages: list[str] = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _leaf_keys() -> list[str]:
    """Every key of the default config as a saved config lists it (recipe sections included)."""
    saved = config.from_dict({}).to_dict()
    keys = [k for k, v in saved.items() if not isinstance(v, dict)]
    return keys + [f"{k}.{kk}" for k, v in saved.items() if isinstance(v, dict) for kk in v]


def test_readme_is_short_and_keeps_the_test_command():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    assert TEST_COMMAND in text  # CI runs the README's test command
    assert "pip install ." in text and "python -m fer_ray.tune" in text


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_text_stays_inside_the_repository_and_names_papers(path: Path):
    text = path.read_text(encoding="utf-8")
    assert not OUTSIDE.search(text), OUTSIDE.search(text).group(0)
    assert not PAPER_BY_NUMBER.search(text), PAPER_BY_NUMBER.search(text).group(0)


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(path: Path):
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        resolved = (path.parent / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(ROOT), f"{target} leaves the repository"
        assert resolved.exists(), f"{path.name}: {target} does not exist"


def test_every_page_is_in_the_navigation_and_exists():
    cfg = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(cfg["nav"])
    assert sorted(nav) == sorted(str(p.relative_to(DOCS)) for p in PAGES)
    assert cfg["strict"] is True and cfg["theme"]["name"] == "material"


def test_the_paper_pages_cite_authors_title_and_year():
    text = (DOCS / "papers" / "index.md").read_text(encoding="utf-8")
    for author, title in [
        ("Cen Dai", "Facial Expression Analysis based on Transfer Learning and Feature Analysis"),
        ("Kangdao Liu", "A Robust Strategy for Facial Expression Recognition"),
        ("David Orozco", "Transfer learning for Facial"),
        ("Yongpei Zhu", "Facial Expression Recognition Research Based on"),
        ("Manling Zhao", "Deep Facial Expression Recognition Using ResNet34"),
    ]:
        assert author in text and title in text


def test_config_reference_lists_every_key_by_paper_name():
    text = _hooks().config_reference()
    keys = _leaf_keys()
    assert len(keys) > 100  # every section, the recipes' included
    for key in keys:
        assert f"**`{key}`**" in text, key
    assert "**`output.checkpoint_every_s`** · `float` · default `60.0`" in text
    assert not PAPER_BY_NUMBER.search(text)
    assert "[Dai](../papers/dai.md)" in text


def test_cli_reference_holds_each_module_help():
    hooks = _hooks()
    for prog, spec in hooks.MODULES:
        assert hooks.help_text(spec, [], prog).startswith("usage: ")
    tune = hooks.help_text("fer_ray.tune:main", [], "python -m fer_ray.tune")
    assert "--dry-run" in tune and "--set" in tune


def test_mkdocs_accepts_the_config():
    config = pytest.importorskip("mkdocs.config")
    cfg = config.load_config(str(ROOT / "mkdocs.yml"))
    assert cfg["site_name"] == "fer_ray"
