"""Static rules of the report package, checked on its source: no import cycle (imports inside
functions and registry entries count), no private import from another module, no Ray or stages,
and no file name spelled out where ``fer_ray.layout`` has a constant."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import fer_ray.report

PKG = "fer_ray.report"
ROOT = Path(fer_ray.report.__file__).parent


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out[".".join([PKG, *parts])] = ast.parse(path.read_text(), str(path))
    return out


MODULES = _modules()


def _is_package(mod: str) -> bool:
    return (ROOT.joinpath(*mod.split(".")[2:]) / "__init__.py").is_file()


def _imports(mod: str, tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module, names imported from it) for every import statement, at any depth."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = mod if _is_package(mod) else mod.rpartition(".")[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{base}".rstrip(".")
            found.append((base, [a.name for a in node.names]))
        elif isinstance(node, ast.Constant) and str(node.value).startswith(PKG + "."):
            found.append((node.value.partition(":")[0], []))  # a lazy registry entry
    return found


def _edges(mod: str) -> set[str]:
    """Report modules that importing ``mod`` runs: each import, its parents, submodules named."""
    out = set()
    for base, names in _imports(mod, MODULES[mod]):
        targets = [base] + [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
        for t in targets:
            parts = t.split(".")
            out |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return {t for t in out if t in MODULES and t != mod}


def test_no_import_cycles():
    graph = {m: _edges(m) for m in MODULES}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = path[path.index(n) :] + [n] if n in path else [m, n]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n, [*path, n])
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m, [m])


def test_no_private_names_from_other_modules():
    bad = [
        f"{mod}: from {base} import {n}"
        for mod, tree in MODULES.items()
        for base, names in _imports(mod, tree)
        for n in names
        if n.startswith("_") and n != "__future__" and base != mod
    ]
    assert not bad


def test_never_imports_ray_or_the_stages():
    bad = [
        f"{mod}: {base}"
        for mod, tree in MODULES.items()
        for base, _ in _imports(mod, tree)
        if base.split(".")[0] == "ray" or base.startswith("fer_ray.stages")
    ]
    assert not bad


def test_run_files_are_named_through_layout():
    name = re.compile(r"^[\w-]+\.(csv|json|npz|yaml|pt)$")
    bad = [
        f"{mod}:{node.lineno}: {node.value!r}"
        for mod, tree in MODULES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and name.match(node.value)
    ]
    assert not bad
