"""Blocks → Markdown and HTML.

The page is built once as blocks and written in both formats by these two functions, so the
Markdown and the HTML always say the same thing.
"""

from __future__ import annotations

import html

import pandas as pd

from fer_ray.report.page import Block


def md_table(df: pd.DataFrame) -> str:
    """A pipe table; floats at 4 decimals like the HTML's."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(blocks: list[Block]) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h1":
            out.append(f"# {b[1]}")
        elif kind == "h2":
            out.append(f"## {b[1]}")
        elif kind == "p":
            out.append(b[1])
        elif kind == "code":
            out.append(f"```\n{b[1].rstrip()}\n```")
        elif kind == "table":
            out.append(md_table(b[1]))
        elif kind == "img":
            out.append(f"![{b[2]}]({b[1]})\n\n*{b[2]}*")
    return "\n\n".join(out) + "\n"


STYLE = (
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}"
    "img{max-width:100%}pre{background:#f4f4f4;padding:1em;overflow:auto}"
)


def html_table(df: pd.DataFrame) -> str:
    """The table as the Markdown shows it: a named column axis (a crosstab's) would add a column."""
    df = df.rename_axis(columns=None)
    return df.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0)


def to_html(blocks: list[Block], title: str) -> str:
    body = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(b[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{html.escape(b[1]).replace('**', '')}</p>")
        elif kind == "code":
            body.append(f"<pre>{html.escape(b[1])}</pre>")
        elif kind == "table":
            body.append(html_table(b[1]))
        elif kind == "img":
            body.append(
                f'<figure><img src="{html.escape(b[1])}" alt="{html.escape(b[2])}">'
                f"<figcaption>{html.escape(b[2])}</figcaption></figure>"
            )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
