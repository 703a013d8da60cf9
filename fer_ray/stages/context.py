"""What a stage gets from the pipeline: the config, the run's paths, and shared inputs built
once per driver on first use (the prepared crops, a trial data bundle per trunk setting).

A stage after a search (``protocol.choices``) gets the config with the search's chosen config
keys set (``search.space``), so its members, analyses and trunk features are the chosen ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fer_ray import files
from fer_ray.config import Config, with_searched, with_values
from fer_ray.layout import RunPaths


@dataclass
class StageContext:
    cfg: Config
    paths: RunPaths
    resume: bool = False  # this stage continues an interrupted run of itself
    _shared: dict[str, Any] = field(default_factory=dict)

    def prepared(self, cfg: Config | None = None) -> Any:
        """The manifest and crops (``stages.prepare.Prepared``) of ``cfg`` (default: the
        stage's), from the crop cache: a searched ``faces.size`` has crops per size."""
        cfg = cfg or self.cfg
        key = ("prepared", repr((cfg.data, cfg.faces)))
        if key not in self._shared:
            from fer_ray.stages import prepare

            self._shared[key] = prepare.load_prepared(cfg)
        return self._shared[key]

    def set_prepared(self, prepared: Any) -> None:
        self._shared[("prepared", repr((self.cfg.data, self.cfg.faces)))] = prepared

    def trial_data(self, trunk: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """(object ref to the trial data bundle, facts about it), built once per driver for each
        trunk setting: the config's, or with ``trunk``'s keys set (a search over keys that
        change the crops or what the frozen trunk computes, ``search_space.TRUNK_SEARCHABLE``)."""
        cfg = with_values(self.cfg, trunk) if trunk else self.cfg
        key = ("trial_data", repr((cfg.faces, cfg.model, cfg.train.recipe)))
        if key not in self._shared:
            from fer_ray.stages import features

            self._shared[key] = features.build(cfg, self.prepared(cfg))
        return self._shared[key]

    def for_stage(self, resume: bool, choice: tuple[str, str] | None = None) -> StageContext:
        """The context of one stage; ``choice``: (an upstream search stage, its choice file),
        whose searched config keys the stage runs with."""
        cfg = self.cfg
        if choice is not None:
            path = self.paths.stage(choice[0]) / choice[1]
            cfg = with_searched(cfg, files.read_json(path)) if path.is_file() else cfg
        return StageContext(cfg, self.paths, resume, self._shared)
