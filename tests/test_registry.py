"""The one registry mechanism: names, did-you-mean, lazy imports, missing extras."""

import sys

import pytest

from fer_ray.errors import ConfigError, DependencyError
from fer_ray.registry import Registry


def test_register_get_and_names_in_order():
    reg = Registry("widget", "widgets.kind")
    reg.register("small", 1)

    @reg.register("large", help="the big one")
    def large():
        return 3

    assert reg.names() == ["small", "large"]
    assert reg.get("small") == 1 and reg.create("large") == 3 and reg.help("large") == "the big one"
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("small", 2)


def test_unknown_name_lists_the_valid_ones_and_suggests():
    reg = Registry("widget", "widgets.kind")
    reg.register("mtcnn", 1)
    reg.register("haar", 2)
    with pytest.raises(
        ConfigError,
        match=r"^widgets\.kind='mtcn' is not a known widget; did you mean 'mtcnn'\? \(known: mtcnn, haar\)$",
    ):
        reg.get("mtcn")
    with pytest.raises(ConfigError, match=r"'zzz' is not a known widget \(known"):
        reg.check("zzz")


def test_lazy_entries_import_on_first_use_only(monkeypatch):
    monkeypatch.delitem(sys.modules, "fractions", raising=False)
    reg = Registry("number type", "n")
    reg.register("fraction", "fractions:Fraction")
    assert "fractions" not in sys.modules  # listing or registering imports nothing
    assert reg.names() == ["fraction"]
    assert reg.create("fraction", 1, 2) == 0.5
    assert "fractions" in sys.modules


def test_missing_optional_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "captum", None)  # `import captum` raises ImportError
    reg = Registry("analysis", "analyse.extra")
    reg.register("deconv", "captum:attr", extra="'fer_ray[analysis]'")
    with pytest.raises(
        DependencyError,
        match=r"analyse\.extra=deconv needs captum; install it with `pip install 'fer_ray\[analysis\]'`",
    ):
        reg.get("deconv")


def test_every_kind_is_served_by_the_one_mechanism():
    from fer_ray.analysis.per_model import ANALYSES
    from fer_ray.data.datasets import DATASETS
    from fer_ray.data.recipes import RECIPES
    from fer_ray.faces.detectors import DETECTORS
    from fer_ray.models.backbones import BACKBONES
    from fer_ray.models.weights import WEIGHTS
    from fer_ray.report.sections import SECTIONS

    for reg in (DATASETS, DETECTORS, RECIPES, BACKBONES, WEIGHTS, ANALYSES, SECTIONS):
        assert isinstance(reg, Registry) and reg.names()
        for name in reg.names():
            reg.get(name)  # every entry resolves (lazy ones import)
