"""The shape of the code, checked: no import cycles, no private imports, DESIGN.md's layering.

The import graph is read from the source (every ``import`` statement, at module level or
inside a function, except under ``if TYPE_CHECKING:``), so a cycle hidden in a function-level
import counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "fer_ray"
PURE = ("data", "faces", "models", "train", "analysis")  # plain Python/PyTorch, no Ray


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import outside TYPE_CHECKING blocks."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip |= {id(n) for b in node.body for n in ast.walk(b)}
    out = []
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base]) if base else ".".join(up)
            out.append((base, [a.name for a in node.names]))
    return out


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for target, names in _imports(path):
            if not target.startswith("fer_ray"):
                continue
            # `from fer_ray.x import y` imports the module fer_ray.x.y when it is one
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            for t in subs or [target]:
                if t in modules and t != mod:
                    graph[mod].add(t)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_reader_finds_a_planted_cycle(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_no_underscore_name_is_used_from_another_module():
    offenders = []
    for path in PKG.rglob("*.py"):
        aliases = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fer_ray"):
                aliases |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.Import):
                aliases |= {
                    a.asname for a in node.names if a.name.startswith("fer_ray") and a.asname
                }
        for target, names in _imports(path):
            if target.startswith("fer_ray"):
                offenders += [f"{_module_name(path)}: {target}.{n}" for n in names if n[0] == "_"]
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                offenders.append(f"{_module_name(path)}: {node.value.id}.{node.attr}")
    assert offenders == []


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_never_import_ray_stages_or_report(package):
    bad = []
    for path in (PKG / package).rglob("*.py"):
        for target, _ in _imports(path):
            if target.split(".")[0] == "ray" or target.startswith(
                (
                    "fer_ray.stages",
                    "fer_ray.report",
                    "fer_ray.pipeline",
                    "fer_ray.tune",
                    "fer_ray.recipes",
                )
            ):
                bad.append(f"{_module_name(path)} imports {target}")
    assert bad == []


def _report_modules() -> list[Path]:
    """The report package and every recipe's report section (``recipes/<name>/report.py``)."""
    return [*(PKG / "report").rglob("*.py"), *(PKG / "recipes").glob("*/report.py")]


def _is_stage_module(name: str) -> bool:
    """Where Ray may be used: the core stages and a recipe's stage modules (its package
    ``__init__``, the declaration, and its report section stay Ray-free)."""
    parts = name.split(".")
    if name.startswith(("fer_ray.stages", "fer_ray.pipeline", "fer_ray.cluster")):
        return True
    return parts[:2] == ["fer_ray", "recipes"] and len(parts) == 4 and parts[3] != "report"


def test_report_never_imports_ray_or_stages():
    bad = [
        f"{_module_name(p)} imports {t}"
        for p in _report_modules()
        for t, _ in _imports(p)
        if t.split(".")[0] == "ray" or _is_stage_module(t)
    ]
    assert bad == []


def test_only_stages_and_the_cluster_checks_import_ray():
    users = sorted(
        _module_name(p)
        for p in PKG.rglob("*.py")
        if any(t.split(".")[0] == "ray" for t, _ in _imports(p))
    )
    assert [u for u in users if not _is_stage_module(u)] == []


def test_recipe_declarations_are_ray_free():
    """Config loading and the report import every recipe's ``__init__``: no Ray, no stage."""
    bad = [
        f"{_module_name(p)} imports {t}"
        for p in (PKG / "recipes").glob("*/__init__.py")
        for t, _ in _imports(p)
        if t.split(".")[0] == "ray" or _is_stage_module(t)
    ]
    assert bad == []


def test_user_errors_have_one_root():
    from fer_ray import errors

    kinds = [
        getattr(errors, n)
        for n in dir(errors)
        if isinstance(getattr(errors, n), type) and issubclass(getattr(errors, n), Exception)
    ]
    assert all(issubclass(k, errors.FerRayError) for k in kinds)
    # no module defines an error class of its own outside fer_ray.errors
    own = []
    for path in PKG.rglob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                own.append(f"{_module_name(path)}.{node.name}")
    assert own == []


# Functions whose length is a data table (one check per line), not logic: none today (each
# config section checks itself in its own ``errors``)
DATA_TABLES: set[str] = set()


def test_functions_read_at_once():
    """No function over 80 lines (modules are split by responsibility, not by a line count)."""
    long = []
    for p in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                name = f"{_module_name(p)}.{node.name}"
                if n > 81 and name not in DATA_TABLES:
                    long.append(f"{name}: {n} lines")
    assert long == []
