"""Zhao et al.'s top-loss cleaning ("Deep Facial Expression Recognition Using ResNet34"):
out-of-fold losses of the training pool, the top-loss gallery, and members retrained without
the flagged items (and, with data.label_noise, without exactly the flipped ones: the oracle).
Reads the grid's choice, not the ensemble: its members are trained here, by the one member
trainer, with the ensemble's seeds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fer_ray.layout import SUMMARY, Clean, Ensemble
from fer_ray.protocol import Stage, register
from fer_ray.recipes.core import CHOSEN

if TYPE_CHECKING:
    from fer_ray.config import Config


# the files the stage writes in its folder (fer_ray.protocol.Stage.files)
FILES = (
    Clean.LOSSES, Clean.GALLERY, Clean.GALLERY_CROPS, SUMMARY,
    Clean.RETRAIN, Clean.VARIANTS, Clean.VOTES,  # clean.members > 0
    Ensemble.LR_FINDER, Ensemble.LR_FINDER_JSON,  # train.lr = auto
)  # fmt: skip


@dataclass(frozen=True)
class CleanConfig:
    """Top-loss flags and the retrained members."""

    enabled: bool = False
    folds: int = 5  # out-of-fold losses: each item scored by a model that never trained on it
    flag_fraction: float = 0.1  # flag this fraction of the pool with the largest losses
    gallery: int = 20  # top-loss images shown (Zhao et al.'s Fig. 5 shows 20)
    members: int = 3  # members retrained per variant (same seeds); 0 = flag only

    def errors(self, cfg: Config) -> list[str]:
        checks = [
            (self.folds >= 2, "clean.folds must be >= 2"),
            (0 < self.flag_fraction < 1, "clean.flag_fraction must be in (0, 1)"),
            (self.gallery >= 1, "clean.gallery must be >= 1"),
            (self.members >= 0, "clean.members must be >= 0"),
        ]
        return [msg for ok, msg in checks if not ok]


register(
    Stage(
        "clean",
        "fer_ray.recipes.clean.stage:stage",
        keys=(
            "clean",
            "ensemble.phase2_lr",
            "ensemble.phase2_epochs",
            "ensemble.val_fraction",
            "ensemble.selection",
            "statistics",
        ),
        reads=(CHOSEN,),
        files=FILES,
        enabled=lambda c: c.clean.enabled,
    ),  # fmt: skip
    sections={"clean": CleanConfig},
    report=[("clean", "fer_ray.recipes.clean.report", "architectures")],
)
