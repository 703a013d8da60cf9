"""The descriptors stage (seed 000's 10-50-7 baseline) and its report blocks, on a fixture sheet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray

from fer_ray.config import Config
from fer_ray.data.descriptors import FEATURES, PAPER_TABLE1
from fer_ray.layout import RunPaths
from fer_ray.recipes.descriptors import stage
from fer_ray.report.render import to_html, to_markdown
from fer_ray.report.run import Run
from fer_ray.report.sections import SECTIONS
from tests.conftest import smoke_config
from tests.data.descriptor_fixture import HEADER_FEATURES, SIGNAL_FEATURES, write_sfew_sheet

pytestmark = pytest.mark.slow


def descriptor_blocks(run_dir, out):
    """The report's descriptor section alone, as the report builds it."""
    section = SECTIONS.get("descriptors")
    part = section.load(Run(Path(run_dir)))
    if part is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    section.plots(part, out)
    return section.blocks(part)


FOLDS = 5


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def _config(tmp: Path, sheet: Path, *extra: str) -> Config:
    return smoke_config(
        tmp,
        "descriptors.enabled=true",
        f"descriptors.path={sheet}",
        "descriptors.epochs=30",
        "descriptors.repeats=1",
        f"descriptors.folds={FOLDS}",
        *extra,
    )


@pytest.fixture(scope="module")
def done(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    tmp = tmp_path_factory.mktemp("desc")
    raw = write_sfew_sheet(tmp / "SFEW.xlsx")
    cfg = _config(tmp, tmp / "SFEW.xlsx")
    paths = RunPaths.of(cfg)
    summary = stage.run(cfg, paths)
    return cfg, paths, summary, raw, paths.stage("descriptors")


def test_folds_are_complete_and_grouped_by_movie(done: tuple) -> None:
    cfg, _, summary, raw, out = done
    folds = pd.read_csv(out / "folds.csv")
    assert len(folds) == FOLDS * cfg.descriptors.repeats == summary["n_models"]
    assert set(folds.columns) >= {"repeat", "fold", "n_train", "n_val", "val_acc"}
    work = pd.read_csv(out / "work.csv")  # where each model trained and was analysed
    assert len(work) == (1 + len(stage.ANALYSES)) * len(folds) and work["node_id"].notna().all()
    groups = raw["Image name"].str.split("_").str[0].to_numpy()
    seen = []
    for row in folds.itertuples():
        with np.load(out / "tasks" / f"r{row.repeat}_f{row.fold}.npz") as z:
            tr, va = z["train_idx"], z["val_idx"]
        assert (len(tr), len(va)) == (row.n_train, row.n_val)
        assert not set(groups[tr]) & set(groups[va]), f"fold {row.fold}: movie on both sides"
        assert len(tr) + len(va) == len(raw)
        seen.append(va)
    assert sorted(np.concatenate(seen).tolist()) == list(range(len(raw)))
    assert summary["grouped"] is True and summary["n_groups"] == 12


def test_z_scores_use_the_training_part_only(done: tuple) -> None:
    *_, raw, out = done
    x = raw[HEADER_FEATURES].to_numpy()
    with np.load(out / "tasks" / "r0_f0.npz") as z:
        np.testing.assert_allclose(z["mean"], x[z["train_idx"]].mean(0))
        np.testing.assert_allclose(z["std"], x[z["train_idx"]].std(0))
        expect = (x[z["val_idx"]] - z["mean"]) / z["std"]
        np.testing.assert_allclose(z["val_features"], expect)
        assert not np.allclose(z["mean"], x.mean(0))  # not the whole sheet's statistics


def test_magnitudes_sum_to_n_outputs(done: tuple) -> None:
    *_, summary, _, out = done
    per_model = pd.read_csv(out / "magnitude_models.csv")[list(FEATURES)].to_numpy()
    np.testing.assert_allclose(per_model.sum(1), 7.0, atol=1e-6)
    t1 = pd.read_csv(out / "table1_magnitude.csv")
    assert t1["input"].tolist() == list(range(1, 11)) and t1["feature"].tolist() == list(FEATURES)
    assert abs(t1["mean"].sum() - 7.0) < 1e-6 and summary["magnitude_sum_ok"]
    by_name = t1.set_index("feature")["mean"]
    noise = by_name.drop(list(SIGNAL_FEATURES))
    assert by_name[list(SIGNAL_FEATURES)].min() > noise.max()  # not flat: signal inputs stand out
    angles = pd.read_csv(out / "angles.csv")
    assert angles.shape == t1.shape and (angles["mean"].between(0, 90)).all()


def test_accuracy_beats_chance(done: tuple) -> None:
    *_, summary, _, out = done
    assert summary["cv_acc_mean"] > summary["chance_majority"] + 0.15
    assert summary["chance_majority"] >= 1 / 7
    acc = pd.read_csv(out / "folds.csv")["val_acc"]
    assert abs(acc.mean() - summary["cv_acc_mean"]) < 1e-12


def test_pairs_table_and_signal_pair_hurts_most(done: tuple) -> None:
    *_, summary, _, out = done
    p = pd.read_csv(out / "pairs.csv", keep_default_na=False)
    assert p["kind"].value_counts().to_dict() == {"pair": 45, "single": 10, "full": 1}
    full = p[p["kind"] == "full"].iloc[0]
    assert full["drop_vs_full"] == 0 and abs(full["acc_mean"] - summary["cv_acc_mean"]) < 0.05
    pairs = p[p["kind"] == "pair"]
    assert (pairs["i"] < pairs["j"]).all()
    a, b = SIGNAL_FEATURES
    signal = pairs[(pairs["name_i"] == a) & (pairs["name_j"] == b)]["drop_vs_full"].item()
    noise = pairs[~pairs["name_i"].isin(SIGNAL_FEATURES) & ~pairs["name_j"].isin(SIGNAL_FEATURES)]
    assert len(noise) == 28
    assert signal > noise["drop_vs_full"].max() + 0.1
    assert summary["pairs_worst"]["names"] == list(SIGNAL_FEATURES)


def test_resume_recomputes_only_the_missing_task(done: tuple) -> None:
    cfg, paths, *_, out = done
    tasks = out / "tasks"
    with np.load(tasks / "r0_f2.npz") as z:
        before = z["w_hidden"].copy()
    (tasks / "r0_f2.json").unlink()
    others = {p: p.stat().st_mtime_ns for p in tasks.iterdir() if not p.name.startswith("r0_f2")}
    summary = stage.run(cfg, paths, resume=True)
    assert summary["computed"] == {"train": 1, "analyses": 3}
    for p, t in others.items():
        if p.name != "inputs.json":
            assert p.stat().st_mtime_ns == t, f"{p.name} was recomputed"
    with np.load(tasks / "r0_f2.npz") as z:
        np.testing.assert_array_equal(z["w_hidden"], before)  # seeded: the same model again
    assert json.loads((out / "summary.json").read_text())["computed"]["train"] == 1


def test_report_blocks(done: tuple, tmp_path: Path) -> None:
    cfg, paths, summary, _, out = done
    blocks = descriptor_blocks(paths.root, tmp_path)
    imgs = [b[1] for b in blocks if b[0] == "img"]
    assert len(imgs) == 2 and all((tmp_path / f).stat().st_size > 1000 for f in imgs)
    (table,) = [b[1] for b in blocks if b[0] == "table" and "paper" in b[1].columns]
    t1 = pd.read_csv(out / "table1_magnitude.csv")
    np.testing.assert_allclose(table["mean"], t1["mean"])
    np.testing.assert_allclose(table["std"], t1["std"])
    np.testing.assert_allclose(table["paper"], PAPER_TABLE1)
    md = to_markdown(blocks)
    assert "26.857 %" in md and f"{100 * summary['cv_acc_mean']:.2f} %" in md
    assert "not grouped" not in md
    to_html(blocks, "t")
    assert descriptor_blocks(tmp_path / "no_run", tmp_path) == []


def test_ungrouped_sheet_is_labelled(ray_session: None, tmp_path: Path) -> None:
    raw = write_sfew_sheet(tmp_path / "s.xlsx", n_movies=4, per_movie=10)
    raw.drop(columns="Image name").to_excel(tmp_path / "nonames.xlsx", index=False)
    cfg = _config(
        tmp_path, tmp_path / "nonames.xlsx", "descriptors.epochs=3", "descriptors.folds=2"
    )
    summary = stage.run(cfg, RunPaths.of(cfg))
    assert summary["grouped"] is False and "NOT GROUPED BY MOVIE" in summary["grouping_note"]
    md = to_markdown(descriptor_blocks(RunPaths.of(cfg).root, tmp_path / "rep"))
    assert "not grouped by movie" in md.lower() and "Warning" in md
