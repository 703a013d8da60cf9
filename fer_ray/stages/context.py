"""What a stage gets from the pipeline: the config, the run's paths, and shared inputs built
once per driver on first use (the prepared crops, the trial data bundle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fer_ray.config import Config
from fer_ray.layout import RunPaths


@dataclass
class StageContext:
    cfg: Config
    paths: RunPaths
    resume: bool = False  # this stage continues an interrupted run of itself
    _shared: dict[str, Any] = field(default_factory=dict)

    def prepared(self) -> Any:
        """The manifest and crops (``stages.prepare.Prepared``), from the crop cache."""
        if "prepared" not in self._shared:
            from fer_ray.stages import prepare

            self._shared["prepared"] = prepare.load_prepared(self.cfg)
        return self._shared["prepared"]

    def set_prepared(self, prepared: Any) -> None:
        self._shared["prepared"] = prepared

    def trial_data(self) -> tuple[Any, dict[str, Any]]:
        """(object ref to the trial data bundle, facts about it), built once per driver."""
        if "trial_data" not in self._shared:
            from fer_ray.stages import features

            self._shared["trial_data"] = features.build(self.cfg, self.prepared())
        return self._shared["trial_data"]

    def for_stage(self, resume: bool) -> StageContext:
        return StageContext(self.cfg, self.paths, resume, self._shared)
