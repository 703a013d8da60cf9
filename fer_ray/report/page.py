"""The page's building blocks: what a section returns and what ``render`` writes.

A block is a plain tuple so that a section needs no renderer to build one and a test can
match on ``block[0]``: ``("h1"|"h2"|"p"|"code", text)``, ``("table", DataFrame)`` or
``("img", file name in the report folder, caption)``. Text may use ``**bold**`` and
``code`` spans; the HTML drops the asterisks.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

Block = tuple[Any, ...]


def h1(text: str) -> Block:
    return ("h1", text)


def h2(text: str) -> Block:
    return ("h2", text)


def p(text: str) -> Block:
    return ("p", text)


def code(text: str) -> Block:
    return ("code", text)


def table(df: pd.DataFrame) -> Block:
    return ("table", df)


def img(file: str, caption: str) -> Block:
    return ("img", file, caption)


def pct(x: float) -> str:
    """A fraction as the report prints every accuracy: ``0.1587`` → ``15.87 %``."""
    return f"{100 * x:.2f} %"
