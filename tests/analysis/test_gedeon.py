"""Tests for the Gedeon magnitude (eq. 1-2) and angle (eq. 3) measures."""

from __future__ import annotations

import numpy as np
import pytest

from fer_ray.analysis import gedeon

# Hand-worked 3-input, 2-hidden, 2-output head (torch layout).
#
# w_hidden (hidden x input)      |.| row sums      P_ir = |W_ir| / sum_p |W_pr|  (input x hidden)
#   h1: [ 1, -2,  1]             4                 i1: [1/4, 0  ]
#   h2: [ 0,  3, -1]             4                 i2: [1/2, 3/4]
#                                                  i3: [1/4, 1/4]
# w_out (output x hidden)        |.| row sums      P_rk = |W_rk| / sum_r |W_rk|  (hidden x output)
#   o1: [ 2, -2]                 4                 h1: [1/2, 1/4]
#   o2: [-1,  3]                 4                 h2: [1/2, 3/4]
#
# Q_ik = sum_r P_ir P_rk:
#   i1: [1/4*1/2,             1/4*1/4            ] = [1/8,  1/16 ]  -> 3/16
#   i2: [1/2*1/2 + 3/4*1/2,   1/2*1/4 + 3/4*3/4  ] = [5/8,  11/16]  -> 21/16
#   i3: [1/4*1/2 + 1/4*1/2,   1/4*1/4 + 1/4*3/4  ] = [1/4,  1/4  ]  -> 8/16
# Columns of Q sum to 1; contributions sum to 32/16 = 2 = n_outputs.
W_HIDDEN = np.array([[1.0, -2.0, 1.0], [0.0, 3.0, -1.0]])
W_OUT = np.array([[2.0, -2.0], [-1.0, 3.0]])


def test_contribution_matrix_hand_example():
    q = gedeon.contribution_matrix(W_HIDDEN, W_OUT)
    expected = np.array([[1 / 8, 1 / 16], [5 / 8, 11 / 16], [1 / 4, 1 / 4]])
    np.testing.assert_allclose(q, expected, rtol=0, atol=1e-15)


def test_feature_contributions_hand_example():
    c = gedeon.feature_contributions(W_HIDDEN, W_OUT)
    np.testing.assert_allclose(c, [3 / 16, 21 / 16, 8 / 16], rtol=0, atol=1e-15)


def test_sign_of_weights_is_irrelevant():
    flips = np.array([[1, -1, -1], [-1, 1, 1]])
    c = gedeon.feature_contributions(W_HIDDEN * flips, -W_OUT)
    np.testing.assert_allclose(c, [3 / 16, 21 / 16, 8 / 16], atol=1e-15)


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 3, 2), (40, 17, 7), (512, 300, 7), (10, 64, 1)])
def test_contributions_sum_to_n_outputs(shape):
    n_features, n_hidden, n_outputs = shape
    rng = np.random.default_rng(sum(shape))
    w_h = rng.standard_normal((n_hidden, n_features))
    w_o = rng.standard_normal((n_outputs, n_hidden))
    c = gedeon.feature_contributions(w_h, w_o)
    assert c.shape == (n_features,)
    assert np.all(c >= 0)
    assert c.sum() == pytest.approx(n_outputs, rel=1e-12)
    np.testing.assert_allclose(gedeon.contribution_matrix(w_h, w_o).sum(axis=0), 1.0, rtol=1e-12)


def test_mean_contribution_matches_paper_fig2():
    rng = np.random.default_rng(7)
    c = gedeon.feature_contributions(rng.standard_normal((100, 512)), rng.standard_normal((7, 100)))
    assert c.mean() == pytest.approx(7 / 512, rel=1e-12)
    assert round(c.mean(), 4) == 0.0137


def test_zero_hidden_unit_gives_uniform_share_without_nan():
    w_h = W_HIDDEN.copy()
    w_h[1] = 0.0  # h2 has no input weights: its share is spread uniformly, 1/3 per input
    q = gedeon.contribution_matrix(w_h, W_OUT)
    assert np.all(np.isfinite(q))
    # i1 = 1/4*[1/2, 1/4] + 1/3*[1/2, 3/4]
    np.testing.assert_allclose(q[0], [1 / 8 + 1 / 6, 1 / 16 + 1 / 4], atol=1e-15)
    np.testing.assert_allclose(q.sum(axis=0), 1.0, atol=1e-15)
    w_o = W_OUT.copy()
    w_o[0] = 0.0  # output unit with no weights at all
    assert gedeon.feature_contributions(W_HIDDEN, w_o).sum() == pytest.approx(2.0)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        gedeon.feature_contributions(np.ones((4, 3)), np.ones((2, 5)))


def _loop_mean_angles(w_hidden: np.ndarray, absolute: bool) -> np.ndarray:
    w = np.abs(w_hidden) if absolute else w_hidden
    n = w.shape[1]
    out = np.zeros(n)
    for i in range(n):
        total = 0.0
        for j in range(n):
            if i == j:
                continue
            a, b = w[:, i], w[:, j]
            cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
            total += np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
        out[i] = total / (n - 1)
    return out


@pytest.mark.parametrize("absolute", [True, False])
@pytest.mark.parametrize("shape", [(6, 4), (20, 33)])
def test_mean_angles_match_double_loop(absolute, shape):
    rng = np.random.default_rng(shape[1])
    w = rng.standard_normal(shape)
    np.testing.assert_allclose(
        gedeon.mean_angles(w, absolute=absolute), _loop_mean_angles(w, absolute), atol=1e-9
    )


def test_angle_hand_case():
    # feature columns: f1=[1,0], f2=[0,1], f3=[1,0] (= f1), f4=[1,1]
    w = np.array([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]])
    a = gedeon.angle_matrix(w)
    expected = np.array(
        [[0, 90, 0, 45], [90, 0, 90, 45], [0, 90, 0, 45], [45, 45, 45, 0]], dtype=float
    )
    np.testing.assert_allclose(a, expected, atol=1e-6)
    np.testing.assert_allclose(gedeon.mean_angles(w), [45, 75, 45, 45], atol=1e-6)


def test_absolute_flag_changes_opposite_vectors():
    w = np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]])  # f1 = -f2, f3 orthogonal to both
    np.testing.assert_allclose(gedeon.angle_matrix(w, absolute=False)[0, 1], 180.0, atol=1e-6)
    np.testing.assert_allclose(gedeon.angle_matrix(w, absolute=True)[0, 1], 0.0, atol=1e-6)
    np.testing.assert_allclose(gedeon.mean_angles(w, absolute=False), [135, 135, 90], atol=1e-6)


def test_zero_feature_vector_is_90_degrees_to_all():
    w = np.array([[1.0, 0.0, 0.0, 2.0], [1.0, 0.0, 0.0, 0.0]])  # f2, f3 are zero vectors
    a = gedeon.angle_matrix(w)
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a[1], [90, 0, 90, 90])
    np.testing.assert_allclose(a[:, 2], [90, 90, 0, 90])
    np.testing.assert_allclose(gedeon.mean_angles(w)[1], 90.0)


def test_mean_angles_needs_two_features():
    with pytest.raises(ValueError):
        gedeon.mean_angles(np.ones((3, 1)))


def test_absolute_random_weights_give_paper_like_angles():
    # |N(0,1)| entries: E|x|^2 / E x^2 = 2/pi -> expected angle arccos(2/pi) = 50.5 deg
    # (measured with seed 0: min 46.6, max 53.7, mean 49.98); signed weights sit at ~90 deg.
    rng = np.random.default_rng(0)
    w = rng.standard_normal((100, 512))
    m = gedeon.mean_angles(np.abs(w))
    assert m.shape == (512,)
    assert m.min() > 45.0 and m.max() < 56.0
    assert m.mean() == pytest.approx(np.degrees(np.arccos(2 / np.pi)), abs=1.0)
    m_raw = gedeon.mean_angles(w, absolute=False)
    assert abs(m_raw.mean() - 90.0) < 0.5
    # absolute=True on signed weights is the same as passing |w|
    np.testing.assert_allclose(gedeon.mean_angles(w, absolute=True), m, atol=1e-12)


def test_within_mean_std():
    # mean 0, population std 1 for [-1, 1]*k; points at +-1 are inside (inclusive)
    assert gedeon.within_mean_std([-1.0, 1.0, -1.0, 1.0]) == 4
    # values 1..5: mean 3, std sqrt(2)=1.414 -> 2, 3, 4 inside
    assert gedeon.within_mean_std([1, 2, 3, 4, 5]) == 3
    assert gedeon.within_mean_std([]) == 0
    # [0, 1, 1, 3]: mean 1.25, population std 1.09 -> only the 1s; sample std 1.26 would add 0
    assert gedeon.within_mean_std([0, 1, 1, 3]) == 2
    rng = np.random.default_rng(3)
    v = rng.standard_normal(512)
    direct = int(np.sum(np.abs(v - v.mean()) <= v.std(ddof=0)))
    assert gedeon.within_mean_std(v) == direct
