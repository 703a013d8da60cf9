"""Dai's descriptor baseline ("Facial Expression Analysis based on Transfer Learning and
Feature Analysis"): a 10-50-7 net on SFEW.xlsx's LPQ/PHOG columns, its Gedeon
magnitudes, angles and pair elimination. Reads no other stage's results: a new grid does not
retrain it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fer_ray.layout import SUMMARY, Descriptors
from fer_ray.protocol import Stage, register

if TYPE_CHECKING:
    from fer_ray.config import Config


# the files the stage writes in its folder (fer_ray.protocol.Stage.files)
FILES = (
    Descriptors.ROWS, Descriptors.FOLDS, Descriptors.MAGNITUDE_MODELS, Descriptors.ANGLES_MODELS,
    Descriptors.TABLE1, Descriptors.ANGLES, Descriptors.PAIRS, SUMMARY,
)  # fmt: skip


@dataclass(frozen=True)
class DescriptorsConfig:
    """The descriptor sheet and the small net trained on it (sfew_subset)."""

    enabled: bool = False
    path: str | None = None  # the descriptor sheet; None = <data.root>/SFEW.xlsx
    hidden: int = 50
    folds: int = 5  # grouped by movie
    repeats: int = 3  # CV repetitions with different seeds (more models to average)
    lr: float = 0.01
    epochs: int = 200
    batch_size: int = 32

    def errors(self, cfg: Config) -> list[str]:
        checks = [
            (self.lr > 0, "descriptors.lr must be > 0"),
            (self.batch_size >= 1, "descriptors.batch_size must be >= 1"),
            (self.folds >= 2, "descriptors.folds must be >= 2"),
            (self.repeats >= 1, "descriptors.repeats must be >= 1"),
            (self.hidden >= 1, "descriptors.hidden must be >= 1"),
            (self.epochs >= 1, "descriptors.epochs must be >= 1"),
        ]
        return [msg for ok, msg in checks if not ok]


register(
    Stage(
        "descriptors",
        "fer_ray.recipes.descriptors.stage:stage",
        keys=("seed", "data", "descriptors", "analyse.absolute_angles"),
        files=FILES,
        enabled=lambda c: c.descriptors.enabled,
        data_files=True,
        identity="fer_ray.recipes.descriptors.checks:sheet_identity",
        preflight="fer_ray.recipes.descriptors.checks:sheet",
    ),
    sections={"descriptors": DescriptorsConfig},
    report=[("descriptors", "fer_ray.recipes.descriptors.report", "architectures")],
)
