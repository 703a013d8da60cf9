"""Orozco et al.'s new faces ("Transfer learning for Facial Expression Recognition"): train on
data set A, test on data set B under one class map, as a train-on x test-on matrix beside the
within-data-set accuracy. Reads the grid's choice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fer_ray.layout import SUMMARY, Ensemble, NewFaces
from fer_ray.protocol import Stage, register
from fer_ray.recipes.core import CHOSEN

if TYPE_CHECKING:
    from fer_ray.config import Config


# the files the stage writes in its folder (fer_ray.protocol.Stage.files)
FILES = (
    NewFaces.DOMAINS, NewFaces.MATRIX, NewFaces.MEMBERS, NewFaces.CONFUSION, SUMMARY,
    f"{NewFaces.PREDICTIONS_DIR}/*.npz",  # <train>_<member>.npz
    f"*_{Ensemble.LR_FINDER}", f"*_{Ensemble.LR_FINDER_JSON}",  # train.lr = auto, per domain
)  # fmt: skip


@dataclass(frozen=True)
class NewFacesConfig:
    """Data set B and the trainings per data set."""

    enabled: bool = False
    other: str | None = None  # data set B (a data.name, e.g. jaffe); None: ckplus_jaffe → its
    # two halves (A = CK+, B = JAFFE), synthetic → another rendering (style, seed_offset)
    other_root: str | None = None  # data set B's folder (a real data set)
    members: int = 3  # trainings per training data set (seeds), each a Tune trial
    style: str = "studio"  # synthetic B: a fer_ray.data.synthetic.STYLES rendering style
    seed_offset: int = 1000  # synthetic B: generator seed = data.seed + this (new identities)
    n_subjects: int | None = None  # synthetic B: identities (None = data.n_subjects)

    def errors(self, cfg: Config) -> list[str]:
        checks = [
            (self.members >= 1, "newfaces.members must be >= 1"),
            (self.seed_offset != 0, "newfaces.seed_offset must not be 0 (B = A's faces)"),
            (self.n_subjects is None or self.n_subjects >= 2, "newfaces.n_subjects must be >= 2"),
        ]
        return [msg for ok, msg in checks if not ok]


register(
    Stage(
        "newfaces",
        "fer_ray.recipes.newfaces.stage:stage",
        keys=(
            "newfaces",
            "ensemble.test_fraction",
            "ensemble.val_fraction",
            "ensemble.phase2_lr",
            "ensemble.phase2_epochs",
            "statistics",
        ),
        reads=(CHOSEN,),
        files=FILES,
        enabled=lambda c: c.newfaces.enabled,
    ),  # fmt: skip
    sections={"newfaces": NewFacesConfig},
    report=[("newfaces", "fer_ray.recipes.newfaces.report", "nodes")],
)
