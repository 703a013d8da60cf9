"""The report sections of issue 14 on hand-written stored files: seed 002's architectures
side by side and new-faces matrix, seed 003's deconvolution / AU ↔ map section."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from fer_ray.report.render import to_markdown
from fer_ray.report.run import open_run
from fer_ray.report.sections import SECTIONS
from tests.report.fake_seed_stages import write_aumaps, write_newfaces

CLASSES = ["angry", "happy", "sad"]


def _run(root: Path, name: str = "synthetic") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump({"name": "t", "data": {"name": name}}))
    (root / "prepare").mkdir()
    (root / "prepare" / "summary.json").write_text(json.dumps({"class_names": CLASSES}))
    return root


def _grid(root: Path) -> None:
    g = root / "grid"
    g.mkdir()
    t2 = pd.DataFrame(
        {"backbone": ["alexnet", "alexnet", "vgg19"], "lr": [0.01, 0.001, 0.001],
         "hidden": [8, 8, 8], "mean": [0.5, 0.7, 0.6], "std": [0.1, 0.05, 0.02],
         "count": [2, 2, 2], "pooled": [0.3, 0.8, 0.7], "low": [0.1, 0.6, 0.4],
         "high": [0.5, 0.9, 0.8], "n_items": [10, 10, 10], "n_groups": [4, 4, 4]}
    )  # fmt: skip
    t2.to_csv(g / "table2.csv", index=False)
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 1, 0, 1])
    rows = []
    for bb, lr, preds in (
        ("alexnet", 0.001, [0, 1, 1, 1, 2, 2, 0, 1, 0, 1]),  # 8/10
        ("alexnet", 0.01, [0] * 10),
        ("vgg19", 0.001, [0, 0, 1, 2, 2, 1, 2, 1, 1, 1]),  # 7/10
    ):
        for i, (y, pr) in enumerate(zip(labels, preds)):
            rows.append({"backbone": bb, "lr": lr, "hidden": 8, "fold": i % 2, "item": i,
                         "group": f"s{i // 3}", "label": y, "pred": pr, "correct": y == pr})  # fmt: skip
    pd.DataFrame(rows).to_csv(g / "oof.csv", index=False)
    curves = pd.DataFrame(
        [{"backbone": bb, "lr": 0.001, "hidden": 8, "fold": f, "step": e, "epoch": e,
          "train_loss": 2.0 / e + (0.5 if bb == "vgg19" else 0.0), "train_acc": 0.5,
          "val_loss": 1.0, "val_acc": 0.5}
         for bb in ("alexnet", "vgg19") for f in (0, 1) for e in (1, 2, 3)]
    )  # fmt: skip
    curves.to_csv(g / "curves.csv", index=False)
    (g / "chosen.json").write_text(json.dumps({"lr": 0.001, "hidden": 8, "backbone": "alexnet"}))


def test_architectures_side_by_side_from_the_grids_stored_files(tmp_path: Path) -> None:
    root = _run(tmp_path / "run")
    _grid(root)
    section = SECTIONS.get("architectures")
    part = section.load(open_run(root))
    comp = part.tables["architectures"].set_index("backbone")
    assert list(comp.index) == ["alexnet", "vgg19"]  # one row each, its best cell
    assert comp.loc["alexnet", "lr"] == 0.001 and comp.loc["alexnet", "oof_accuracy"] == 0.8
    assert (comp.loc["vgg19", "low"], comp.loc["vgg19", "high"]) == (0.4, 0.8)
    # per-class recall from the stored out-of-fold predictions
    assert comp.loc["alexnet", ["acc_angry", "acc_happy", "acc_sad"]].tolist() == pytest.approx(
        [2 / 3, 4 / 4, 2 / 3]
    )
    assert comp.loc["vgg19", ["acc_angry", "acc_happy", "acc_sad"]].tolist() == pytest.approx(
        [2 / 3, 3 / 4, 2 / 3]
    )
    cm = part.facts["confusions"]["alexnet"]
    assert cm.tolist() == [[2, 1, 0], [0, 4, 0], [1, 0, 2]]
    out = tmp_path / "report"
    out.mkdir()
    section.plots(part, out)
    assert cv2.imread(str(out / "architectures_confusion.png")) is not None
    assert (out / "architectures_train_loss.png").is_file()
    md = to_markdown(section.blocks(part))
    assert "80.00 % [60.00, 90.00]" in md and "**alexnet**" in md
    # a grid without a backbone column has no such section
    oof = pd.read_csv(root / "grid" / "oof.csv").drop(columns="backbone")
    oof.to_csv(root / "grid" / "oof.csv", index=False)
    assert section.load(open_run(root)) is None


def test_newfaces_section_states_within_and_cross_on_the_same_images(tmp_path: Path) -> None:
    root = _run(tmp_path / "run")
    write_newfaces(root / "newfaces", np.random.default_rng(0))
    section = SECTIONS.get("newfaces")
    part = section.load(open_run(root))
    wide = part.tables["newfaces_matrix_wide"].set_index("trained on")
    assert wide.loc["A", "B test subjects"].startswith("35.00 % [25.00, 45.00]")
    assert wide.loc["B", "all of A"].startswith("33.00 %")
    assert wide.loc["A", "all of A"] == "—"
    md = to_markdown(section.blocks(part))
    assert "34.70 %" in md
    assert (
        "A test subjects (20 images of 2): trained on A **80.00 % [70.00, 90.00]**, trained on"
        " B **30.00 % [20.00, 40.00]** (-50.00 points)"
    ) in md
    out = tmp_path / "report"
    out.mkdir()
    section.plots(part, out)
    assert cv2.imread(str(out / "newfaces_matrix.png")) is not None


def test_aumaps_section_reports_the_region_check_and_copies_panels(tmp_path: Path) -> None:
    root = _run(tmp_path / "run")
    d = root / "aumaps"
    write_aumaps(d, np.random.default_rng(0))
    section = SECTIONS.get("aumaps")
    part = section.load(open_run(root))
    per_au = part.tables["aumaps_per_au"].set_index("au")
    assert per_au.loc["AU1", "agreement"] == pytest.approx(0.5)
    assert per_au.loc["AU12", "best_maps_all_members"] == "7 9"
    # p = 0.01 and 0.03 pass uncorrected; Holm over the 4 pairs makes them 0.04 and 0.09
    assert per_au.loc["AU1", "members_holm_below_005"] == "1 of 2"
    holm = part.tables["aumaps_maps"]["p_holm"].tolist()
    assert holm == pytest.approx([0.04, 0.4, 0.09, 0.9])
    assert list(part.facts["panels"]) == ["AU1"]  # AU12's map 7 has no stored panel
    out = tmp_path / "report"
    out.mkdir()
    section.plots(part, out)
    assert (out / "aumaps_AU1_map005.png").is_file() and (out / "aumaps_distances.png").is_file()
    md = to_markdown(section.blocks(part))
    assert "**30.00 %** of the time, against **12.50 %**" in md
    assert "Holm-corrected over the 4 pairs: **1 of 4** pairs significant at 5 %" in md
    assert "(uncorrected p < 0.05: 2, of which about 0.2 would pass by chance alone" in md
    assert "no pair can pass" not in md  # 1/101 is below 0.05/4
    summary = json.loads((d / "summary.json").read_text())
    (d / "summary.json").write_text(json.dumps({**summary, "shuffles": 19}))
    md = to_markdown(section.blocks(section.load(open_run(root))))
    assert "no p-value can be below 0.05, which is not below Holm's first step 0.05 / 4" in md
    # a ResNet run: the stage said why it did nothing, and so does the report
    (d / "summary.json").write_text(
        json.dumps({"backbone": "resnet18", "unit": None, "skipped": "no plain conv stack"})
    )
    part = section.load(open_run(root))
    assert "Not computed for resnet18: no plain conv stack." in to_markdown(section.blocks(part))
