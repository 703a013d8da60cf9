"""A toy recipe, as another package would write one: a config section, a stage that reads the
ensemble's members and a report section, registered through the ``fer_ray.recipes``
entry-point group (the test installs it as a distribution on ``sys.path``). Nothing in
``fer_ray/`` names it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fer_ray.protocol import Stage, register
from fer_ray.recipes.core import MEMBERS

if TYPE_CHECKING:
    from fer_ray.config import Config

DIR = "toy"
SCORES = "scores.csv"  # per member: its test accuracy and that accuracy raised to ``power``


@dataclass(frozen=True)
class ToyConfig:
    enabled: bool = False
    power: int = 2
    order: Literal["member", "accuracy"] = "member"

    def errors(self, cfg: Config) -> list[str]:
        return [] if self.power >= 1 else ["toy.power must be >= 1"]


register(
    Stage(
        DIR,
        "tests.toy_recipe.stage:run",
        keys=("toy",),
        reads=(MEMBERS,),
        enabled=lambda c: c.toy.enabled,
    ),
    sections={"toy": ToyConfig},
    report=[("toy", "tests.toy_recipe.report", "nodes")],
)
