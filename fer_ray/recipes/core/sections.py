"""The config sections of the core recipe's stages (grid, search, ensemble, analyse): each
section's keys and its own checks (``errors``), next to the stages that read them.
``fer_ray.config`` re-exports them beside the sections every stage shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from fer_ray.config_checks import relative_lr_ok, search_error

if TYPE_CHECKING:
    from fer_ray.config import Config


@dataclass(frozen=True)
class GridConfig:
    folds: int = 5
    lr: list[float] = field(default_factory=lambda: [0.005, 0.001, 0.0005])
    hidden: list[int] = field(default_factory=lambda: [100, 200, 300])
    backbones: list[str] | None = None  # search these architectures too (seed 002): the grid
    # crosses them with lr, hidden and folds; the choice then includes the backbone
    choose: Literal["best", "paper"] = "best"  # best: the best mean over folds (ties: simpler)
    # | paper: the paper's own pick below (seed 000 took lr 0.005 / hidden 100 from a flat
    # Table 2); both reported
    paper_lr: float = 0.005
    paper_hidden: int = 100

    def errors(self, cfg: Config) -> list[str]:
        checks = [
            (self.folds >= 2, "grid.folds must be >= 2"),
            (
                self.choose != "paper"
                or (self.paper_lr in self.lr and self.paper_hidden in self.hidden),
                "grid.choose=paper: grid.paper_lr and grid.paper_hidden must be in the grid",
            ),
            (len(self.lr) >= 1, "grid.lr is empty: the search space needs at least one value"),
            (all(x > 0 for x in self.lr), "grid.lr must be > 0"),
            (len(self.hidden) >= 1, "grid.hidden is empty: the search space needs one value"),
            (all(h > 0 for h in self.hidden), "grid.hidden must be > 0"),
        ]
        return [msg for ok, msg in checks if not ok]


@dataclass(frozen=True)
class SearchConfig:
    """How the ensemble's (lr, hidden) is found: the paper's grid, or any Ray Tune searcher."""

    algorithm: str = "grid"  # grid (seed 000's protocol) | a Ray Tune searcher: random, optuna,
    # hyperopt, bohb, bayesopt, ax, nevergrad, hebo, zoopt (ray.tune.search.create_searcher)
    options: dict[str, Any] | None = None  # searcher keywords (optuna: also TPESampler's)
    trials: int | None = None  # searcher proposals; None = as many as the grid has cells
    lr_range: list[float] = field(default_factory=lambda: [0.0005, 0.005])  # log-uniform
    hidden_range: list[int] = field(default_factory=lambda: [100, 300])  # integer, inclusive
    hidden_choices: list[int] | None = None  # categorical instead of hidden_range
    scheduler: str = "none"  # none | fifo | a Ray Tune scheduler (async_hyperband alias asha,
    # median_stopping_rule, hyperband, hb_bohb) on folds_done: stops poor proposals early
    scheduler_options: dict[str, Any] | None = None  # the scheduler's keywords
    compare_grid: bool = False  # with a searcher: also run the grid, same data, report both
    metrics: dict[str, str] | None = None  # several objectives, e.g. {val_acc: max,
    # trainable_params: min} (or ms_per_image: min): optuna's multi-objective TPE (or random)
    # searches them, the report shows the Pareto front; None = {val_acc: max}
    space: dict[str, Any] | None = None  # fer_ray.search_space: {dotted key: {choice | grid |
    # uniform | loguniform | randint | qrandint: [...]}}; lr/hidden absent = the grid's values
    # (algorithm grid) or lr_range/hidden_range (a searcher)

    def errors(self, cfg: Config) -> list[str]:
        """The searcher, scheduler and objectives (``config_checks.search_error``: Ray Tune's
        names, with a did-you-mean), then the ranges; ``space`` is checked by the loader
        (``fer_ray.search_space.errors``), once every section has passed."""
        lr, hidden = self.lr_range, self.hidden_range
        checks = [
            (
                len(lr) == 2 and 0 < lr[0] < lr[1],
                "search.lr_range must be [low, high] with 0 < low < high",
            ),
            (
                len(hidden) == 2 and 1 <= hidden[0] <= hidden[1],
                "search.hidden_range must be [low, high] with 1 <= low <= high",
            ),
            (self.trials is None or self.trials >= 1, "search.trials must be >= 1"),
        ]
        why = search_error(self)
        return [why] * (why is not None) + [msg for ok, msg in checks if not ok]


@dataclass(frozen=True)
class EnsembleConfig:
    members: int = 15
    phase2_lr: float | str = "x0.2"  # a number, or "x<f>": f times the chosen lr (seed 000:
    # "a much smaller learning rate, being 0.001" after 0.005, i.e. x0.2)
    phase2_epochs: int = 2  # validation accuracy levels off after phase 2's first epoch
    test_fraction: float = (
        0.15  # grouped holdout, shared by every member (and excluded from the grid)
    )
    val_fraction: float = 0.2  # of the rest, grouped, drawn per member seed
    selection: Literal["val", "test"] = "val"  # val (honest) | test (seed 000's protocol;
    # labelled in the report)
    backbones: list[str] | None = None  # seed 002: train the members with each of these
    # backbones on the same splits and compare them on the test set (one Tune run)
    holdout_repeats: int = 1  # > 1: repeat the ensemble on other grouped test holdouts, to
    # separate holdout-to-holdout spread from member-to-member spread (repeat 0 is analysed)

    def errors(self, cfg: Config) -> list[str]:
        checks = [
            (relative_lr_ok(self.phase2_lr), "ensemble.phase2_lr must be > 0 or 'x<f>'"),
            (self.holdout_repeats >= 1, "ensemble.holdout_repeats must be >= 1"),
            (
                self.holdout_repeats == 1 or cfg.data.test_split is None,
                "ensemble.holdout_repeats > 1 needs grouped holdouts; data.test_split fixes one",
            ),
            (self.members >= 1, "ensemble.members must be >= 1"),
            (0 < self.test_fraction < 0.5, "ensemble.test_fraction must be in (0, 0.5)"),
            (0 < self.val_fraction < 0.5, "ensemble.val_fraction must be in (0, 0.5)"),
            (self.phase2_epochs >= 0, "ensemble.phase2_epochs must be >= 0"),
        ]
        return [msg for ok, msg in checks if not ok]


@dataclass(frozen=True)
class AnalyseConfig:
    enabled: bool = True
    absolute_angles: bool = True  # seed 000's 40-51 degree angles need absolute weights
    sweep_draws: int = 5  # random draws per pruning ratio

    def errors(self, cfg: Config) -> list[str]:
        return [] if self.sweep_draws >= 1 else ["analyse.sweep_draws must be >= 1"]
