"""The stage protocol: order by what stages read, demand turns producers on, fingerprints chain
through every upstream stage, and a broken graph fails naming the stages."""

from __future__ import annotations

import pytest

from fer_ray import config, protocol
from fer_ray.protocol import Stage
from tests.conftest import SMOKE


def _specs(*stages: Stage) -> dict[str, Stage]:
    return {s.name: s for s in stages}


def test_order_follows_reads_then_registration():
    specs = _specs(
        Stage("c", "m:f", reads=("b_out",)),
        Stage("a", "m:f", writes=("a_out",)),
        Stage("b", "m:f", reads=("a_out",), writes=("b_out",)),
        Stage("d", "m:f", reads=("a_out",)),
    )
    assert protocol.order(specs) == ["a", "b", "c", "d"]
    assert protocol.parents(specs) == {"c": ["b"], "a": [], "b": ["a"], "d": ["a"]}


def test_a_cycle_an_unwritten_input_and_a_doubly_written_artifact_fail():
    cycle = _specs(
        Stage("a", "m:f", reads=("y",), writes=("x",)),
        Stage("b", "m:f", reads=("x",), writes=("y",)),
    )
    with pytest.raises(ValueError, match="cycle: a, b"):
        protocol.order(cycle)
    with pytest.raises(ValueError, match="reads nowhere, which no stage writes"):
        protocol.order(_specs(Stage("a", "m:f", reads=("nowhere",))))
    with pytest.raises(ValueError, match="written by both a and b"):
        protocol.order(_specs(Stage("a", "m:f", writes=("x",)), Stage("b", "m:f", writes=("x",))))


def test_a_stage_that_runs_turns_on_the_producers_of_what_it_reads():
    cfg = config.load(SMOKE)
    specs = _specs(
        Stage("make", "m:f", writes=("x",), enabled=lambda c: False),
        Stage("use", "m:f", reads=("x",)),
        Stage("idle", "m:f", reads=("x",), enabled=lambda c: False),
    )
    assert protocol.active(cfg, specs) == {"make": True, "use": True, "idle": False}
    # the built-in case: the rules read the export, which the config leaves off
    on = protocol.active(
        config.load(SMOKE, ["rules.enabled=true"]),
        {n: protocol.STAGES.get(n) for n in protocol.stages()},
    )
    assert on["export"] and on["rules"] and not on["clean"]


def test_builtin_stages_form_a_graph_in_run_order():
    names = protocol.stages()
    assert names[:4] == ["prepare", "grid", "ensemble", "analyse"]
    specs = {n: protocol.STAGES.get(n) for n in names}
    ups = protocol.parents(specs)
    assert ups["rules"] == ["export"] and ups["export"] == ["ensemble"]
    assert ups["clean"] == ups["newfaces"] == ["grid"] and ups["descriptors"] == []
    for n in names:  # every stage comes after each stage it reads
        assert all(names.index(p) < names.index(n) for p in ups[n])


def test_a_key_reruns_its_stage_and_every_stage_downstream_only():
    base = protocol.fingerprints(config.load(SMOKE))
    changed = protocol.fingerprints(config.load(SMOKE, ["export.format=csv"]))
    differ = {n for n in base if base[n] != changed[n]}
    assert differ == {"export", "rules"}
    changed = protocol.fingerprints(config.load(SMOKE, ["grid.hidden=[7]"]))
    differ = {n for n in base if base[n] != changed[n]}
    assert differ == {"grid", "ensemble", "analyse", "export", "rules", "clean", "newfaces",
                      "aumaps"}  # fmt: skip


def test_recipe_sections_are_strict_and_typed():
    cfg = config.load(SMOKE, ["clean.folds=3", "aumaps.rule=overlap"])
    assert cfg.clean.folds == 3 and cfg.aumaps.rule == "overlap"
    assert cfg.to_dict()["clean"]["folds"] == 3
    with pytest.raises(config.ConfigError, match="did you mean 'clean.folds'"):
        config.load(SMOKE, ["clean.fold=3"])
    with pytest.raises(config.ConfigError, match="'aumaps.rule' must be one of centre, overlap"):
        config.load(SMOKE, ["aumaps.rule=middle"])
    with pytest.raises(config.ConfigError, match="clean.folds must be >= 2"):
        config.load(SMOKE, ["clean.folds=1"])
    with pytest.raises(config.ConfigError, match="did you mean 'clean'"):
        config.load(SMOKE, ["claen.folds=3"])


def test_stages_declare_their_files_as_paths_inside_their_folders():
    """Each of fer_ray's stages names the files it writes (the report's fakes follow them:
    tests/report/test_fakes.py); a ``*`` stands for one varying part of one folder level."""
    bare = Stage("x", "m:f")
    for name in protocol.stages():
        spec = protocol.STAGES.get(name)
        if not spec.run.startswith("fer_ray."):
            continue
        assert spec.files and len(set(spec.files)) == len(spec.files), name
        for f in spec.files:  # relative, inside the folder, none of the runner's own
            assert not f.startswith("/") and ".." not in f.split("/"), (name, f)
            assert protocol.declared(bare, f) is None, (name, f)
    assert protocol.names("members/member_*/member.npz", "members/member_00/member.npz")
    assert not protocol.names("member.npz", "members/member_00/member.npz")
    assert not protocol.names("predictions/*.npz", "predictions/a/b.npz")
    assert protocol.declared(bare, "done.json") == "done.json"
