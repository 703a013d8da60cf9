"""Seed 002's new-faces matrix (fer_ray.analysis.cross_domain) on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest

from fer_ray.analysis import cross_domain as cd
from fer_ray.errors import DataError


def test_shared_classes_keep_a_s_order_and_need_two() -> None:
    ck = ["angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"]
    jaffe = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert cd.shared_classes(ck, jaffe) == ["angry", "disgust", "fear", "happy", "sad", "surprise"]
    assert cd.shared_classes(jaffe[::-1], ck)[0] == "surprise"
    with pytest.raises(DataError, match="share 1 class"):
        cd.shared_classes(["happy", "sad"], ["happy", "neutral"])


def test_relabel_drops_unshared_classes() -> None:
    keep, y = cd.relabel(["sad", "contempt", "happy", "sad"], ["happy", "sad"])
    assert keep.tolist() == [True, False, True, True]
    assert y.tolist() == [1, 0, 1]


def _onehot(preds: list[int], n: int = 3) -> np.ndarray:
    return np.eye(n)[preds] * 0.8 + 0.2 / n


def test_cell_is_the_members_mean_and_the_soft_vote() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2])
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    m1 = _onehot([0, 1, 2, 0, 1, 0])  # 5/6
    m2 = _onehot([0, 1, 1, 1, 1, 2])  # 4/6
    m3 = _onehot([0, 2, 2, 0, 0, 2])  # 4/6
    c = cd.cell([m1, m2, m3], labels, groups, seed=0)
    assert c["members"] == 3
    assert c["member_mean"] == pytest.approx((5 + 4 + 4) / 18)
    assert c["member_std"] == pytest.approx(np.std([5 / 6, 4 / 6, 4 / 6], ddof=1))
    # majority per image: 0,1,2,0,1,2 → all six right
    assert c["vote_acc"] == 1.0 and c["low"] == 1.0 and c["high"] == 1.0
    assert (c["n_items"], c["n_groups"], c["unit"]) == (6, 3, "group")
    with pytest.raises(DataError, match="one probability row"):
        cd.cell([m1[:3]], labels, groups)


def test_matrix_marks_within_and_cross_cells() -> None:
    y_a, g_a = np.array([0, 1]), np.array(["s1", "s2"])
    y_b, g_b = np.array([1, 1, 0]), np.array(["t1", "t1", "t2"])
    probs = {
        ("A", "A"): [_onehot([0, 1], 2)],
        ("A", "B"): [_onehot([0, 0, 0], 2)],
        ("A", "B:all"): [_onehot([0, 0, 0, 1], 2)],
        ("B", "B"): [_onehot([1, 1, 0], 2)],
        ("B", "A"): [_onehot([1, 1], 2)],
    }
    truth = {"A": (y_a, g_a), "B": (y_b, g_b), "B:all": (np.array([1, 1, 0, 1]), np.arange(4))}
    m = cd.matrix(probs, truth, ["A", "B"])
    assert list(zip(m["train"], m["test"], m["kind"])) == [
        ("A", "A", "within"), ("A", "B", "cross"), ("A", "B:all", "cross"),
        ("B", "A", "cross"), ("B", "B", "within"),
    ]  # fmt: skip
    assert m["vote_acc"].round(4).tolist() == [1.0, round(1 / 3, 4), 0.5, 0.5, 1.0]
    conf = cd.vote_confusion(probs["A", "B"], y_b, ["x", "y"])
    assert conf.to_dict("list") == {"true": ["x", "y"], "x": [1, 2], "y": [0, 0]}
