"""Zhu et al.'s deconvolution and Action Unit <-> map analysis ("Facial Expression Recognition
Research Based on Deep Learning") of the ensemble's members: top-k images and deconvolutions
of every map of the backbone's third conv layer, the eq. 13 distance per (map, AU) and, on
synthetic faces, the region check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fer_ray.layout import SUMMARY, AuMaps, Ensemble
from fer_ray.protocol import Stage, register
from fer_ray.recipes.core import MEMBERS

if TYPE_CHECKING:
    from fer_ray.config import Config


# the files the stage writes in its folder (fer_ray.protocol.Stage.files)
FILES = (
    AuMaps.MAPS, AuMaps.DISTANCES, AuMaps.TOP, SUMMARY,
    f"{AuMaps.PANELS_DIR}/{Ensemble.ANY_MEMBER}/*_map*.png",  # AuMaps.panel(member, unit, map)
)  # fmt: skip


@dataclass(frozen=True)
class AuMapsConfig:
    """Which maps, images and ranks; the region check's baseline."""

    enabled: bool = False
    unit: str | None = None  # the layer whose maps are read; None = the backbone's map_unit
    top_k: int = 9  # images per map (Zhu et al.: the first nine)
    n: int = 9  # ranks in the eq. 13 distance (Zhu et al.: n = 9)
    images: Literal["train", "all"] = "train"  # train: "all the training pictures"
    panels: Literal["all", "best"] = "all"  # all: a grid per map | best: the AUs' best maps
    shuffles: int = 100  # shuffled-AU baseline draws of the region check
    rule: Literal["centre", "overlap"] = "centre"  # region hit: receptive-field centre inside
    members: int = 0  # members analysed, in member order (0 = all)
    min_intensity: float = 0.0  # an AU counts as present above this intensity

    def errors(self, cfg: Config) -> list[str]:
        checks = [
            (self.top_k >= 1 and self.n >= 1, "aumaps.top_k and aumaps.n must be >= 1"),
            (self.shuffles >= 0, "aumaps.shuffles must be >= 0"),
            (self.members >= 0, "aumaps.members must be >= 0 (0 = all)"),
        ]
        return [msg for ok, msg in checks if not ok]


register(
    Stage(
        "aumaps",
        "fer_ray.recipes.aumaps.stage:stage",
        keys=("aumaps",),
        reads=(MEMBERS,),
        files=FILES,
        enabled=lambda c: c.aumaps.enabled,
    ),
    sections={"aumaps": AuMapsConfig},
    report=[("aumaps", "fer_ray.recipes.aumaps.report", "nodes")],
)
