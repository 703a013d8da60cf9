"""Seed 000's descriptor sheet: the course's ``SFEW.xlsx`` with 5 LPQ and 5 PHOG values per image.

The sheet's exact header is not fixed, so columns are matched tolerantly (first sheet only):

* features: a header that, lower-cased with everything but letters and digits removed, reads
  ``lpq`` or ``phog``, then any letters, then an index 1-5: "LPQ feature 1", "lpq_1", "LPQ1",
  "PHOG 3" all match. Each of the ten must occur exactly once.
* label: a header named ``label``, ``class`` or ``emotion`` (plural accepted, case-insensitive),
  preferred in that order. Values 1-7 are assumed to be SFEW's classes in alphabetical order
  (1 Angry, 2 Disgust, 3 Fear, 4 Happy, 5 Neutral, 6 Sad, 7 Surprise), as the course sheet
  numbers them; they become 0-6.
* image name (optional): a text column whose header contains name/image/file/img, else the
  first text column. Its prefix before the first ``_`` is the movie (``Airheads_000519240_...``),
  the group no split may cut. Without it every row is its own group and
  ``df.attrs["grouped"]`` is False, so the report can say "not grouped by movie".

Rows are numbered as Excel shows them (header = row 1) in every error message.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from fer_ray.data.source import SEVEN
from fer_ray.errors import DataError

# What seed 000 reports for this sheet (Table 1, sec. 3.1): the reference the report prints.
PAPER_TABLE1 = (0.6939, 0.7644, 0.7312, 0.7271, 0.6381, 0.6700, 0.6923, 0.7060, 0.6674, 0.7096)
PAPER_TEST_ACC = 0.26857

__all__ = ["CLASS_NAMES", "FEATURES", "read_sheet"]

CLASS_NAMES = SEVEN  # labels 1-7 of SFEW.xlsx, in this order
FEATURES = tuple(f"{kind}{i}" for kind in ("lpq", "phog") for i in range(1, 6))
LABEL_NAMES = ("label", "class", "emotion")  # preference order

_FEATURE_RE = re.compile(r"^(lpq|phog)[a-z]*(\d+)$")
_NAME_RE = re.compile(r"name|image|file|img")
_EXPECTED = "expected SFEW.xlsx with LPQ feature 1-5, PHOG feature 1-5 and label 1-7 columns"


def _norm(col: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(col).lower())


def _excel_row(i: int) -> int:
    return i + 2  # pandas row 0 sits under the header, Excel row 2


def _is_text(s: pd.Series) -> bool:
    vals = s.dropna()
    return len(vals) > 0 and all(isinstance(v, str) for v in vals)


def _feature_columns(df: pd.DataFrame, path: Path) -> dict[str, object]:
    found: dict[str, list[object]] = {}
    for col in df.columns:
        m = _FEATURE_RE.match(_norm(col))
        if m and 1 <= int(m.group(2)) <= 5:
            found.setdefault(f"{m.group(1)}{int(m.group(2))}", []).append(col)
    dup = {k: v for k, v in found.items() if len(v) > 1}
    if dup:
        raise DataError(f"{path}: ambiguous feature columns {dup} (each of {FEATURES} once)")
    return {k: v[0] for k, v in found.items()}


def _label_column(df: pd.DataFrame) -> object | None:
    plural = {"labels": "label", "classes": "class", "emotions": "emotion"}
    by_norm: dict[str, object] = {}
    for col in df.columns:
        n = _norm(col)
        by_norm.setdefault(plural.get(n, n), col)
    return next((by_norm[n] for n in LABEL_NAMES if n in by_norm), None)


def _name_column(df: pd.DataFrame, exclude: set[object]) -> object | None:
    text = [c for c in df.columns if c not in exclude and _is_text(df[c])]
    named = [c for c in text if _NAME_RE.search(_norm(c))]
    return (named or text or [None])[0]


def _numeric(df: pd.DataFrame, col: object, path: Path) -> np.ndarray:
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce")
    bad = np.flatnonzero(num.isna().to_numpy())
    if len(bad):
        i = int(bad[0])
        cell = raw.iloc[i]
        what = "is empty (NaN)" if pd.isna(cell) else f"holds {cell!r}, not a number"
        more = f" ({len(bad)} bad cells in this column)" if len(bad) > 1 else ""
        raise DataError(f"{path}: column {col!r}, row {_excel_row(i)} {what}{more}")
    return num.to_numpy(dtype=np.float64)


def sheet_path(path: str | None, data_root: str | None) -> Path:
    """``descriptors.path``, else ``<data.root>/SFEW.xlsx``."""
    if path:
        return Path(path).expanduser().resolve()
    if data_root:
        return (Path(data_root).expanduser() / "SFEW.xlsx").resolve()
    raise DataError(
        "descriptors.enabled needs the SFEW.xlsx sheet: set descriptors.path (or data.root)"
    )


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read the descriptor sheet into ``name, group, label, label_name, lpq1..5, phog1..5``.

    ``label`` is 0-6, ``label_name`` lower-case; ``df.attrs`` holds ``grouped`` (False when
    there is no image-name column), ``path`` and ``source_columns`` (ours -> the sheet's).
    Raises DataError naming the file, and the row and column where a cell is bad.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} not found; {_EXPECTED}; set descriptors.path")
    try:
        df = pd.read_excel(path, sheet_name=0, engine="openpyxl")
    except Exception as e:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise DataError(f"{path}: cannot read as an .xlsx workbook ({e}); {_EXPECTED}") from e
    feats = _feature_columns(df, path)
    label_col = _label_column(df)
    missing = [f for f in FEATURES if f not in feats]
    if label_col is None:
        missing.append("label (label/class/emotion)")
    if missing:
        raise DataError(
            f"{path}: missing columns {missing}; columns found: {[str(c) for c in df.columns]}; "
            f"{_EXPECTED}"
        )
    if len(df) == 0:
        raise DataError(f"{path}: the first sheet has a header but no data rows")

    labels = pd.to_numeric(df[label_col], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isin(labels, np.arange(1, 8)))
    if len(bad):
        i = int(bad[0])
        raise DataError(
            f"{path}: label {df[label_col].iloc[i]!r} in row {_excel_row(i)} (column "
            f"{label_col!r}) is outside 1-7 (1 Angry ... 7 Surprise, alphabetical)"
            + (f"; {len(bad)} such rows" if len(bad) > 1 else "")
        )
    y = labels.astype(np.int64) - 1

    name_col = _name_column(df, {label_col, *feats.values()})
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    if name_col is None:
        out["name"] = ""
        out["group"] = [f"row{i}" for i in range(len(df))]
    else:
        names = df[name_col].fillna("").astype(str).str.strip()
        out["name"] = names.to_numpy()
        prefix = names.str.split("_", n=1).str[0]
        out["group"] = [p if p else f"row{i}" for i, p in enumerate(prefix)]
    out["label"] = y
    out["label_name"] = [CLASS_NAMES[k] for k in y]
    for f in FEATURES:
        out[f] = _numeric(df, feats[f], path)
    out.attrs["grouped"] = name_col is not None
    out.attrs["path"] = str(path)
    out.attrs["source_columns"] = {
        **({"name": str(name_col)} if name_col is not None else {}),
        "label": str(label_col),
        **{f: str(feats[f]) for f in FEATURES},
    }
    return out
