"""The pure work of stage aumaps (fer_ray.analysis.au_tasks): geometry, one AU, member nets."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from fer_ray.analysis import au_maps, au_tasks
from fer_ray.config import ModelConfig
from fer_ray.data import recipes
from fer_ray.faces.crop import crop
from fer_ray.models.factory import create_model


@pytest.mark.parametrize(("recipe", "size"), [("seed003", 96), ("none", 48), ("seed002", 64)])
def test_input_boxes_follow_the_crop_and_the_eval_transform(recipe: str, size: int) -> None:
    """A white box drawn in the source image lands where ``input_boxes`` says, after the face
    crop (square, margin, resize) and the recipe's eval resize + centre crop."""
    img = np.zeros((90, 100, 3), np.uint8)
    region = (37, 30, 55, 44)  # x0, y0, x1, y1 exclusive
    img[region[1] : region[3], region[0] : region[2]] = 255
    face, margin = (22, 12, 66, 60), 0.1
    x = recipes.get(recipe).eval_batch(crop(img, face, margin, size)[None])[0, 0]
    bright = (x > (x.max() + x.min()) / 2).numpy()
    ys, xs = np.nonzero(bright)
    seen = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    frame = au_tasks.crop_frame(face, margin, img.shape[:2], size)
    ratio = recipes.get(recipe).resize_ratio
    (box,) = au_tasks.input_boxes(np.array([[region]]), np.array([frame]), size, ratio)[0]
    # the predicted box holds the half-maximum region and is at most 1 px larger per side
    assert box[0] <= seen[0] and box[1] <= seen[1] and box[2] >= seen[2] and box[3] >= seen[3]
    assert max(seen[0] - box[0], seen[1] - box[1], box[2] - seen[2], box[3] - seen[3]) <= 1


def test_crop_frame_without_a_box_is_the_centre_square() -> None:
    x0, y0, scale = au_tasks.crop_frame(None, 0.2, (60, 100), 30)
    assert (x0, y0, scale) == (20.0, 0.0, 0.5)
    assert au_tasks.crop_frame((-1, -1, -1, -1), 0.0, (60, 100), 30) == (20.0, 0.0, 0.5)


def _planted(n: int = 30):
    has = np.arange(n) < 12
    act = np.ones((n, 4))
    act[:, 2] = np.where(has, 5.0, 1.0)
    pos = np.zeros((n, 4, 2), np.int64)
    pos[:, 2] = (2, 3)  # rf 8 px on a stride-4 grid: centre (16, 12)
    regions = np.tile([10, 5, 25, 20], (n, 1))
    return act, pos, has, regions


def test_au_task_finds_the_planted_detector_and_checks_its_region() -> None:
    act, pos, has, regions = _planted()
    row = au_tasks.au_task(act, pos, "AU1", has, regions, (8, 4, 0), shuffles=200, seed=0)
    assert row["map"] == 2 and row["n_with"] == 12 and row["n_without"] == 18
    assert row["distance"] == pytest.approx(9 * 4 * math.log(5))
    np.testing.assert_allclose(row["distances"], au_maps.au_map_distance(act, has))
    assert row["agreement"] == 1.0 and 0.5 < row["shuffled_mean"] < 1.0
    assert row["p_value"] == pytest.approx((1 + 200 * row["shuffled_mean"]) / 201, abs=0.01)
    real = au_tasks.au_task(act, pos, "AU1", has, None, (8, 4, 0))
    assert real["map"] == 2 and "agreement" not in real
    none = au_tasks.au_task(act, pos, "AU9", np.zeros(30, bool), regions, (8, 4, 0))
    assert none["map"] == -1 and math.isnan(none["distance"])


def test_manifest_aus_neutral_is_no_au_and_unscored_stays_out() -> None:
    m = pd.DataFrame(
        {"label_name": ["neutral", "happy", "happy"], "AU12": [np.nan, 3.0, np.nan],
         "AU6": [np.nan, 2.0, np.nan], "item": ["a", "b", "c"]}
    )  # fmt: skip
    aus = au_tasks.manifest_aus(m)
    assert list(aus.columns) == ["AU6", "AU12"]
    assert aus.iloc[0].tolist() == [0.0, 0.0] and aus.iloc[1].tolist() == [2.0, 3.0]
    assert aus.iloc[2].isna().all()
    assert au_tasks.manifest_aus(m[["label_name", "item"]]) is None


@pytest.mark.parametrize("k", [-1, 1])
def test_conv_stack_and_member_state(k: int) -> None:
    cfg = ModelConfig(backbone="small_cnn", weights="none", train_last_convs=k)
    trained = create_model(cfg, 3, 4, head_seed=1)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.5)
    fresh = create_model(cfg, 3, 4, head_seed=2)
    state = trained.state_dict() if k < 0 else trained.tail.state_dict()
    au_tasks.member_state_into(fresh, state)
    net = au_tasks.conv_stack(fresh)
    assert [n for n, _ in net.named_children()] == [
        f"{kind}{i}" for i in (1, 2, 3) for kind in ("conv", "relu", "pool")
    ]
    assert torch.equal(net.conv3.weight, trained.tail.blocks.conv3.weight)
    if k < 0:
        assert torch.equal(net.conv1.weight, trained.tail.blocks.conv1.weight)
    for key, value in trained.tail.state_dict().items():
        assert torch.equal(fresh.tail.state_dict()[key], value)
    x = torch.randn(2, 3, 16, 16)
    mx = au_tasks.maxima_task(net, x, "relu3")
    assert mx["act"].shape == (2, 256) and mx["rf"] == (32, 4, -14)


def test_synthetic_au_labels_scale_the_true_regions_into_the_network_input() -> None:
    """With the face box the whole image and no margin, the crop only rescales: each AU's
    region in the input is its source region times size / image_size, edges rounded out."""
    from fer_ray.data import au_regions, synthetic

    s, n = 64, 6
    manifest = pd.DataFrame({"item": [f"synthetic:{i}" for i in range(n)],
                             "box_x0": 0, "box_y0": 0, "box_x1": s, "box_y1": s})  # fmt: skip
    draws = {"n_subjects": 3, "per_class": 1, "image_size": s, "seed": 5}
    geo = au_regions.synthetic_geometry(range(n), **draws)
    source = au_regions.region_boxes(geo, synthetic.AU_LIST)
    for size in (s, s // 2):
        aus, regions = au_tasks.synthetic_au_labels(manifest, **draws, margin=0.0, size=size)
        assert list(aus.columns) == [f"AU{a}" for a in synthetic.AU_LIST]
        assert np.array_equal(aus.to_numpy(), np.stack([g.aus for g in geo]))
        k = size / s
        want = np.stack([np.floor(source[..., 0] * k), np.floor(source[..., 1] * k),
                         np.ceil(source[..., 2] * k), np.ceil(source[..., 3] * k)], -1)  # fmt: skip
        assert regions.shape == (n, len(synthetic.AU_LIST), 4)
        assert np.array_equal(regions, np.clip(want, 0, size))


def test_map_tables_order_columns_and_list_every_distance() -> None:
    rows = [
        {"member": 0, "au": "AU12", "n_with": 3, "n_without": 5, "map": 1, "distance": 0.7,
         "distances": [0.2, 0.7], "p_value": 0.01, "agreement": 0.9, "shuffled_mean": 0.4,
         "shuffled_sd": 0.1},
        {"member": 1, "au": "AU12", "n_with": 0, "n_without": 8, "map": -1,
         "distance": float("nan"), "distances": []},
    ]  # fmt: skip
    table, dist = au_tasks.map_tables(rows)
    assert list(table.columns) == au_tasks.MAP_COLUMNS + au_tasks.AGREEMENT_COLUMNS
    assert table["map"].tolist() == [1, -1]
    assert dist.to_dict("records") == [
        {"member": 0, "au": "AU12", "map": 0, "distance": 0.2},
        {"member": 0, "au": "AU12", "map": 1, "distance": 0.7},
    ]
    empty, no_dist = au_tasks.map_tables([])
    assert list(empty.columns) == au_tasks.MAP_COLUMNS and len(empty) == 0
    assert list(no_dist.columns) == ["member", "au", "map", "distance"] and len(no_dist) == 0


def test_agreement_summary_counts_pairs_above_the_shuffled_baseline() -> None:
    table = pd.DataFrame({"agreement": [0.9, 0.3, np.nan], "shuffled_mean": [0.4, 0.5, 0.2],
                          "p_value": [0.01, 0.6, np.nan]})  # fmt: skip
    s = au_tasks.agreement_summary(table)
    assert s == {"agreement_mean": pytest.approx(0.6), "shuffled_mean": pytest.approx(0.45),
                 "n_pairs": 2, "n_above": 1, "n_significant": 1}  # fmt: skip
    assert au_tasks.agreement_summary(table.drop(columns="agreement")) == {}


def test_member_tops_name_the_manifest_items_each_member_saw() -> None:
    act = np.array([[1.0, 5.0], [3.0, 2.0], [2.0, 4.0]])  # 3 images x 2 maps
    pos = np.zeros((3, 2, 2), dtype=np.int64)
    items = np.array(["a", "b", "c", "d"])
    tops = au_tasks.member_tops({0: {"act": act, "pos": pos}}, {0: np.array([1, 2, 3])}, items, 2)
    # map 0: images 1 (3.0) then 2 (2.0) = items c, d; map 1: images 0 (5.0), 2 (4.0) = b, d
    assert tops[["member", "map", "rank", "item"]].values.tolist() == [
        [0, 0, 0, "c"], [0, 0, 1, "d"], [0, 1, 0, "b"], [0, 1, 1, "d"],
    ]  # fmt: skip
    assert tops["activation"].tolist() == [3.0, 2.0, 5.0, 4.0]
