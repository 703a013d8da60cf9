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
#: Where the trackers write inside the run folder (Tune's callbacks write them, the report
#: links them): MLflow's SQLite store, and the folder W&B makes in the ``dir`` it is given
MLFLOW_DB = "mlflow.db"
WANDB_DIR = "wandb"
SUMMARY = "summary.json"  # every stage's headline facts
DEPARTURES = "departures.json"  # run root: how this run departs from its seed paper, and why
ERRORS = "errors.json"  # a Tune stage: the trials that failed after their retries, and why
WORK = "work.csv"  # every stage: one row per trial or task (unit, node_id, node_ip, seconds)
PLAN = "plan.json"  # run root: this invocation's stages in order, action and Tune experiments
TIMING = "timing.json"  # run root: per invocation, the estimate and measured seconds per stage
PROGRESS = "progress.json"  # <run>/<Tune experiment>/: trials total, finished, running (live)
RESULTS = "results.parquet"  # a Tune stage: every reported result of every trial


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
    SEARCH_TRIALS = "search_trials.csv"  # search.algorithm other than grid: every proposal
    SEARCH_HISTORY = "search_history.csv"  # objective in proposal order, best so far
    SEARCH_IMPORTANCE = "search_importance.csv"  # importance per parameter (fANOVA or variance)
    SEARCH_SUMMARY = "search.json"  # the search's settings and its best proposal
    SEARCH_STUDY = "search_study.db"  # search.algorithm=optuna: the Optuna study (SQLite)


class Ensemble:
    DIR = "ensemble"
    MEMBERS_DIR = "members"
    REPEATS_DIR = "repeats"  # ensemble.holdout_repeats > 1: the other holdouts' members
    HOLDOUTS = "holdouts.csv"  # per holdout repeat: member mean and std, vote accuracy
    ARCHS_DIR = "archs"  # ensemble.backbones: the other backbones' members
    ARCHS = "architectures.csv"  # per backbone: member mean and vote, with intervals
    ARCH_RECALL = "architecture_recall.csv"  # per backbone and class: the vote's recall
    ARCH_CONFUSION = "architecture_confusion.csv"  # per backbone: the vote's confusion matrix
    MEMBER = "member.npz"  # per member: indices, probabilities, head weights, pooled features
    MODEL = "model.pt"  # per member: the trained module's state dict
    MEMBERS = "members.csv"
    CURVES = "curves.csv"
    VOTE = "vote.npz"
    SIZE_CURVE = "size_curve.csv"  # soft vote's accuracy, NLL, ECE against member count
    LR_FINDER = "lr_finder.csv"  # train.lr=auto: the LR range test (lr, loss, smoothed)
    LR_FINDER_JSON = "lr_finder.json"  # ... and its result (fer_ray.train.lr_finder)

    @staticmethod
    def member_dir(member: int) -> str:
        return f"member_{member:02d}"

    ANY_MEMBER = "member_*"  # every member_dir, in a stage's declared files (protocol.Stage)


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


class Export:
    DIR = "export"  # seed 001: per member, the pooled features of every image
    MEMBERS_DIR = "members"  # members/member_XX/features.parquet (or .csv: export.format)
    FEATURES = "features"  # + ".parquet" | ".csv"; columns item, role, label, pred, f0..f511

    @staticmethod
    def features_file(fmt: str) -> str:
        return f"{Export.FEATURES}.{fmt}"


class Rules:
    DIR = "rules"  # seed 001: one-vs-rest trees on the exported features, per member and depth
    FIDELITY = "fidelity.csv"  # per (member, depth): combined, mean per class, per class
    SWEEP = "sweep.csv"  # per depth: fidelity and rule size, mean and std over members
    RULES = "rules.csv"  # every positive rule: member, depth, class, text, support, precision
    RULES_TEXT = "rules.txt"  # the rules of rules.depth, readable, per member and class


class Clean:
    DIR = "clean"  # seed 004: out-of-fold losses, top-loss flags, retrained members
    LOSSES = "losses.csv"  # per pool item: fold, label, prediction, loss, flagged, flipped
    GALLERY = "gallery.csv"  # the clean.gallery largest losses (seed 004 Fig. 3/5 titles)
    GALLERY_CROPS = "gallery.npz"  # their crops, in gallery order (the report draws the grid)
    RETRAIN = "retrain.csv"  # per (variant, member): items dropped, val and test accuracy
    VARIANTS = "variants.csv"  # per variant: vote accuracy and the paired difference to none
    VOTES = "votes.npz"  # per variant: the soft vote's test probabilities


class NewFaces:
    DIR = "newfaces"  # seed 002's new faces: train on data set A or B, test on both
    DOMAINS = "domains.csv"  # per image of A and B: domain, item, label, group, test (holdout)
    MATRIX = "matrix.csv"  # per (train, test) cell: member mean/std, vote accuracy, interval
    MEMBERS = "members.csv"  # per trial (train domain, member): val and test accuracies
    CONFUSION = "confusion.csv"  # per cell: the soft vote's confusion matrix, long format
    PREDICTIONS_DIR = "predictions"  # <train>_<member>.npz: probabilities on every test set


class AuMaps:
    DIR = "aumaps"  # seed 003: deconvolution panels and Action Unit ↔ map distances
    MAPS = "maps.csv"  # per (member, AU): best map, distance, n with/without, region check
    DISTANCES = "distances.csv"  # per (member, AU, map): the eq. 13 distance (seed 003 Fig. 5)
    TOP = "top.csv"  # per (member, map): its top-k images, activations and positions
    PANELS_DIR = "panels"  # member_XX/<unit>_mapNNN.png: receptive-field crops over deconvs

    @staticmethod
    def panel(member: int, unit: str, channel: int) -> str:
        return f"{AuMaps.PANELS_DIR}/member_{member:02d}/{unit}_map{channel:03d}.png"


MARKER = ".fer_ray_run"  # in every run folder fer_ray made: --fresh deletes only such folders


def inside(parent: str | Path, name: str, key: str) -> Path:
    """``<parent>/<name>`` resolved, refused (one line naming ``key``) unless it stays inside
    ``parent`` after symlinks: every write and ``--fresh``'s delete happen under it."""
    from fer_ray.errors import ConfigError

    base = Path(parent).resolve()
    path = base / name
    real = path.resolve()
    if real == base or base not in real.parents:
        raise ConfigError(
            f"name={name!r}: {path} leads to {real}, outside {key} {base}; runs and reports"
            " stay inside their folders (remove the link or choose another name)"
        )
    return path


def made_by_fer_ray(root: Path) -> bool:
    """Whether ``root`` is a run folder fer_ray made: its marker, or (runs from before the
    marker) its config and run record side by side."""
    return (root / MARKER).is_file() or ((root / CONFIG).is_file() and (root / RUN_INFO).is_file())


def report_dir(cfg: Config) -> Path:
    """``<output.reports_dir>/<name>``, checked to stay inside the reports folder."""
    return inside(cfg.output.reports_dir, cfg.name, "output.reports_dir")


@dataclass(frozen=True)
class RunPaths:
    """Where one run's files live: ``root`` = ``<output.runs_dir>/<name>``."""

    root: Path
    storage_path: str | None = None  # output.storage_path: Tune storage shared by the cluster
    name: str = ""

    @classmethod
    def of(cls, cfg: Config) -> RunPaths:
        root = inside(cfg.output.runs_dir, cfg.name, "output.runs_dir")
        return cls(root, cfg.output.storage_path, cfg.name)

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
    """Content-addressed caches shared by runs: ``crops``, ``weights``, ``features``, ``splits``."""
    if kind == "crops" and cfg.faces.cache_dir:
        return Path(cfg.faces.cache_dir).resolve()
    base = Path(cfg.faces.cache_dir).resolve().parent if cfg.faces.cache_dir else None
    return (base or Path(cfg.output.runs_dir).resolve() / ".cache") / kind
