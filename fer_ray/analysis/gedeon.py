"""Gedeon magnitude and functional (distinctiveness) measures of a classifier head.

The head is ``hidden = ReLU(x @ w_hidden.T + b_hidden)``, ``logits = hidden @ w_out.T + b_out``
with weights in torch ``nn.Linear`` layout: ``w_hidden`` is (n_hidden, n_features) and
``w_out`` is (n_outputs, n_hidden).  The paper (sec. 2.3, 2.4) writes ``W_ij`` for the weight
from unit ``i`` of one layer to unit ``j`` of the next, i.e. ``W_ij == w_hidden[j, i]``.

Pure numpy; every function works in float64 whatever the input dtype.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "angle_matrix",
    "contribution_matrix",
    "feature_contributions",
    "mean_angles",
    "within_mean_std",
]


def _as_2d(name: str, w: ArrayLike) -> np.ndarray:
    arr = np.asarray(w, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _share_of_inputs(w: np.ndarray) -> np.ndarray:
    """Eq. (1): ``|w[j, i]| / sum_p |w[j, p]|`` returned transposed, as (n_inputs, n_units).

    A unit whose incoming weights are all zero gives 0/0.  We take it as a uniform share
    ``1 / n_inputs``: each column then still sums to 1, which keeps the invariant
    ``sum_i Q_ik == 1`` (so contributions sum to n_outputs), and it adds the same constant
    to every input, so rankings and mean - std thresholds relative to the mean are unaffected.
    """
    a = np.abs(w)  # (n_units, n_inputs)
    totals = a.sum(axis=1, keepdims=True)
    n_inputs = a.shape[1]
    share = np.divide(a, totals, out=np.full_like(a, 1.0 / n_inputs), where=totals > 0)
    return share.T


def contribution_matrix(w_hidden: ArrayLike, w_out: ArrayLike) -> np.ndarray:
    """Gedeon's input-to-output contribution ``Q`` (eq. 2), shape (n_features, n_outputs).

    ``P_ir`` (eq. 1) is feature i's share of the absolute input weights of hidden unit r and
    ``P_rk`` hidden unit r's share of the absolute weights into output k; ``Q_ik = sum_r
    P_ir P_rk``.  Absolute values avoid the cancellation of positive and negative weights.
    Each column of ``Q`` sums to 1.  Zero-weight units: see ``_share_of_inputs`` (uniform).
    """
    wh = _as_2d("w_hidden", w_hidden)
    wo = _as_2d("w_out", w_out)
    if wo.shape[1] != wh.shape[0]:
        raise ValueError(
            f"w_out has {wo.shape[1]} inputs but w_hidden has {wh.shape[0]} hidden units"
        )
    p_in_hidden = _share_of_inputs(wh)  # (F, H)
    p_hidden_out = _share_of_inputs(wo)  # (H, C)
    return p_in_hidden @ p_hidden_out


def feature_contributions(w_hidden: ArrayLike, w_out: ArrayLike) -> np.ndarray:
    """Contribution of each feature to the classification, ``sum_k Q_ik`` (sec. 2.3), (F,).

    The values sum to n_outputs, so their mean is n_outputs / n_features (7/512 = 0.0137,
    the mean of the paper's Fig. 2).
    """
    return contribution_matrix(w_hidden, w_out).sum(axis=1)


def angle_matrix(w_hidden: ArrayLike, absolute: bool = True) -> np.ndarray:
    """Pairwise angle in degrees between feature weight vectors (eq. 3), (F, F).

    Feature i's vector ``pattern_i(h)`` is its weights to all hidden units, column i of
    ``w_hidden``.  ``absolute=True`` uses ``|w|``: the paper's range of 40-51 degrees is only
    reachable with absolute weights (signed random-like weights give ~90 degrees).
    A zero-norm vector has no direction; its cosine with anything is taken as 0, i.e. 90
    degrees ("unrelated"), including to another zero vector.  The diagonal is exactly 0.
    Computed with one matrix product; the cosine is clipped to [-1, 1] before arccos.
    """
    wh = _as_2d("w_hidden", w_hidden)
    vecs = np.abs(wh) if absolute else wh  # (H, F): columns are the feature vectors
    norms = np.linalg.norm(vecs, axis=0)
    unit = np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)
    cos = np.clip(unit.T @ unit, -1.0, 1.0)
    angles = np.degrees(np.arccos(cos))
    np.fill_diagonal(angles, 0.0)
    return angles


def mean_angles(w_hidden: ArrayLike, absolute: bool = True) -> np.ndarray:
    """Mean angle in degrees from each feature to every *other* feature (sec. 2.4), (F,).

    The self-angle (0) is excluded, so the mean is over F - 1 partners.  Small values mean
    a feature is functionally similar to the rest (a pruning candidate, sec. 3.5).
    Needs at least 2 features.  Zero vectors: 90 degrees to everything, see ``angle_matrix``.
    """
    angles = angle_matrix(w_hidden, absolute=absolute)
    n = angles.shape[0]
    if n < 2:
        raise ValueError("mean_angles needs at least 2 features")
    return angles.sum(axis=1) / (n - 1)  # diagonal is 0


def within_mean_std(values: ArrayLike) -> int:
    """Number of values in ``[mean - std, mean + std]`` (the paper's 348 of 512, sec. 3.3).

    Uses the population std (ddof=0), the same convention as the pruning threshold
    ``mean - std``.  Bounds are inclusive, so a value exactly at ``mean - std`` is both
    "within" and kept by ``pruning.threshold_mask``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return 0
    mean = v.mean()
    std = v.std()
    return int(np.count_nonzero((v >= mean - std) & (v <= mean + std)))
