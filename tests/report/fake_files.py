"""Where the report tests' fake runs put their files: in the folders of the stages the protocol
registers, under the names those stages declare (``fer_ray.protocol.Stage.files``).

A fake cannot write a file its stage does not declare (``out`` fails naming it), and
``tests/report/test_fakes.py`` checks the other way round: every declared file is faked or
named in ``NOT_FAKED`` with the reason. So a stage that renames an output fails a test naming
the file until its fake follows.
"""

from __future__ import annotations

from pathlib import Path

from fer_ray import protocol
from fer_ray.layout import (
    Analyse,
    AuMaps,
    Clean,
    Descriptors,
    Ensemble,
    Grid,
    NewFaces,
    Prepare,
)


def spec(stage: str) -> protocol.Stage:
    """The registered stage ``stage`` (fails, naming the known ones, for another name)."""
    protocol.load_recipes()
    return protocol.STAGES.get(stage)


def stage_dir(root: Path, stage: str) -> Path:
    """The stage's folder in the run at ``root``: ``<root>/<stage name>`` (the protocol's)."""
    return root / spec(stage).name


def out(d: Path, *parts: str) -> Path:
    """``d / parts`` (its folders made) where ``d`` is a stage's folder and ``parts`` a file the
    stage declares, or one the runner writes in every stage's folder; fails naming the file
    otherwise."""
    name = "/".join(parts)
    if protocol.declared(spec(d.name), name) is None:
        raise AssertionError(
            f"the fake writes {d.name}/{name}, which stage {d.name} does not declare "
            f"(its files: {', '.join(spec(d.name).files)})"
        )
    path = d.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


_UNREAD = "the report never reads it"
_COMPARED = "only the comparison reads it, and tests/report/test_compare.py writes its own"
_DEFAULT_LR = "the fake ran with the default train.lr (no LR range test)"
_MEMBERS = "the report reads the tables of other holdouts and backbones, not their members"
_ANY = Ensemble.ANY_MEMBER
#: Registered stages the fakes never write, and why.
NOT_FAKED_STAGES = {"export": "it has no report section (the rules' section reads the rules)"}
#: Declared files the fakes leave out, per stage, and why; every other declared file is faked.
NOT_FAKED: dict[str, dict[str, str]] = {
    Prepare.DIR: {Prepare.UNREADABLE: _UNREAD + " (the summary lists the unreadable images)"},
    Grid.DIR: {Grid.SPLITS: _COMPARED, Grid.SEARCH_STUDY: _UNREAD + " (an Optuna study)"},
    Ensemble.DIR: {
        f"{Ensemble.MEMBERS_DIR}/{_ANY}/{Ensemble.MODEL}": "weights: the report loads no model",
        f"{Ensemble.REPEATS_DIR}/repeat_*/{_ANY}/{Ensemble.MEMBER}": _MEMBERS,
        f"{Ensemble.REPEATS_DIR}/repeat_*/{_ANY}/{Ensemble.MODEL}": _MEMBERS,
        f"{Ensemble.ARCHS_DIR}/*/{_ANY}/{Ensemble.MEMBER}": _MEMBERS,
        f"{Ensemble.ARCHS_DIR}/*/{_ANY}/{Ensemble.MODEL}": _MEMBERS,
        Ensemble.VOTE: _COMPARED,
        Ensemble.ARCH_CONFUSION: _UNREAD,
    },
    Analyse.DIR: {Analyse.CONFUSION_MEMBERS: _UNREAD},
    Descriptors.DIR: {
        Descriptors.ROWS: _UNREAD,
        Descriptors.MAGNITUDE_MODELS: _UNREAD,
        Descriptors.ANGLES_MODELS: _UNREAD,
    },
    Clean.DIR: {
        Clean.RETRAIN: "optional in the clean section; the fake has the variants' table only",
        Clean.VOTES: _UNREAD,
        Ensemble.LR_FINDER: _DEFAULT_LR,
        Ensemble.LR_FINDER_JSON: _DEFAULT_LR,
    },
    NewFaces.DIR: {
        NewFaces.DOMAINS: _UNREAD,
        NewFaces.CONFUSION: _UNREAD,
        f"{NewFaces.PREDICTIONS_DIR}/*.npz": _UNREAD,
        f"*_{Ensemble.LR_FINDER}": _DEFAULT_LR,
        f"*_{Ensemble.LR_FINDER_JSON}": _DEFAULT_LR,
    },
    AuMaps.DIR: {AuMaps.TOP: _UNREAD},
}
