"""Feature-pruning experiments on the classifier head (paper sec. 2.5 and 3.5).

Pruning a feature means removing its input weights to the hidden layer, which for a
linear first layer is the same as feeding 0 for it; the biases stay.  Everything runs on
pre-extracted pooled CNN features, so a whole sweep is a handful of small matrix products.
Pure numpy/pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from fer_ray.analysis import gedeon
from fer_ray.models.head import HEAD_ACTIVATIONS

__all__ = [
    "HeadWeights",
    "accuracy",
    "default_ratios",
    "falloff_fixed_sequence",
    "head_logits",
    "prune_threshold",
    "pruning_baselines",
    "ratio_sweep",
    "smallest_kept_within",
    "threshold_mask",
]

SweepOrder = Literal["random", "magnitude", "angle"]


@dataclass(frozen=True)
class HeadWeights:
    """Weights of ``logits = ReLU(x @ w_hidden.T + b_hidden) @ w_out.T + b_out``.

    torch ``nn.Linear`` layout: ``w_hidden`` (H, F), ``b_hidden`` (H,), ``w_out`` (C, H),
    ``b_out`` (C,).  Arrays are converted to float64 and shapes checked on construction.
    """

    w_hidden: np.ndarray
    b_hidden: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    activation: str = "relu"  # the head's hidden activation: relu | sigmoid | tanh

    def __post_init__(self) -> None:
        HEAD_ACTIVATIONS.check(self.activation)
        for name in ("w_hidden", "b_hidden", "w_out", "b_out"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        if self.w_hidden.ndim != 2 or self.w_out.ndim != 2:
            raise ValueError("w_hidden and w_out must be 2-D")
        h, f = self.w_hidden.shape
        c = self.w_out.shape[0]
        if self.b_hidden.shape != (h,) or self.w_out.shape != (c, h) or self.b_out.shape != (c,):
            raise ValueError(
                "inconsistent head shapes: "
                f"w_hidden {self.w_hidden.shape}, b_hidden {self.b_hidden.shape}, "
                f"w_out {self.w_out.shape}, b_out {self.b_out.shape}"
            )
        if f < 1:
            raise ValueError("head needs at least one input feature")

    @property
    def n_features(self) -> int:
        return int(self.w_hidden.shape[1])

    @property
    def n_hidden(self) -> int:
        return int(self.w_hidden.shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.w_out.shape[0])


def _check_keep(keep: ArrayLike | None, n_features: int) -> np.ndarray | None:
    if keep is None:
        return None
    mask = np.asarray(keep)
    if mask.dtype != np.bool_ or mask.shape != (n_features,):
        raise ValueError(f"keep must be a bool mask of shape ({n_features},)")
    return mask


def head_logits(
    features: ArrayLike, head: HeadWeights, keep: ArrayLike | None = None
) -> np.ndarray:
    """Logits (N, C) of the head on ``features`` (N, F) with features ``~keep`` pruned.

    Pruned features are dropped from the first matrix product, exactly equivalent to
    zeroing them or their input weights (sec. 2.5).  With every feature pruned the logits
    are ``ReLU(b_hidden) @ w_out.T + b_out`` for every sample: a constant prediction.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != head.n_features:
        raise ValueError(f"features must be (N, {head.n_features}), got {x.shape}")
    mask = _check_keep(keep, head.n_features)
    cols = slice(None) if mask is None else mask
    pre = x[:, cols] @ head.w_hidden[:, cols].T
    hidden = HEAD_ACTIVATIONS.get(head.activation).numpy(pre + head.b_hidden)
    return hidden @ head.w_out.T + head.b_out


def correct(
    features: ArrayLike, labels: ArrayLike, head: HeadWeights, keep: ArrayLike | None = None
) -> np.ndarray:
    """Per sample: is the argmax logit (ties: lowest index) the label?"""
    y = np.asarray(labels).ravel()
    preds = head_logits(features, head, keep).argmax(axis=1)
    if preds.shape[0] != y.shape[0]:
        raise ValueError(f"{preds.shape[0]} feature rows but {y.shape[0]} labels")
    if y.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return preds == y


def accuracy(
    features: ArrayLike, labels: ArrayLike, head: HeadWeights, keep: ArrayLike | None = None
) -> float:
    """Fraction (0-1) of samples whose argmax logit equals the label (ties: lowest index)."""
    return float(np.mean(correct(features, labels, head, keep)))


def bits(mask: np.ndarray) -> str:
    """A boolean per sample as a compact "0101..." string (JSON task results stay small)."""
    return "".join("1" if b else "0" for b in np.asarray(mask, bool))


def unbits(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")


def pair_elimination(feats: ArrayLike, labels: ArrayLike, head: HeadWeights) -> np.ndarray:
    """Accuracy with each pair of inputs eliminated (seed 000's Fig. 1b).

    Entry (i, j) is the accuracy with inputs i and j removed; the diagonal (i, i) has input
    i removed alone. Symmetric, shape (n_features, n_features).
    """
    n = head.n_features
    acc = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            keep = np.ones(n, dtype=bool)
            keep[[i, j]] = False
            acc[i, j] = acc[j, i] = accuracy(feats, labels, head, keep=keep)
    return acc


def prune_threshold(scores: ArrayLike) -> float:
    """The paper's pruning threshold ``mean - std`` (population std, ddof=0; sec. 3.5)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("no scores")
    return float(s.mean() - s.std())


def threshold_mask(scores: ArrayLike) -> np.ndarray:
    """Keep mask: features with ``score < mean - std`` are pruned (False), the rest kept.

    A score exactly at the threshold is kept (consistent with ``gedeon.within_mean_std``).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    return s >= prune_threshold(s)


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _random_keep(n_features: int, n_pruned: int, rng: np.random.Generator) -> np.ndarray:
    keep = np.ones(n_features, dtype=bool)
    keep[rng.choice(n_features, size=n_pruned, replace=False)] = False
    return keep


def pruning_baselines(
    features: ArrayLike,
    labels: ArrayLike,
    head: HeadWeights,
    *,
    absolute_angles: bool = True,
    rng: np.random.Generator | int | None = None,
) -> dict[str, dict[str, float | int | None]]:
    """The three pruning baselines of sec. 3.5 plus the unpruned reference (Fig. 4).

    Returns ``{name: {"n_pruned", "accuracy", "correct", "threshold"}}`` (``correct``: per
    sample, as ``bits``, for paired intervals) for
    ``"none"`` (nothing pruned, threshold None), ``"magnitude"`` (Gedeon contribution,
    eq. 2, below mean - std), ``"angle"`` (mean angle to the other features, eq. 3, below
    mean - std) and ``"random"`` (as many random features as ``"magnitude"`` prunes,
    threshold None).  The paper prunes 77 (15 %) random features; matching the magnitude
    count instead makes the random control exactly comparable.
    """
    gen = _as_rng(rng)
    contrib = gedeon.feature_contributions(head.w_hidden, head.w_out)
    angles = gedeon.mean_angles(head.w_hidden, absolute=absolute_angles)

    def scored(keep: np.ndarray | None) -> dict[str, Any]:
        right = correct(features, labels, head, keep)
        return {"accuracy": float(right.mean()), "correct": bits(right)}

    out: dict[str, dict[str, Any]] = {"none": {"n_pruned": 0, **scored(None), "threshold": None}}
    n_pruned: dict[str, int] = {}
    for name, scores in (("magnitude", contrib), ("angle", angles)):
        keep = threshold_mask(scores)
        n_pruned[name] = int(np.count_nonzero(~keep))
        out[name] = {
            "n_pruned": n_pruned[name],
            **scored(keep),
            "threshold": prune_threshold(scores),
        }
    n_random = n_pruned["magnitude"]
    keep = _random_keep(head.n_features, n_random, gen)
    out["random"] = {"n_pruned": n_random, **scored(keep), "threshold": None}
    return out


def default_ratios() -> np.ndarray:
    """Pruning ratios 0.00-0.80 step 0.05, then 0.85-0.99 step 0.01 (Fig. 5); 32 values."""
    coarse = np.linspace(0.0, 0.80, 17)
    fine = np.linspace(0.85, 0.99, 15)
    return np.unique(np.round(np.concatenate([coarse, fine]), 2))


def ratio_sweep(
    features: ArrayLike,
    labels: ArrayLike,
    head: HeadWeights,
    ratios: ArrayLike,
    draws: int,
    rng: np.random.Generator | int | None,
    order: SweepOrder = "random",
    *,
    absolute_angles: bool = True,
) -> pd.DataFrame:
    """Accuracy against the fraction of pruned features (Fig. 5).

    ``n_pruned = round(ratio * F)`` (round half to even).  ``order="random"``: ``draws``
    independent random subsets per ratio (rng used).  ``order="magnitude"``: prune the
    features with the smallest Gedeon contribution first; ``order="angle"``: smallest mean
    angle (most redundant) first.  Ranked orders are deterministic, give a single draw
    (draw=0) per ratio and break ties by feature index (stable sort).  Columns:
    ratio, draw, n_pruned, n_kept, accuracy, correct (per sample, as ``bits``); one row per
    (ratio, draw), in input order.
    """
    r = np.asarray(ratios, dtype=np.float64).ravel()
    if np.any((r < 0) | (r > 1)) or not np.all(np.isfinite(r)):
        raise ValueError("ratios must lie in [0, 1]")
    if order not in ("random", "magnitude", "angle"):
        raise ValueError(f"unknown order {order!r}")
    n_features = head.n_features
    if order == "random":
        if draws < 1:
            raise ValueError("draws must be >= 1")
        gen = _as_rng(rng)
        ranking = None
        n_draws = int(draws)
    else:
        if order == "magnitude":
            scores = gedeon.feature_contributions(head.w_hidden, head.w_out)
        else:
            scores = gedeon.mean_angles(head.w_hidden, absolute=absolute_angles)
        ranking = np.argsort(scores, kind="stable")  # least important first
        n_draws = 1
    rows = []
    for ratio in r:
        n_pruned = int(round(float(ratio) * n_features))
        for draw in range(n_draws):
            if ranking is None:
                keep = _random_keep(n_features, n_pruned, gen)
            else:
                keep = np.ones(n_features, dtype=bool)
                keep[ranking[:n_pruned]] = False
            right = correct(features, labels, head, keep)
            rows.append(
                {
                    "ratio": float(ratio),
                    "draw": draw,
                    "n_pruned": n_pruned,
                    "n_kept": n_features - n_pruned,
                    "accuracy": float(right.mean()),
                    "correct": bits(right),
                }
            )
    cols = ["ratio", "draw", "n_pruned", "n_kept", "accuracy", "correct"]
    return pd.DataFrame(rows, columns=cols)


def smallest_kept_within(
    sweep_df: pd.DataFrame, baseline_acc: float, tolerance: float = 0.01
) -> int:
    """Fewest kept features before the sweep's accuracy first leaves the tolerance band.

    Accuracy is averaged over draws per ``n_kept``.  Walking from the most kept features
    downwards, a level passes if its mean accuracy is ``>= baseline_acc - tolerance``
    (accuracies and tolerance as fractions: 0.01 = one percentage point, 1e-12 slack for
    float noise).  Returns the smallest ``n_kept`` such that it and every larger level
    pass, so an isolated lucky level below the first failure does not count (this is the
    paper's "works with only 25 features" reading of Fig. 5).  Raises ValueError if the
    level with the most kept features already fails, or the frame is empty.
    """
    if sweep_df.empty:
        raise ValueError("empty sweep")
    means = sweep_df.groupby("n_kept")["accuracy"].mean().sort_index(ascending=False)
    floor = baseline_acc - tolerance - 1e-12
    passing = means.to_numpy() >= floor
    if not passing[0]:
        raise ValueError(
            f"accuracy {means.iloc[0]:.4f} at n_kept={means.index[0]} is already below "
            f"{baseline_acc} - {tolerance}"
        )
    first_fail = int(np.argmin(passing)) if not passing.all() else len(passing)
    return int(means.index[first_fail - 1])


def falloff_fixed_sequence(falloff: pd.DataFrame, significant: str = "significant") -> int | None:
    """Where the sweep's accuracy falls off, by a rule that survives testing many counts.

    ``falloff`` has one row per kept count (``n_kept``, ``ratio``, and a bool column
    ``significant``: the paired interval against unpruned lies below 0). Walking from the most
    pruned count towards unpruned and stopping at the first count that is not significant
    (a fixed-sequence test, order fixed before looking), the answer is the largest kept count
    reached: it and every smaller count are significantly below unpruned. Each test is
    one-sided at 2.5 % (the top of a 95 % interval), and in a fixed sequence the chance of any
    false call is at most that 2.5 %, however many counts the sweep has. Taking instead the
    largest count that is significant on its own would pick the luckiest of all counts: with
    31 counts and no loss anywhere, about 31 x 0.025 = 0.8 would pass by chance. ``None`` when
    the most pruned count is already not significant. Unpruned (ratio 0) rows are ignored.
    """
    pruned = falloff[falloff["ratio"] > 0].sort_values("n_kept")
    sig = pruned[significant].astype(bool).to_numpy()
    if not len(sig) or not sig[0]:
        return None
    reached = len(sig) if sig.all() else int(np.argmin(sig))
    return int(pruned["n_kept"].iloc[reached - 1])
