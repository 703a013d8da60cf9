"""The run directory's layout: stage folders and file names, in one place.

The stage that writes a file and the report section that reads it both name it through these
constants, so a rename cannot leave a reader behind. Ray-free: the report imports it.

``runs/<name>/`` holds ``config.yaml``, ``run.json`` and one folder per stage; a stage is
complete only when its ``done.json`` exists (written last).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fer_ray.config import Config

CONFIG = "config.yaml"
RUN_INFO = "run.json"
DONE = "done.json"
STARTED = "started.json"
TASKS = "tasks"  # per-task results of a Ray fan-out, one file each
SUMMARY = "summary.json"  # every stage's headline facts
DEPARTURES = "departures.json"  # run root: how this run departs from its seed paper, and why
ERRORS = "errors.json"  # a Tune stage: the trials that failed after their retries, and why
WORK = "work.csv"  # every stage: one row per trial or task (unit, node_id, node_ip, seconds)


class Prepare:
    DIR = "prepare"
    MANIFEST = "manifest.csv"
    UNREADABLE = "unreadable.txt"  # every image that failed to decode, one path per line


class Grid:
    DIR = "grid"
    FEATURES = "features.json"  # facts about the trial data bundle (weights, feature cache)
    TRIALS = "trials.csv"
    CURVES = "curves.csv"
    TABLE2 = "table2.csv"
    CHOSEN = "chosen.json"
    SPLITS = "splits.csv"  # per item: label, group, grid fold (-1: the shared test holdout)
    OOF = "oof.csv"  # per cell and validation item: the last epoch's prediction


class Ensemble:
    DIR = "ensemble"
    MEMBERS_DIR = "members"
    REPEATS_DIR = "repeats"  # ensemble.holdout_repeats > 1: the other holdouts' members
    HOLDOUTS = "holdouts.csv"  # per holdout repeat: member mean and std, vote accuracy
    MEMBER = "member.npz"  # per member: indices, probabilities, head weights, pooled features
    MODEL = "model.pt"  # per member: the trained module's state dict
    MEMBERS = "members.csv"
    CURVES = "curves.csv"
    VOTE = "vote.npz"
    SIZE_CURVE = "size_curve.csv"  # soft vote's accuracy, NLL, ECE against member count

    @staticmethod
    def member_dir(member: int) -> str:
        return f"member_{member:02d}"


class Analyse:
    DIR = "analyse"
    MAGNITUDE = "magnitude.csv"
    ANGLES = "angles.csv"
    BASELINES = "baselines.csv"
    SWEEP = "sweep.csv"
    PER_CLASS = "per_class.csv"
    CONFUSION_VOTE = "confusion_vote.csv"
    CONFUSION_MEMBERS = "confusion_members_mean.csv"
    PRUNING_INTERVALS = "pruning_intervals.csv"  # per rule: accuracy and paired diff, intervals
    SWEEP_FALLOFF = "sweep_falloff.csv"  # per kept count: paired diff to unpruned, interval
    VOTE_RECALL = "vote_recall.csv"  # per class: the vote's recall with its interval


class Descriptors:
    DIR = "descriptors"
    INPUTS = "inputs.json"  # under tasks/: what the stored tasks were computed from
    ROWS = "rows.csv"
    FOLDS = "folds.csv"
    MAGNITUDE_MODELS = "magnitude_models.csv"
    ANGLES_MODELS = "angles_models.csv"
    TABLE1 = "table1_magnitude.csv"
    ANGLES = "angles.csv"
    PAIRS = "pairs.csv"


STAGE_DIRS = (Prepare.DIR, Grid.DIR, Ensemble.DIR, Analyse.DIR, Descriptors.DIR)


@dataclass(frozen=True)
class RunPaths:
    """Where one run's files live: ``root`` = ``<output.runs_dir>/<name>``."""

    root: Path
    storage_path: str | None = None  # output.storage_path: Tune storage shared by the cluster
    name: str = ""

    @classmethod
    def of(cls, cfg: Config) -> RunPaths:
        return cls(
            Path(cfg.output.runs_dir).resolve() / cfg.name, cfg.output.storage_path, cfg.name
        )

    def stage(self, name: str) -> Path:
        return self.root / name

    def storage(self) -> str:
        """Tune storage: shared storage on a cluster (output.storage_path), else local."""
        if self.storage_path:
            sp = self.storage_path
            return sp if "://" in sp else str(Path(sp).resolve())
        return str(self.root / "tune")

    def experiment(self, stage: str) -> str:
        """One Tune experiment per stage; under shared storage its name carries the run's."""
        name = f"{self.name}-{stage}" if self.storage_path else stage
        return f"{self.storage().rstrip('/')}/{name}"

    def member_dirs(self) -> list[Path]:
        """The stored ensemble members, in member order."""
        base = self.stage(Ensemble.DIR) / Ensemble.MEMBERS_DIR
        return sorted(p.parent for p in base.glob(f"member_*/{Ensemble.MEMBER}"))


def cache_root(cfg: Config, kind: str) -> Path:
    """Content-addressed caches shared by runs: ``crops``, ``weights``, ``features``."""
    if kind == "crops" and cfg.faces.cache_dir:
        return Path(cfg.faces.cache_dir).resolve()
    base = Path(cfg.faces.cache_dir).resolve().parent if cfg.faces.cache_dir else None
    return (base or Path(cfg.output.runs_dir).resolve() / ".cache") / kind
