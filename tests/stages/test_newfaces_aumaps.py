"""Seed 002's newfaces stage and seed 003's aumaps stage on one tiny synthetic run of the
paper's small CNN (issue 14). Every number checked is recomputed here from the stored files.

Tiny on purpose (8 subjects, 32 px crops, 2 epochs): the network barely learns, so these
tests check the bookkeeping (splits, predictions, matrix, distances, region boxes, panels),
not accuracy; the recipes' headline numbers are in the README.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_ray.analysis import au_maps, au_tasks, cross_domain
from fer_ray.data import au_regions, synthetic
from fer_ray.pipeline import run_pipeline
from tests.conftest import smoke_config

pytestmark = pytest.mark.slow

TINY = [
    "data.n_subjects=8",
    "data.per_class=1",
    "data.image_size=48",
    "faces.size=32",
    "model.backbone=small_cnn",
    "model.weights=none",
    "model.train_last_convs=-1",
    "model.head_dropout=0.5",
    "train.optimizer=sgd",
    "train.recipe=seed003",
    "train.batch_size=16",
    "train.epochs=2",
    "grid.folds=2",
    "grid.lr=[0.01]",
    "grid.hidden=[16]",
    "ensemble.members=1",
    "ensemble.phase2_epochs=0",
    "ensemble.test_fraction=0.25",
    "analyse.enabled=false",
    "newfaces.enabled=true",
    "newfaces.members=1",
    "newfaces.style=studio",
    "aumaps.enabled=true",
    "aumaps.shuffles=20",
    "aumaps.panels=best",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_cache):
    tmp = tmp_path_factory.mktemp("newfaces_aumaps")
    cfg = smoke_config(tmp, *TINY, f"faces.cache_dir={shared_cache / 'crops'}")
    report = run_pipeline(cfg)
    return cfg, tmp / "runs" / "smoke", report


def test_newfaces_domains_are_disjoint_and_grouped(run):
    _, run_dir, _ = run
    d = pd.read_csv(run_dir / "newfaces" / "domains.csv")
    assert list(dict.fromkeys(d["domain"])) == ["synthetic", "synthetic-studio"]
    a, b = (d[d["domain"] == n] for n in ("synthetic", "synthetic-studio"))
    assert len(a) == len(b) == 8 * 7
    assert not set(a["group"]) & set(b["group"])  # other identities: disjoint subjects
    assert b["item"].str.startswith("synthetic-studio:").all()
    for dom in (a, b):  # each domain's test holdout holds whole subjects
        tested = set(dom.loc[dom["test"], "group"])
        assert tested and not tested & set(dom.loc[~dom["test"], "group"])


def test_newfaces_matrix_is_recomputed_from_the_stored_predictions(run):
    cfg, run_dir, report = run
    out = run_dir / "newfaces"
    d = pd.read_csv(out / "domains.csv")
    m = pd.read_csv(out / "matrix.csv")
    assert len(m) == 6 and set(m["kind"]) == {"within", "cross"}
    for r in m.itertuples():
        dom = r.test.removesuffix(":all")
        rows = d[d["domain"] == dom]
        if not r.test.endswith(":all"):
            rows = rows[rows["test"]]
        with np.load(out / "predictions" / f"{r.train}_00.npz") as z:
            probs = z[r.test.replace(":", "__")]
        assert probs.shape == (len(rows), 7)
        c = cross_domain.cell([probs], rows["label"].to_numpy(), rows["group"].to_numpy(), cfg.seed)
        assert c["vote_acc"] == pytest.approx(r.vote_acc)
        assert (c["low"], c["high"]) == pytest.approx((r.low, r.high))
        assert r.n_groups == rows["group"].nunique()
    members = pd.read_csv(out / "members.csv")
    assert sorted(members["train"]) == ["synthetic", "synthetic-studio"]
    assert members["val_acc"].between(0, 1).all()
    text = (report / "report.md").read_text()
    assert "New faces: train on one data set, test on another (seed 002)" in text
    assert (report / "newfaces_matrix.png").is_file()


def test_aumaps_distances_and_regions_are_recomputed(run):
    cfg, run_dir, report = run
    out = run_dir / "aumaps"
    s = json.loads((out / "summary.json").read_text())
    assert s["unit"] == "relu3" and s["n_maps"] == 256 and s["region_check"]
    assert s["receptive_field"] == {"size": 32, "stride": 4, "offset": -14}
    maps = pd.read_csv(out / "maps.csv")
    assert list(maps["au"]) == [f"AU{a}" for a in synthetic.AU_LIST]
    # the member's training images, their true AU intensities, the stored maxima
    with np.load(next((run_dir / "ensemble").rglob("member.npz"))) as z:
        train_idx = np.sort(z["train_idx"])
    with np.load(out / "tasks" / "00_maxima.npz") as z:
        act, pos = z["act"], z["pos"]
    assert act.shape == (len(train_idx), 256) and s["n_images"]["0"] == len(train_idx)
    manifest = pd.read_csv(run_dir / "prepare" / "manifest.csv")
    idx = [int(i.split(":")[1]) for i in manifest["item"].iloc[train_idx]]
    geo = au_regions.synthetic_geometry(
        idx, n_subjects=8, per_class=1, image_size=48, seed=cfg.data.seed
    )
    aus = np.stack([g.aus for g in geo])
    # the true regions in the network's input: through the 32 px crop of the face box
    # (groundtruth detector, margin 0) and seed003's eval resize 33 + centre crop
    boxes = manifest[["box_x0", "box_y0", "box_x1", "box_y1"]].to_numpy()[train_idx]
    frames = np.array([au_tasks.crop_frame(tuple(b), 0.0, (48, 48), 32) for b in boxes])
    regions = au_tasks.input_boxes(au_regions.region_boxes(geo), frames, 32, 99 / 96)
    rf = au_maps.ReceptiveField(32, 4, -14)
    dist = pd.read_csv(out / "distances.csv")
    for j, au in enumerate(synthetic.AU_LIST):
        row = maps[maps["au"] == f"AU{au}"].iloc[0]
        has = aus[:, j] > 0
        assert (row["n_with"], row["n_without"]) == (has.sum(), (~has).sum())
        d = au_maps.au_map_distance(act, has, 9)
        assert row["map"] == int(np.argmax(d)) and row["distance"] == pytest.approx(d.max())
        stored = dist[dist["au"] == f"AU{au}"].sort_values("map")["distance"].to_numpy()
        np.testing.assert_allclose(stored, d, rtol=1e-9)
        top = au_maps.top_images(act, 9)[int(row["map"])]
        agree = au_maps.region_agreement(pos[top, int(row["map"])], regions[top, j], rf)
        assert row["agreement"] == pytest.approx(agree)
        assert 0 <= row["shuffled_mean"] <= 1
        assert 1 / 21 <= row["p_value"] <= 1
    # every best map has its panel: 2 rows (crops, deconvolutions) of 9 tiles
    for mp in sorted(set(maps["map"])):
        png = cv2.imread(str(out / "panels" / "member_00" / f"relu3_map{mp:03d}.png"))
        assert png is not None and png.shape[1] > 4 * png.shape[0]
    assert s["agreement_mean"] == pytest.approx(maps["agreement"].mean())
    text = (report / "report.md").read_text()
    assert "Deconvolution and Action Units ↔ maps (seed 003)" in text
    assert "shuffled across images" in text
