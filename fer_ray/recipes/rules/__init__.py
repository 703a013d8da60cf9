"""Liu's rules ("A Robust Strategy for Facial Expression Recognition"): every
member's penultimate (pooled, 512-d) features of every image are exported, then per class a
depth-limited tree mimics the member's predictions; fidelity on the test split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from fer_ray.layout import SUMMARY, Ensemble, Export, Rules
from fer_ray.protocol import Stage, register
from fer_ray.recipes.core import MEMBERS

if TYPE_CHECKING:
    from fer_ray.config import Config

FEATURES = "member_features"  # export/members/member_XX/features.<format>

# the files each stage writes in its folder (fer_ray.protocol.Stage.files)
EXPORT_FILES = (f"{Export.MEMBERS_DIR}/{Ensemble.ANY_MEMBER}/{Export.features_file('*')}", SUMMARY)
RULES_FILES = (Rules.FIDELITY, Rules.SWEEP, Rules.RULES, Rules.RULES_TEXT, SUMMARY)


@dataclass(frozen=True)
class ExportConfig:
    """Every member's pooled features of every image, as a file per member."""

    enabled: bool = False  # a stage that reads the export (rules) turns it on too
    format: Literal["parquet", "csv"] = "parquet"

    def errors(self, cfg: Config) -> list[str]:
        return []


@dataclass(frozen=True)
class RulesConfig:
    """Per class, depth-limited trees on the exported features."""

    enabled: bool = False
    depths: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 6, 8])  # the depth sweep
    depth: int = 3  # the depth whose rules the report prints (Liu's have <= 3 conditions)
    members: list[int] | None = None  # ensemble members to explain; None = all

    def errors(self, cfg: Config) -> list[str]:
        checks = [
            (len(self.depths) >= 1, "rules.depths is empty: the sweep needs at least one depth"),
            (all(d >= 1 for d in self.depths), "rules.depths must be >= 1"),
            (self.depth in self.depths, "rules.depth must be one of rules.depths"),
            (
                self.members is None or all(0 <= m < cfg.ensemble.members for m in self.members),
                "rules.members must be ensemble member indices (0 .. ensemble.members - 1)",
            ),
        ]
        return [msg for ok, msg in checks if not ok]


register(
    Stage(
        "export",
        "fer_ray.recipes.rules.export:stage",
        keys=("export.format",),
        reads=(MEMBERS,),
        writes=(FEATURES,),
        files=EXPORT_FILES,
        enabled=lambda c: c.export.enabled,
    ),
    Stage(
        "rules",
        "fer_ray.recipes.rules.stage:stage",
        keys=("rules",),
        reads=(FEATURES,),
        files=RULES_FILES,
        enabled=lambda c: c.rules.enabled,
    ),
    sections={"export": ExportConfig, "rules": RulesConfig},
    report=[("rules", "fer_ray.recipes.rules.report", "architectures")],
)
