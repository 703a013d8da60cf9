"""Per-model analyses by name: what one Ray task computes on one trained model.

Each analysis reads a model's head weights and the features and labels of the items it is
analysed on, and returns a JSON-serialisable dict (stored per task, so an interrupted stage
redoes only missing tasks). Adding an analysis is one function here (or in its own module)
plus one ``ANALYSES.register`` line: the ``analyse`` stage runs every entry of ``ANALYSES`` on
every ensemble member. ``ON_REQUEST`` holds the analyses too costly for that (``pairs`` is
quadratic in the features), which only a recipe stage that names them runs (``descriptors``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_ray.analysis import gedeon, pruning
from fer_ray.registry import Registry


@dataclass(frozen=True)
class ModelData:
    """One model's head and the items it is analysed on (pooled features, labels)."""

    head: pruning.HeadWeights
    features: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Settings:
    absolute_angles: bool = True  # seed 000's 40-51 degree angles need absolute weights
    sweep_draws: int = 5  # random draws per pruning ratio


Analysis = Callable[[ModelData, Settings, int], dict[str, Any]]
ANALYSES: Registry[Analysis] = Registry("per-model analysis", "analyse")
ON_REQUEST: Registry[Analysis] = Registry("per-model analysis run on request", "analyse")


@ANALYSES.register("magnitude", help="Gedeon contribution per feature (Table 1, Fig. 2)")
def magnitude(m: ModelData, s: Settings, seed: int) -> dict[str, Any]:
    values = gedeon.feature_contributions(m.head.w_hidden, m.head.w_out)
    return {"values": values.tolist(), "sum": float(values.sum())}


@ANALYSES.register("angles", help="mean distinctiveness angle per feature (Fig. 1a, Fig. 3)")
def angles(m: ModelData, s: Settings, seed: int) -> dict[str, Any]:
    mat = gedeon.angle_matrix(m.head.w_hidden, absolute=s.absolute_angles)
    off = mat[~np.eye(len(mat), dtype=bool)]
    return {
        "values": gedeon.mean_angles(m.head.w_hidden, absolute=s.absolute_angles).tolist(),
        "min_pair": float(off.min()),
        "max_pair": float(off.max()),
    }


@ANALYSES.register("baselines", help="pruning by magnitude / angle / random at mean - std")
def baselines(m: ModelData, s: Settings, seed: int) -> dict[str, Any]:
    return pruning.pruning_baselines(
        m.features, m.labels, m.head, absolute_angles=s.absolute_angles, rng=seed
    )


def _sweep(order: str) -> Analysis:
    def sweep(m: ModelData, s: Settings, seed: int) -> dict[str, Any]:
        df = pruning.ratio_sweep(
            m.features, m.labels, m.head, pruning.default_ratios(), s.sweep_draws, seed, order=order
        )
        return {"rows": df.to_dict("records")}

    sweep.__doc__ = f"accuracy against pruning ratio, {order} order (Fig. 5)"
    return sweep


ANALYSES.register("sweep_random", _sweep("random"), help="pruning-ratio sweep, random order")
ANALYSES.register(
    "sweep_magnitude", _sweep("magnitude"), help="pruning-ratio sweep, least magnitude first"
)


@ANALYSES.register("metrics", help="predictions for the confusion matrix and per-class recall")
def predictions(m: ModelData, s: Settings, seed: int) -> dict[str, Any]:
    preds = pruning.head_logits(m.features, m.head).argmax(1)
    return {"preds": preds.tolist(), "labels": np.asarray(m.labels).tolist()}


@ON_REQUEST.register("pairs", help="accuracy with inputs eliminated in pairs (Fig. 1b)")
def pairs(m: ModelData, s: Settings, seed: int) -> dict[str, Any]:
    return {
        "full": pruning.accuracy(m.features, m.labels, m.head),
        "matrix": pruning.pair_elimination(m.features, m.labels, m.head).tolist(),
    }


def run(name: str, model: ModelData, settings: Settings, seed: int) -> dict[str, Any]:
    """Run the analysis registered as ``name`` (in ``ANALYSES`` or ``ON_REQUEST``) on one
    model."""
    registry = ON_REQUEST if name in ON_REQUEST else ANALYSES
    return registry.get(name)(model, settings, seed)
