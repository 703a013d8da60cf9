"""Weight sources: ``model.weights`` is a registered name or a path to a state dict.

Knowing the source before any stage runs lets the driver fail at once on a missing file or an
unreachable hub, instead of inside a Ray task after preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fer_ray.errors import ModelError
from fer_ray.registry import Registry


@dataclass(frozen=True)
class WeightSource:
    description: str
    timm_pretrained: bool = False  # timm loads them (from its hub or local cache)
    stand_in: bool = False  # trained here before any trial (fer_ray.models.pretrain)


WEIGHTS: Registry[WeightSource] = Registry("weight source", "model.weights")
WEIGHTS.register("none", WeightSource("none (random init from model.init_seed)"))
WEIGHTS.register("imagenet", WeightSource("imagenet (timm pretrained)", timm_pretrained=True))
WEIGHTS.register(
    "synthetic",
    WeightSource(
        "synthetic stand-in: the backbone pretrained here on a disjoint synthetic set",
        stand_in=True,
    ),
)


def source(weights: str) -> WeightSource | None:
    """The registered source, or None when ``weights`` is a state-dict path."""
    return WEIGHTS.get(weights) if weights in WEIGHTS else None


def check(weights: str) -> None:
    """A name must be registered; anything else must be a readable file."""
    if weights in WEIGHTS:
        return
    path = Path(weights).expanduser()
    if not path.is_file():
        names = ", ".join(WEIGHTS.names())
        raise ModelError(
            f"model.weights={weights!r}: not one of {names}, and no such state-dict file"
        )
