"""Tests for seed 003's AU ↔ feature-map distance and the region check (analysis.au_maps)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from fer_ray.analysis import au_maps
from fer_ray.errors import DataError, ModelError
from fer_ray.models.small_cnn import SmallCNN


def test_distance_hand_example() -> None:
    # map 0: with-AU maxima are twice the without-AU ones rank by rank; map 1: identical sides.
    # n = 3: R = [4, 2, 1], Q = [2, 1, 0.5]; every R/Q = 2, so
    # D = (4 + 2 + 1)·log 2 + (2 + 1 + 0.5)·log(1/2) = 3.5·log 2.
    act = np.array(
        [[4, 1], [0.5, 3], [2, 2], [1, 9], [2, 1], [0.25, 3], [1, 2], [0.5, 9]], dtype=float
    )
    has = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    d = au_maps.au_map_distance(act, has, n=3)
    np.testing.assert_allclose(d, [3.5 * math.log(2), 0.0], rtol=0, atol=1e-12)


def test_distance_is_eq13_on_random_values() -> None:
    rng = np.random.default_rng(0)
    act = rng.gamma(2.0, 1.0, size=(40, 5))
    has = rng.uniform(size=40) < 0.4
    d = au_maps.au_map_distance(act, has, n=9)
    for j in range(5):  # eq. 10 + eq. 10 swapped (eq. 12/13), written out term by term
        r = sorted(act[has, j], reverse=True)[:9]
        q = sorted(act[~has, j], reverse=True)[:9]
        ref = sum(a * math.log(a / b) for a, b in zip(r, q)) + sum(
            b * math.log(b / a) for a, b in zip(r, q)
        )
        assert d[j] == pytest.approx(ref, rel=1e-12)
    assert (d >= 0).all()
    np.testing.assert_allclose(au_maps.au_map_distance(act, ~has), d, rtol=1e-12)  # symmetric
    np.testing.assert_allclose(au_maps.au_map_distance(3 * act, has), 3 * d, rtol=1e-12)
    perm = rng.permutation(40)
    np.testing.assert_allclose(au_maps.au_map_distance(act[perm], has[perm]), d, rtol=1e-12)


def test_eps_clips_silent_maps() -> None:
    # without-AU maxima 0 or negative (pre-ReLU) are clipped to eps = 1e-3.
    act = np.array([[2.0], [1.0], [0.0], [-5.0]])
    has = np.array([True, True, False, False])
    e = 1e-3
    ref = 2 * math.log(2 / e) + 1 * math.log(1 / e) + e * math.log(e / 2) + e * math.log(e / 1)
    assert au_maps.au_map_distance(act, has, n=9, eps=e)[0] == pytest.approx(ref, rel=1e-12)


def test_fewer_than_n_images_uses_common_rank_count() -> None:
    # 2 images with the AU, 5 without, n = 9: m = 2, R = [3, 1], Q = [1, 1] (top two of the five)
    act = np.array([[3.0], [1.0], [1.0], [0.5], [1.0], [0.2], [0.1]])
    has = np.array([True, True, False, False, False, False, False])
    ref = 3 * math.log(3) + 1 * math.log(1 / 3)
    assert au_maps.au_map_distance(act, has)[0] == pytest.approx(ref, rel=1e-12)


def test_distance_input_errors() -> None:
    act = np.ones((4, 2))
    with pytest.raises(DataError, match="no image with the AU"):
        au_maps.au_map_distance(act, np.zeros(4, bool))
    with pytest.raises(DataError, match="no image without the AU"):
        au_maps.au_map_distance(act, np.ones(4, bool))
    with pytest.raises(DataError, match=r"shape \(4,\)"):
        au_maps.au_map_distance(act, np.ones(3, bool))
    with pytest.raises(DataError, match="NaN"):
        au_maps.au_map_distance(np.full((4, 2), np.nan), np.array([1, 0, 1, 0], bool))
    with pytest.raises(DataError, match="boolean"):
        au_maps.au_map_distance(act, np.array([0, 2, 1, 0]))
    with pytest.raises(DataError, match="n_images, n_maps"):
        au_maps.au_map_distance(np.ones(4), np.array([1, 0, 1, 0], bool))


def test_best_maps_finds_the_planted_detectors() -> None:
    rng = np.random.default_rng(1)
    n = 60
    aus = pd.DataFrame(
        {
            "AU1": rng.uniform(0.3, 1.0, n) * (rng.uniform(size=n) < 0.4),
            "AU12": (rng.uniform(size=n) < 0.3).astype(float),
            "AU26": np.ones(n),  # on every image: no contrast
        }
    )
    act = rng.uniform(0.5, 1.0, size=(n, 6))
    act[:, 4] += 2.0 * (aus["AU1"] > 0)
    act[:, 1] += 3.0 * (aus["AU12"] > 0)
    table = au_maps.best_maps(act, aus)
    assert list(table.columns) == ["au", "map", "distance", "n_with", "n_without"]
    assert table["au"].tolist() == ["AU1", "AU12", "AU26"]
    assert table["map"].tolist() == [4, 1, -1]
    assert table.loc[0, "n_with"] == int((aus["AU1"] > 0).sum())
    assert table.loc[0, "n_with"] + table.loc[0, "n_without"] == n
    d1 = au_maps.au_map_distance(act, aus["AU1"].to_numpy() > 0)
    assert table.loc[0, "distance"] == pytest.approx(d1.max())
    assert np.isnan(table.loc[2, "distance"])
    arr = au_maps.best_maps(act, aus.to_numpy())  # an array: au = column index
    assert arr["au"].tolist() == [0, 1, 2] and arr["map"].tolist() == [4, 1, -1]
    with pytest.raises(DataError, match="rows"):
        au_maps.best_maps(act, aus.iloc[:10])
    with pytest.raises(DataError, match="NaN"):
        au_maps.best_maps(act, aus.assign(AU1=np.nan))


def test_top_images_descending_and_stable() -> None:
    act = np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 1.0], [3.0, 0.0]])
    np.testing.assert_array_equal(au_maps.top_images(act, 3), [[1, 3, 2], [0, 1, 2]])
    assert au_maps.top_images(act, 9).shape == (2, 4)


def test_receptive_field_of_small_cnn() -> None:
    m = SmallCNN(0, widths=(2, 2, 2))
    assert au_maps.receptive_field(m, "conv1") == au_maps.ReceptiveField(5, 1, -2)
    assert au_maps.receptive_field(m, "pool1") == au_maps.ReceptiveField(6, 2, -2)
    assert au_maps.receptive_field(m, "conv2") == au_maps.ReceptiveField(14, 2, -6)
    conv3 = au_maps.receptive_field(m, "conv3")
    assert conv3 == au_maps.ReceptiveField(32, 4, -14)
    assert au_maps.receptive_field(m.features, "relu3") == conv3
    assert au_maps.receptive_field(m.units(), "pool3") == au_maps.ReceptiveField(36, 8, -14)
    valid = SmallCNN(0, widths=(2, 2, 2), padding=0)
    assert au_maps.receptive_field(valid, "conv3") == au_maps.ReceptiveField(32, 4, 0)
    # the 24×24 conv3 grid is centred on the 96 px image: centres at 2, 6, …, 94
    np.testing.assert_array_equal(conv3.centres(np.array([[0, 23]])), [[94.0, 2.0]])
    np.testing.assert_array_equal(conv3.boxes(np.array([0, 23]), 96), [78, 0, 96, 18])
    with pytest.raises(ModelError, match="no unit"):
        au_maps.receptive_field(m, "conv4")
    with pytest.raises(ModelError, match="cannot"):
        au_maps.receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten()), "1")


@pytest.mark.parametrize("padding", [2, 0])
def test_receptive_field_matches_brute_force(padding: int) -> None:
    # All-ones weights, no bias, ones input: a huge bump at one pixel raises every conv output
    # that sees it above anything else in its pooling window, so exactly the pixels inside the
    # (clipped) receptive field change a conv3 activation.
    s = 48
    m = SmallCNN(0, in_chans=1, image_size=s, widths=(1, 1, 1), padding=padding).double()
    for conv in (m.features.conv1, m.features.conv2, m.features.conv3):
        nn.init.ones_(conv.weight)
        nn.init.zeros_(conv.bias)
    net = m.features[:7]  # conv1 … conv3
    x = torch.ones(s * s, 1, s, s, dtype=torch.float64)
    x.view(s * s, -1)[torch.arange(s * s), torch.arange(s * s)] += 1e6
    with torch.no_grad():
        base = net(torch.ones(1, 1, s, s, dtype=torch.float64))[0, 0]
        out = net(x)[:, 0]
    rf = au_maps.receptive_field(m, "conv3")
    h, w = base.shape
    assert (h, w) == ((12, 12) if padding else (5, 5))  # unpadded: 48→44→22→18→9→5
    for i, j in [(0, 0), (h // 2, w // 3), (h - 1, w - 1)]:
        changed = (out[:, i, j] != base[i, j]).reshape(s, s).numpy()
        x0, y0, x1, y1 = rf.boxes(np.array([i, j]), s)
        want = np.zeros((s, s), bool)
        want[y0:y1, x0:x1] = True
        np.testing.assert_array_equal(changed, want)


def test_region_agreement_constructed_case() -> None:
    # rf: 4 px boxes on a stride-4 grid, so position (i, i) covers [4i, 4i+4)², centre 4i+2.
    rf = au_maps.ReceptiveField(4, 4, 0)
    pos = np.array([[0, 0], [1, 1], [2, 2], [0, 0]])
    regions = np.array(
        [
            [0, 0, 3, 3],  # centre (2, 2) inside
            [0, 0, 6, 6],  # centre (6, 6) on the exclusive edge: outside; boxes overlap
            [9, 9, 12, 12],  # centre (10, 10) inside
            [20, 20, 30, 30],  # far away
        ]
    )
    assert au_maps.region_agreement(pos, regions, rf) == 0.5
    assert au_maps.region_agreement(pos, regions, rf, rule="overlap") == 0.75
    with pytest.raises(DataError, match="rule"):
        au_maps.region_agreement(pos, regions, rf, rule="iou")
    with pytest.raises(DataError, match="regions"):
        au_maps.region_agreement(pos, regions[:2], rf)


def _planted(n: int = 30, n_au_a: int = 12):
    """Map 2 doubles as the AU-A detector (5 vs 1), the other maps are flat (D = 0 always).

    Map 2's argmax sits inside AU A's region in every image; other maps' argmax does not.
    AU B's region is away from every position.
    """
    has_a = np.arange(n) < n_au_a
    act = np.ones((n, 4))
    act[:, 2] = np.where(has_a, 5.0, 1.0)
    pos = np.zeros((n, 4, 2), np.int64)
    pos[:, 2] = (2, 3)  # rf box x [12, 20), y [8, 16): centre (16, 12)
    rf = au_maps.ReceptiveField(8, 4, 0)
    regions = np.zeros((n, 2, 4), np.int64)
    regions[:, 0] = (10, 5, 25, 20)
    regions[:, 1] = (40, 40, 50, 50)
    has_b = np.random.default_rng(3).uniform(size=n) < 0.3
    aus = pd.DataFrame({"A": has_a.astype(float), "B": has_b.astype(float)})
    return act, pos, aus, regions, rf


def test_region_agreement_table_known_answer() -> None:
    act, pos, aus, regions, rf = _planted()
    table = au_maps.au_region_agreement(act, pos, aus, regions, rf, n_shuffles=1000, seed=0)
    a, b = table.iloc[0], table.iloc[1]
    assert a["map"] == 2 and a["distance"] == pytest.approx(9 * 4 * math.log(5))
    assert a["agreement"] == 1.0 and b["agreement"] == 0.0
    # Shuffled labels: the 12 "5"s fall 6/6 on the two sides with hypergeometric probability
    # C(12,6)·C(18,6)/C(30,12); only then map 2's top-9 R and Q coincide, every D is 0 and the
    # lowest map (0, off-region) wins. So the baseline is 1 - that probability = 0.80168.
    p6 = math.comb(12, 6) * math.comb(18, 6) / math.comb(30, 12)
    assert p6 == pytest.approx(0.19832, abs=1e-5)
    assert a["shuffled_mean"] == pytest.approx(1 - p6, abs=0.05)  # 1000 draws: sd 0.013
    assert a["p_value"] == pytest.approx((1 + 1000 * a["shuffled_mean"]) / 1001)
    assert b["shuffled_mean"] == 0.0 and b["p_value"] == 1.0


def test_shuffled_agreement_is_seeded_and_matches_the_pieces() -> None:
    act, pos, aus, regions, rf = _planted()
    base = au_maps.shuffled_agreement(act, pos, aus, regions, rf, n_shuffles=5, seed=7)
    again = au_maps.shuffled_agreement(act, pos, aus, regions, rf, n_shuffles=5, seed=7)
    np.testing.assert_array_equal(base, again)
    rng = np.random.default_rng(7)
    top = au_maps.top_images(act, 9)
    for s in range(5):
        perm = rng.permutation(len(act))
        best = au_maps.best_maps(act, aus.to_numpy()[perm])["map"].tolist()
        for j, mp in enumerate(best):
            idx = top[mp]
            want = au_maps.region_agreement(pos[idx, mp], regions[idx, j], rf)
            assert base[s, j] == want
    with pytest.raises(DataError, match="positions"):
        au_maps.shuffled_agreement(act, pos[:, :2], aus, regions, rf, n_shuffles=1)
