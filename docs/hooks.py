"""MkDocs hook: the CLI and config references, written from the code at every build.

A page holding ``<!-- generated:cli -->`` or ``<!-- generated:config -->`` gets the reference in
that place, so the pages cannot drift from the argument parsers and the config dataclasses
(``fer_ray.config.Config``): a new flag or key appears at the next build, with its help text or
its source comment. ``tests/test_docs.py`` imports this module and checks both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import os
import re
import sys
import tokenize
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent

# Every ``python -m`` entry point: (command, "module:function" taking argv).
MODULES = [
    ("python -m fer_ray.tune", "fer_ray.tune:main"),
    ("python -m fer_ray.report", "fer_ray.report.__main__:main"),
    ("python -m fer_ray.predict", "fer_ray.predict:main"),
    ("python -m fer_ray.data", "fer_ray.data.__main__:main"),
]

# Config comments name the papers by their place in the project's list; the site by author.
PAPERS = {
    "000": ("Dai", "dai"),
    "001": ("Liu", "liu"),
    "002": ("Orozco et al.", "orozco"),
    "003": ("Zhu et al.", "zhu"),
    "004": ("Zhao et al.", "zhao"),
}


def _target(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def help_text(spec: str, argv: list[str], prog: str) -> str:
    """What ``prog argv --help`` prints, at a fixed width so builds are identical."""
    main = _target(spec)
    out = io.StringIO()
    old_argv, old_cols = sys.argv, os.environ.get("COLUMNS")
    sys.argv, os.environ["COLUMNS"] = [prog], "100"
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main([*argv, "--help"])
    finally:
        sys.argv = old_argv
        if old_cols is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old_cols
    text = out.getvalue().strip()
    if not text:
        raise RuntimeError(f"{prog} {' '.join(argv)} --help printed nothing")
    return text


def console_scripts() -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml: name -> "module:function"."""
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(data.get("project", {}).get("scripts", {}))


def _subcommands(text: str) -> list[str]:
    """The subcommands a help text lists: argparse's ``{a,b,c}``, or the first word of each
    entry under a heading ending in "commands:"."""
    m = re.search(r"\{([A-Za-z0-9_,-]+)\}", text)
    if m:
        return m.group(1).split(",")
    m = re.search(r"^[\w ]*commands:\n((?:  +\S.*\n?)+)", text, re.M | re.I)
    if not m:
        return []
    return [line.split()[0] for line in m.group(1).splitlines() if re.match(r"  \S", line)]


def _block(title: str, text: str) -> list[str]:
    return [f"### `{title}`", "", "```text", text, "```", ""]


def cli_reference() -> str:
    """Every command's ``--help``, console script (and its subcommands) first; a module whose
    help is one already shown is listed as taking the same arguments."""
    lines: list[str] = []
    shown: dict[str, str] = {}
    for name, spec in console_scripts().items():
        lines += [f"## `{name}`", ""]
        top = help_text(spec, [], name)
        lines += _block(f"{name} --help", top)
        for sub in _subcommands(top):
            text = help_text(spec, [sub], name)
            shown.setdefault(text, f"{name} {sub}")
            lines += _block(f"{name} {sub} --help", text)
    lines += ["## `python -m` entry points", ""]
    same: list[str] = []
    for prog, spec in MODULES:
        text = help_text(spec, [], prog)
        if text in shown:
            same.append(f"- `{prog}` takes the same arguments as `{shown[text]}`.")
        else:
            lines += _block(f"{prog} --help", text)
    return "\n".join([*lines, *same, ""])


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, str):
        return annotation
    return re.sub(r"\btyping\.", "", getattr(annotation, "__name__", str(annotation)))


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("...").strip()


def field_comments(cls: type) -> dict[str, str]:
    """Each field's source comment: the comment on its lines and the comment lines after it.
    A comment block that starts a sentence right above a field without a comment of its own
    belongs to that field instead."""
    import inspect
    import textwrap

    source = textwrap.dedent(inspect.getsource(cls))
    order: list[str] = []
    trailing: dict[str, list[str]] = {}
    after: dict[str, list[str]] = {}
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for tok, nxt in zip(tokens, tokens[1:]):
        at_body = tok.start[1] == 4 and tok.line[4:].startswith(tok.string)
        if at_body and tok.string in ("def", "@"):
            break  # methods: their comments are not about fields
        if at_body and tok.type == tokenize.NAME and nxt.string == ":":
            order.append(tok.string)
            trailing[tok.string], after[tok.string] = [], []
        elif tok.type == tokenize.COMMENT and order:
            own_line = tok.line.strip().startswith("#")
            (after if own_line else trailing)[order[-1]].append(tok.string.lstrip("#").strip())
    comments: dict[str, list[str]] = {name: [] for name in order}
    for name, nxt in zip(order, [*order[1:], None]):
        comments[name] += trailing[name]
        block = after[name]
        leads = (
            block and nxt and not trailing[nxt] and (not trailing[name] or block[0][:1].isupper())
        )
        comments[nxt if leads else name] += block
    return {k: " ".join(v) for k, v in comments.items()}


def name_papers(text: str, base: str = "../papers/") -> str:
    """'seed 000' -> a link to the paper's page, by author."""

    def link(m: re.Match[str]) -> str:
        author, page = PAPERS[m.group(1)]
        return f"[{author}]({base}{page}.md)"

    text = re.sub(r"\bseed paper\b", "paper", text)
    return re.sub(r"\b[Ss]eed (00[0-4])\b", link, text)


def _escape(text: str) -> str:
    return text.replace("<", "&lt;").replace("*", r"\*")


def _doc(cls: type) -> str:
    doc = cls.__doc__ or ""
    return "" if doc.startswith(cls.__name__ + "(") else " ".join(doc.split())


def config_sections() -> tuple[list[dataclasses.Field], dict[str, type]]:
    """The top-level keys and the sections of the default config, in the order a saved config
    lists them: fer_ray's own sections and those its recipe packages register."""
    from fer_ray import config

    cfg = config.from_dict({})
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    top: list[dataclasses.Field] = []
    sections: dict[str, type] = {}
    for key in cfg.to_dict():
        value = getattr(cfg, key)
        if dataclasses.is_dataclass(value):
            sections[key] = type(value)
        else:
            top.append(fields[key])
    return top, sections


def config_reference() -> str:
    """One section per config dataclass: every key with its type, default and meaning."""
    from fer_ray.config import Config

    top, sections = config_sections()
    comments = field_comments(Config)
    lines = ["## Top level", ""]
    lines += [_item(f.name, f.type, _default(f), comments.get(f.name, "")) for f in top]
    lines.append("")
    for name, cls in sections.items():
        lines += _section(name, cls)
    return "\n".join(lines)


def _item(key: str, annotation: Any, default: Any, comment: str) -> str:
    line = f"- **`{key}`** · `{_type_name(annotation)}` · default `{_yaml_value(default)}`"
    return line + (f": {name_papers(_escape(comment))}" if comment else "")


def _section(name: str, cls: type) -> list[str]:
    lines = [f"## `{name}`", ""]
    doc = _doc(cls)
    if doc:
        lines += [name_papers(_escape(doc)), ""]
    comments = field_comments(cls)
    for f in dataclasses.fields(cls):
        lines.append(_item(f"{name}.{f.name}", f.type, _default(f), comments.get(f.name, "")))
    return [*lines, ""]


GENERATORS = {
    "<!-- generated:cli -->": cli_reference,
    "<!-- generated:config -->": config_reference,
}


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs event: replace each marker with its generated reference."""
    for marker, make in GENERATORS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
