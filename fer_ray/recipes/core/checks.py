"""The core stages' preflight hooks: fail in the driver, before Ray starts, on what would
otherwise fail inside a Ray task or hours in (the data's layout is checked when the run's
inputs are read)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from fer_ray.errors import ConfigError

if TYPE_CHECKING:
    from fer_ray.config import Config


def faces(cfg: Config, inputs: dict[str, Any]) -> None:
    """The face detector's library is installed and its model loads."""
    from fer_ray.faces import detectors

    detectors.get(cfg.faces.detector).factory()


def training(cfg: Config, inputs: dict[str, Any]) -> None:
    """The splits (enough groups for the folds, a grouped holdout) and the model (backbone,
    input size, freeze policy, weights file)."""
    from fer_ray import layout
    from fer_ray.data.splits import run_splits
    from fer_ray.models.backbones import check_input_size
    from fer_ray.models.factory import check_model

    run_splits(inputs["manifest"], cfg, layout.cache_root(cfg, "splits"), write=False)
    check_input_size(cfg.model.backbone, cfg.faces.size)
    check_model(cfg.model)
    if cfg.ensemble.backbones or cfg.grid.backbones:
        backbone_comparison(cfg)


def backbone_comparison(cfg: Config) -> None:
    """Members of several backbones share one data bundle, so it must hold pixels (trunk
    features and a stand-in's pretrained state are per backbone)."""
    from fer_ray.models import weights as weight_sources
    from fer_ray.models.backbones import check_input_size
    from fer_ray.models.factory import check_model
    from fer_ray.train.features import cache_applicable

    src = weight_sources.source(cfg.model.weights)
    if cache_applicable(cfg.model, cfg.train)[0] or (src is not None and src.stand_in):
        raise ConfigError(
            "grid.backbones / ensemble.backbones compare backbones on pixels: set"
            " model.feature_cache=off (or a"
            " random train.recipe, or model.train_last_convs=-1) and model.weights to imagenet,"
            " none or a path"
        )
    for b in (cfg.ensemble.backbones or []) + (cfg.grid.backbones or []):
        check_input_size(b, cfg.faces.size)
        check_model(dataclasses.replace(cfg.model, backbone=b))
