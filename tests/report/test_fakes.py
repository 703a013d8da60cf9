"""The report tests' fake runs write what the stages declare (``fer_ray.protocol.Stage.files``):
every file a fake writes is one its stage declares, and every file a stage declares is faked or
named, with the reason, in ``tests.report.fake_files.NOT_FAKED``. A stage that renames an
output fails here, naming the file, until the fake follows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fer_ray import protocol
from fer_ray.errors import ConfigError
from fer_ray.layout import CONFIG, DEPARTURES, MARKER, PLAN, RUN_INFO, Grid
from tests.report.fake_files import NOT_FAKED, NOT_FAKED_STAGES, out
from tests.report.fake_run import ALL_STAGES, HOLDOUT_REPEATS, SEED_STAGES, write_run

EVERY = (*ALL_STAGES, *SEED_STAGES, HOLDOUT_REPEATS)  # every stage and extra the fakes write
RUN_FILES = {CONFIG, RUN_INFO, DEPARTURES, PLAN, MARKER}  # the run folder's own files


def _builtin() -> dict[str, protocol.Stage]:
    """fer_ray's own stages (a recipe from another package brings its own report tests)."""
    specs = {n: protocol.STAGES.get(n) for n in protocol.stages()}
    return {n: s for n, s in specs.items() if s.run.startswith("fer_ray.")}


def _written(root: Path) -> tuple[set[str], dict[str, list[str]]]:
    """The run folder's own files, and per stage folder its files ("/"-separated, relative)."""
    top = {p.name for p in root.iterdir() if p.is_file()}
    folders = {
        d.name: sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())
        for d in root.iterdir()
        if d.is_dir()
    }
    return top, folders


def mismatches(
    specs: dict[str, protocol.Stage],
    written: dict[str, list[str]],
    not_faked: dict[str, dict[str, str]],
    not_faked_stages: dict[str, str],
) -> list[str]:
    """What keeps the fake run from mirroring the declarations, one line per file or stage."""
    problems = [
        f"the fake writes {d}/, which is no stage's folder" for d in written if d not in specs
    ]
    problems += [f"NOT_FAKED names stage {s}, which is not registered"
                 for s in (*not_faked, *not_faked_stages) if s not in specs]  # fmt: skip
    for name, spec in specs.items():
        files = written.get(name)
        if name in not_faked_stages:
            if files is not None:
                problems.append(f"stage {name} is faked, yet NOT_FAKED_STAGES names it")
            continue
        if files is None:
            problems.append(
                f"stage {name} has no fake (fake_run.write_run) and no NOT_FAKED_STAGES entry"
            )
            continue
        problems += [f"the fake writes {name}/{f}, which stage {name} does not declare"
                     for f in files if protocol.declared(spec, f) is None]  # fmt: skip
        skipped = not_faked.get(name, {})
        for entry in spec.files:
            faked = any(protocol.names(entry, f) for f in files)
            if faked and entry in skipped:
                problems.append(f"the fake writes {name}/{entry}, yet NOT_FAKED names it")
            elif not faked and entry not in skipped:
                problems.append(
                    f"stage {name} declares {name}/{entry}, which no fake writes"
                    " (fake it, or name it in NOT_FAKED with the reason)"
                )
        problems += [f"NOT_FAKED names {name}/{entry}, which stage {name} does not declare"
                     for entry in skipped if entry not in spec.files]  # fmt: skip
    return problems


def test_the_fakes_write_exactly_the_files_the_stages_declare(tmp_path: Path) -> None:
    top, folders = _written(write_run(tmp_path / "run", EVERY))
    assert top <= RUN_FILES, f"the fake writes {sorted(top - RUN_FILES)} in the run folder"
    problems = mismatches(_builtin(), folders, NOT_FAKED, NOT_FAKED_STAGES)
    assert not problems, "\n".join(problems)


def test_a_renamed_output_fails_naming_the_file(tmp_path: Path) -> None:
    """A stage that writes ``trial_table.csv`` instead of ``trials.csv``: the unchanged fake
    fails on both names, and the fake cannot write a name its stage does not declare."""
    _, folders = _written(write_run(tmp_path / "run", EVERY))
    specs = _builtin()
    grid = specs[Grid.DIR]
    renamed = tuple("trial_table.csv" if f == Grid.TRIALS else f for f in grid.files)
    specs[Grid.DIR] = dataclasses.replace(grid, files=renamed)
    problems = mismatches(specs, folders, NOT_FAKED, NOT_FAKED_STAGES)
    assert problems == [
        f"the fake writes grid/{Grid.TRIALS}, which stage grid does not declare",
        "stage grid declares grid/trial_table.csv, which no fake writes"
        " (fake it, or name it in NOT_FAKED with the reason)",
    ]
    with pytest.raises(AssertionError, match="fake writes grid/trial_table.csv, which stage grid"):
        out(tmp_path / Grid.DIR, "trial_table.csv")
    with pytest.raises(ConfigError, match="'grids' is not a known stage; did you mean 'grid'"):
        write_run(tmp_path / "other", ("grids",))
