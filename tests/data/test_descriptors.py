"""Reading seed 000's descriptor sheet (fer_ray.data.descriptors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_ray.data.datasets import DataError
from fer_ray.data.descriptors import CLASS_NAMES, FEATURES, read_sheet
from tests.data.descriptor_fixture import HEADER_FEATURES, write_sfew_sheet


@pytest.fixture(scope="module")
def sheet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    path = tmp_path_factory.mktemp("sheet") / "SFEW.xlsx"
    return path, write_sfew_sheet(path, n_movies=4, per_movie=8)


def _write(df: pd.DataFrame, path: Path) -> Path:
    df.to_excel(path, index=False, engine="openpyxl")
    return path


def test_reads_columns_labels_and_groups(sheet: tuple[Path, pd.DataFrame]) -> None:
    path, raw = sheet
    df = read_sheet(path)
    assert list(df.columns) == ["name", "group", "label", "label_name", *FEATURES]
    assert FEATURES[0] == "lpq1" and FEATURES[4] == "lpq5" and FEATURES[9] == "phog5"
    assert df["label"].tolist() == (raw["label"] - 1).tolist()
    assert set(df["label"]) <= set(range(7))
    assert df["label_name"].tolist() == [CLASS_NAMES[k] for k in raw["label"] - 1]
    assert CLASS_NAMES[0] == "angry" and CLASS_NAMES[6] == "surprise"
    assert df["name"].tolist() == raw["Image name"].tolist()
    assert df["group"].tolist() == [n.split("_")[0] for n in raw["Image name"]]
    assert df["group"].nunique() == 4
    np.testing.assert_allclose(df[list(FEATURES)].to_numpy(), raw[HEADER_FEATURES].to_numpy())
    assert df.attrs["grouped"] is True
    assert df.attrs["source_columns"]["phog5"] == "PHOG feature 5"


@pytest.mark.parametrize(
    ("lpq", "phog", "label"),
    [
        ("LPQ{}", "PHOG{}", "Label"),
        ("lpq_{}", "phog_{}", "class"),
        ("Lpq Feature {}", "phog feat. {}", "Emotion"),
        (" LPQ-{} ", "PHOG #{}", "labels"),
    ],
)
def test_tolerant_headers(
    sheet: tuple[Path, pd.DataFrame], tmp_path: Path, lpq: str, phog: str, label: str
) -> None:
    _, raw = sheet
    names = {f"LPQ feature {i}": lpq.format(i) for i in range(1, 6)}
    names |= {f"PHOG feature {i}": phog.format(i) for i in range(1, 6)}
    renamed = raw.rename(columns={**names, "label": label})
    renamed = renamed[renamed.columns[::-1]]  # column order does not matter
    df = read_sheet(_write(renamed, tmp_path / "v.xlsx"))
    np.testing.assert_allclose(df[list(FEATURES)].to_numpy(), raw[HEADER_FEATURES].to_numpy())
    assert df["label"].tolist() == (raw["label"] - 1).tolist()


def test_name_column_falls_back_to_first_text_column(
    sheet: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    _, raw = sheet
    df = read_sheet(_write(raw.rename(columns={"Image name": "id"}), tmp_path / "id.xlsx"))
    assert df.attrs["grouped"] is True
    assert df["group"].tolist() == [n.split("_")[0] for n in raw["Image name"]]


def test_sheet_without_names_is_ungrouped(sheet: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    _, raw = sheet
    df = read_sheet(_write(raw.drop(columns="Image name"), tmp_path / "nonames.xlsx"))
    assert df.attrs["grouped"] is False
    assert (df["name"] == "").all()
    assert df["group"].tolist() == [f"row{i}" for i in range(len(raw))]


def test_missing_file_names_it_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "SFEW.xlsx"
    with pytest.raises(DataError, match="not found") as e:
        read_sheet(path)
    assert str(path) in str(e.value) and "descriptors.path" in str(e.value)
    assert "LPQ feature 1-5" in str(e.value)


def test_missing_columns_are_listed_with_those_found(
    sheet: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    _, raw = sheet
    path = _write(raw.drop(columns=["PHOG feature 5", "label"]), tmp_path / "cols.xlsx")
    with pytest.raises(DataError) as e:
        read_sheet(path)
    msg = str(e.value)
    assert str(path) in msg and "phog5" in msg and "label" in msg.split("columns found")[0]
    assert "PHOG feature 4" in msg  # the columns found


def test_duplicate_feature_columns_are_ambiguous(
    sheet: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    _, raw = sheet
    path = _write(raw.assign(LPQ1=raw["LPQ feature 1"]), tmp_path / "dup.xlsx")
    with pytest.raises(DataError, match="ambiguous"):
        read_sheet(path)


@pytest.mark.parametrize("bad", [8, 0, 2.5, None])
def test_label_outside_1_to_7_names_the_excel_row(
    sheet: tuple[Path, pd.DataFrame], tmp_path: Path, bad: float | None
) -> None:
    _, raw = sheet
    df = raw.copy()
    df["label"] = df["label"].astype(object)
    df.loc[3, "label"] = bad
    path = _write(df, tmp_path / "label.xlsx")
    with pytest.raises(DataError, match="row 5 .*outside 1-7") as e:
        read_sheet(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize(("cell", "what"), [("abc", "not a number"), (None, "empty")])
def test_bad_feature_cell_names_row_and_column(
    sheet: tuple[Path, pd.DataFrame], tmp_path: Path, cell: str | None, what: str
) -> None:
    _, raw = sheet
    df = raw.copy()
    df["LPQ feature 3"] = df["LPQ feature 3"].astype(object)
    df.loc[4, "LPQ feature 3"] = cell
    path = _write(df, tmp_path / "cell.xlsx")
    with pytest.raises(DataError, match=f"'LPQ feature 3', row 6 .*{what}") as e:
        read_sheet(path)
    assert str(path) in str(e.value)


def test_not_a_workbook_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "SFEW.xlsx"
    path.write_text("not excel")
    with pytest.raises(DataError, match="cannot read"):
        read_sheet(path)
