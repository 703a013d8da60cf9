"""Issue 25, item 3: the headline sentence itself says how the backbone was pretrained and
what that means for its numbers (supervised on the task, label-free, none)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fer_ray.layout import Grid
from fer_ray.report.build import build_report
from fer_ray.report.sections import headline
from tests.report.fake_run import write_run

ENSEMBLE = {"members": 3, "selected_on_test": False, "test_acc_mean": 0.5, "test_acc_std": 0.1,
            "vote_acc": 0.6, "chance_uniform": 1 / 7, "chance_majority": 1 / 7, "n_test": 21}  # fmt: skip
AU = {"objective": "au", "targets": "the 13 Action Unit intensities", "label_free": False}
FREE = {"objective": "free_au", "targets": "independently drawn AUs", "label_free": True}


@pytest.mark.parametrize(
    ("pre", "weights", "says"),
    [
        (AU, "synthetic_au", "Backbone pretrained here on the 13 Action Unit intensities, which"
         " determine the expression class: **supervised pretraining on this task with other"
         " people**"),
        ({k: v for k, v in AU.items() if k != "label_free"}, "synthetic", "**supervised"),
        (FREE, "synthetic_free_au", "Backbone pretrained here, label-free, on independently"
         " drawn AUs: it never saw an expression class"),
        (None, "none", "Backbone: random initialisation, no pretraining."),
        (None, "imagenet", "Backbone: ImageNet weights"),
    ],
)  # fmt: skip
def test_the_sentence_says_how_the_backbone_was_pretrained(pre, weights, says) -> None:
    text = headline.sentence({"ensemble": ENSEMBLE, "pretrain": pre, "weights": weights})
    assert text.startswith("3 members: test accuracy 50.00 %")
    assert says in text
    assert ("supervised" in text) == (pre is not None and pre["objective"] == "au")


def test_the_markdown_headline_carries_the_stand_ins_facts(tmp_path: Path) -> None:
    root = write_run(tmp_path / "run")
    features = json.loads((root / Grid.DIR / Grid.FEATURES).read_text())
    (root / Grid.DIR / Grid.FEATURES).write_text(json.dumps({**features, "pretrain": AU}))
    md = (build_report(root, tmp_path / "rep") / "report.md").read_text()
    head = md[md.index("## Headline") :].split("\n\n")[3]
    assert head.startswith("3 members: mean test accuracy 38.10 %")
    assert "**supervised pretraining on this task with other people**" in head
