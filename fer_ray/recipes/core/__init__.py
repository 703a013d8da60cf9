"""The core pipeline every run shares (the protocol of Dai, "Facial Expression Analysis based
on Transfer Learning and Feature Analysis"): prepare the faces, search the grid, train
the ensemble, analyse its members. Their config sections (grid, search, ensemble, analyse)
are in ``fer_ray.recipes.core.sections``, re-exported by ``fer_ray.config``; the
``statistics`` section (the interval method every stage that scores a test set uses) is
registered here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fer_ray.layout import SUMMARY, Analyse, Ensemble, Grid, Prepare
from fer_ray.protocol import Stage, register

CROPS = "crops"  # the manifest and the cropped faces (prepare)
CHOSEN = "chosen"  # the searched configuration (grid: grid/chosen.json)
MEMBERS = "members"  # the trained ensemble members (ensemble/members/member_XX/)
ANALYSES = "member_analyses"  # per-member feature analyses (analyse)

# the files each stage writes in its folder (fer_ray.protocol.Stage.files)
PREPARE_FILES = (Prepare.MANIFEST, Prepare.UNREADABLE, SUMMARY)
GRID_FILES = (
    Grid.FEATURES, Grid.SPLITS, Grid.TRIALS, Grid.CURVES, Grid.TABLE2, Grid.OOF, Grid.CHOSEN,
    # search.algorithm other than grid
    Grid.SEARCH_TRIALS, Grid.SEARCH_HISTORY, Grid.SEARCH_IMPORTANCE, Grid.SEARCH_SUMMARY,
    Grid.SEARCH_STUDY,
)  # fmt: skip
_MEMBER_FOLDERS = (  # the main members, other holdouts' and other backbones'
    Ensemble.MEMBERS_DIR,
    f"{Ensemble.REPEATS_DIR}/repeat_*",
    f"{Ensemble.ARCHS_DIR}/*",
)
MEMBER_FILES = tuple(  # each member's files, in its folder
    f"{folder}/{Ensemble.ANY_MEMBER}/{name}"
    for folder in _MEMBER_FOLDERS
    for name in (Ensemble.MEMBER, Ensemble.MODEL)
)
ENSEMBLE_FILES = (
    *MEMBER_FILES, Ensemble.MEMBERS, Ensemble.CURVES, Ensemble.VOTE, Ensemble.SIZE_CURVE, SUMMARY,
    Ensemble.HOLDOUTS,  # ensemble.holdout_repeats > 1
    Ensemble.ARCHS, Ensemble.ARCH_RECALL, Ensemble.ARCH_CONFUSION,  # ensemble.backbones
    Ensemble.LR_FINDER, Ensemble.LR_FINDER_JSON,  # train.lr = auto
)  # fmt: skip
ANALYSE_FILES = (
    Analyse.MAGNITUDE, Analyse.ANGLES, Analyse.BASELINES, Analyse.SWEEP, Analyse.PER_CLASS,
    Analyse.CONFUSION_VOTE, Analyse.CONFUSION_MEMBERS, Analyse.PRUNING_INTERVALS,
    Analyse.SWEEP_FALLOFF, Analyse.VOTE_RECALL, SUMMARY,
)  # fmt: skip


@dataclass(frozen=True)
class StatisticsConfig:
    """How every stored interval over subjects is computed (``fer_ray.analysis.intervals``)."""

    interval: Literal["t", "percentile", "bca"] = "t"  # t: cluster t-interval over subjects
    # (coverage measured near 95 % at 5 and 15 subjects) | percentile: the percentile cluster
    # bootstrap of earlier runs (under-covers with few subjects) | bca: BCa cluster bootstrap


register(
    Stage(
        "prepare",
        "fer_ray.stages.prepare:stage",
        keys=("data", "faces"),
        writes=(CROPS,),
        files=PREPARE_FILES,
        data_files=True,
        preflight="fer_ray.recipes.core.checks:faces",
        estimate="fer_ray.recipes.core.estimates:prepare",
    ),
    Stage(
        "grid",
        "fer_ray.stages.grid:stage",
        keys=(
            "seed",
            "model",
            "train",
            "grid",
            "search",
            "ensemble.test_fraction",
            "statistics",
        ),  # fmt: skip
        choice=Grid.CHOSEN,
        reads=(CROPS,),
        writes=(CHOSEN,),
        files=GRID_FILES,
        experiments=("search",),
        preflight="fer_ray.recipes.core.checks:training",
        estimate="fer_ray.recipes.core.estimates:grid",
    ),
    Stage(
        "ensemble",
        "fer_ray.stages.ensemble:stage",
        keys=("ensemble", "statistics"),
        reads=(CHOSEN,),
        writes=(MEMBERS,),
        files=ENSEMBLE_FILES,
        preflight="fer_ray.recipes.core.checks:training",
        estimate="fer_ray.recipes.core.estimates:ensemble",
    ),
    Stage(
        "analyse",
        "fer_ray.stages.analyse:stage",
        keys=("analyse", "statistics"),
        reads=(MEMBERS,),
        writes=(ANALYSES,),
        files=ANALYSE_FILES,
        enabled=lambda c: c.analyse.enabled,
        estimate="fer_ray.recipes.core.estimates:analyse",
    ),
    sections={"statistics": StatisticsConfig},
)
