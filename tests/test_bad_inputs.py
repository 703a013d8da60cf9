"""Every bad input is one clear line: exit code != 0, no traceback, nothing that looks complete.

Each case runs ``python -m fer_ray.tune``'s ``main`` in-process on the smoke config with one
thing wrong. Most fail in the driver before Ray starts; the GPU and unreadable-image cases
need Ray and are marked slow.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fer_ray import tune
from tests.conftest import SMOKE
from tests.data import fixtures


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_class(tmp: Path) -> list[str]:
    fixtures.write_image(tmp / "data" / "happy" / "S001_001.png")
    fixtures.write_image(tmp / "data" / "happy" / "S002_001.png")
    return ["data.name=imagefolder", f"data.root={tmp / 'data'}"]


def _unreadable(tmp: Path) -> list[str]:
    for label in ("happy", "sad", "neutral"):
        for subject in range(6):
            fixtures.write_image(tmp / "data" / label / f"S{subject:03d}_{label}.png")
    (tmp / "data" / "happy" / "S099_broken.png").write_bytes(b"not a png")
    return [
        "data.name=imagefolder",
        f"data.root={tmp / 'data'}",
        "faces.detector=center",
        "grid.folds=2",
    ]


def _yaml(text: str):
    def make(tmp: Path) -> Path:
        path = tmp / "bad.yaml"
        path.write_text(text)
        return path

    return make


# (id, config file maker or None for smoke.yaml, overrides maker, expected start of the line)
CASES = [
    ("yaml syntax", _yaml("grid: [0.1,\n"), None, "config error: "),
    ("not a mapping", _yaml("- a\n- b\n"), None, "config error: "),
    ("unknown key", None, lambda t: ["grid.lrs=[0.1]"], "config error: --set: unknown config"),
    ("empty search space", None, lambda t: ["grid.lr=[]"], "config error: --set: grid.lr is empty"),
    ("too few folds", None, lambda t: ["grid.folds=1"], "config error: --set: grid.folds"),
    ("no members", None, lambda t: ["ensemble.members=0"], "config error: --set: ensemble.members"),
    ("no epochs", None, lambda t: ["train.epochs=0"], "config error: --set: train.epochs"),
    ("tiny crops", None, lambda t: ["faces.size=8"], "config error: --set: faces.size"),
    (
        "fraction",
        None,
        lambda t: ["ensemble.val_fraction=1.5"],
        "config error: --set: ensemble.val",
    ),
    ("wrong type", None, lambda t: ["train.batch_size=big"], "config error: --set: 'train.batch"),
    (
        "typo backbone",
        None,
        lambda t: ["model.backbone=resnet81"],
        "config error: --set: model.bac",
    ),
    ("vit backbone", None, lambda t: ["model.backbone=vit_base_patch16_224"], "config error:"),
    ("weights file", None, lambda t: [f"model.weights={t / 'w.pt'}"], "model error: model.weig"),
    ("unknown recipe", None, lambda t: ["train.recipe=seed009"], "config error: --set: train.rec"),
    ("unknown detector", None, lambda t: ["faces.detector=hog"], "config error: --set: faces.det"),
    ("missing root", None, lambda t: ["data.name=sfew", f"data.root={t / 'no'}"], "data error: "),
    ("one class", None, _one_class, "data error: "),
    ("few groups", None, lambda t: ["data.n_subjects=3", "grid.folds=5"], "data error: 5-fold"),
    ("address", None, lambda t: [f"resources.address=127.0.0.1:{_closed_port()}"], "cluster err"),
    pytest.param(
        "gpu",
        None,
        lambda t: ["resources.gpus_per_trial=1"],
        "cluster error: ",
        marks=pytest.mark.slow,
    ),  # fmt: skip
    pytest.param("unreadable", None, _unreadable, "data error: 1 of", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("case", "config", "overrides", "start"), CASES)
def test_bad_input_is_one_clear_line(tmp_path, capsys, case, config, overrides, start):
    sets = [f"output.runs_dir={tmp_path / 'runs'}", f"output.reports_dir={tmp_path / 'rep'}"]
    path = config(tmp_path) if config else SMOKE
    argv = ["--config", str(path)]
    for o in (*sets, *(overrides(tmp_path) if overrides else [])):
        argv += ["--set", o]
    rc = tune.main(argv)
    err = capsys.readouterr().err.strip()
    print(f"{case}: {err}")
    assert rc != 0
    assert "Traceback" not in err and err.count("\n") == 0, err
    assert err.startswith(start), err
    assert not list((tmp_path / "runs").rglob("done.json")), "a stage looks complete"


def test_resume_without_a_run_says_so(tmp_path, capsys):
    sets = [f"output.runs_dir={tmp_path / 'runs'}", f"output.reports_dir={tmp_path / 'rep'}"]
    rc = tune.main(["--config", str(SMOKE), "--resume", "--set", sets[0], "--set", sets[1]])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and err.startswith("error: --resume: there is no run to resume at"), err
    assert err.count("\n") == 0
