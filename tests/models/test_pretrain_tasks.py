"""The stand-in backbone's pretraining objectives: which are label-free, and determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from fer_ray.config import Config
from fer_ray.data import synthetic
from fer_ray.models import pretrain
from fer_ray.models.pretrain_tasks import OBJECTIVES, ROTATIONS, _rotated, rotate
from fer_ray.models.weights import WEIGHTS

CHANCE = 1 / len(synthetic.CLASS_NAMES)
# 40 subjects x 7 classes x 3 = 840 images scored once each; under the null hypothesis the
# accuracy's standard deviation is sqrt(p (1 - p) / 840) = 1.2 points, so 5 points is ~4 sigma
TOLERANCE = 0.05
SEED = 123
STAND_INS = [n for n in WEIGHTS.names() if WEIGHTS.get(n).stand_in]


@pytest.fixture(scope="module")
def faces() -> synthetic.SyntheticFaces:
    """A set rendered like the pretraining set (its own seed); the images' size does not
    matter to the targets, so they are drawn small."""
    return synthetic.generate(40, 3, image_size=32, seed=SEED)


@pytest.fixture(scope="module")
def free_faces() -> synthetic.SyntheticFaces:
    """The same item table rendered as ``free_au`` renders its pretraining set: every face's
    AUs drawn independently of its class slot."""
    return synthetic.generate(40, 3, image_size=32, seed=SEED, independent_aus=True)


def class_accuracy_from_targets(targets: np.ndarray, faces: synthetic.SyntheticFaces) -> float:
    """Subject-grouped 5-fold accuracy of a logistic regression: targets -> expression class."""
    y, groups = faces.labels, faces.subjects
    correct = 0
    for tr, te in GroupKFold(5).split(targets, y, groups):
        clf = LogisticRegression(max_iter=2000).fit(targets[tr], y[tr])
        correct += int((clf.predict(targets[te]) == y[te]).sum())
    return correct / len(y)


@pytest.mark.parametrize("name", STAND_INS)
def test_label_free_sources_targets_say_nothing_about_the_class(name, faces, free_faces) -> None:
    """What each stand-in trains on, fed to a classifier of the expression class: chance for
    the label-free sources, far above it for the AU source (so the check can fail). Each
    source's targets come from a set rendered as its own pretraining set is."""
    src = WEIGHTS.get(name)
    obj = OBJECTIVES[src.objective]
    faces = free_faces if obj.independent_aus else faces
    targets = obj.training_targets(faces, SEED, torch.Generator().manual_seed(0))
    assert len(targets) == len(faces.labels)
    acc = class_accuracy_from_targets(targets, faces)
    if src.label_free:
        assert abs(acc - CHANCE) <= TOLERANCE, f"{name}: {acc:.3f} vs chance {CHANCE:.3f}"
    else:
        assert acc >= 0.9, f"{name}: {acc:.3f}; its targets should give the class away"


def test_the_au_contrast_is_real(faces) -> None:
    """The AU source is labelled as supervised because its targets determine the class."""
    assert not WEIGHTS.get("synthetic_au").label_free
    assert WEIGHTS.get("synthetic_identity").label_free
    assert class_accuracy_from_targets(faces.aus, faces) >= 0.95
    one_hot = np.eye(faces.subjects.max() + 1, dtype=np.float32)[faces.subjects]
    assert abs(class_accuracy_from_targets(one_hot, faces) - CHANCE) <= TOLERANCE


def test_free_au_targets_are_not_the_classes_au_sets(faces, free_faces) -> None:
    """The generator's own rule (strong AUs = a class's AU set) recovers the class from every
    AU stand-in target and from almost no ``free_au`` target: 7 of the 2^13 equally likely
    on/off patterns are a class's, so about 0.7 of these 840 faces by chance (0 here); the
    free faces' class slots are at chance in ``test_label_free_sources_...`` above."""
    au = OBJECTIVES["au"].training_targets(faces, SEED, torch.Generator().manual_seed(0))
    assert (synthetic.prototype_class(au) == faces.labels).mean() == 1.0
    free = OBJECTIVES["free_au"].training_targets(free_faces, SEED, torch.Generator())
    assert int((synthetic.prototype_class(free) >= 0).sum()) == 0
    strong = free > 0.275
    assert abs(strong.mean() - 0.5) < 0.02  # each AU a fair coin ...
    corr = np.corrcoef(strong.T)[np.triu_indices(strong.shape[1], 1)]
    assert np.abs(corr).max() < 0.12  # ... independent of the others (|r| ~ 1/sqrt(840))
    assert WEIGHTS.get("synthetic_free_au").label_free


def test_the_default_stand_in_is_label_free() -> None:
    """The default run transfers from a stand-in that never saw an expression class."""
    src = WEIGHTS.get(Config().model.weights)
    assert src.stand_in and src.label_free and src.objective == "free_au"


def test_every_source_says_what_its_targets_reveal() -> None:
    for name in WEIGHTS.names():
        src = WEIGHTS.get(name)
        assert src.targets and src.reveals, name
        if src.stand_in:
            assert src.objective in OBJECTIVES, name
            assert ("nothing" in src.reveals) == src.label_free, name
    assert WEIGHTS.get("synthetic").objective == "au"  # the old name is the AU source


def test_rotation_labels_match_the_turn_after_mirroring() -> None:
    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).reshape(2, 1, 3, 3)
    turns = torch.tensor([1, 3])
    r = rotate(x, turns)
    assert torch.equal(r[0], torch.rot90(x[0], 1, (1, 2)))
    assert torch.equal(r[1], torch.rot90(x[1], 3, (1, 2)))
    xs = torch.randn(64, 1, 5, 5)
    out, k = _rotated(xs, torch.Generator().manual_seed(3))
    assert set(k.tolist()) == set(range(ROTATIONS))
    for i in range(len(xs)):  # each output is a turn of the image or of its mirror image
        back = torch.rot90(out[i], -int(k[i]), (1, 2))
        assert torch.equal(back, xs[i]) or torch.equal(back, xs[i].flip(-1))


def _tiny(weights: str, init_seed: int = 0) -> Config:
    base = Config()
    return dataclasses.replace(
        base,
        data=dataclasses.replace(base.data, image_size=32),
        faces=dataclasses.replace(base.faces, size=32),
        model=dataclasses.replace(
            base.model,
            weights=weights,
            pretrain_epochs=1,
            pretrain_subjects=3,
            init_seed=init_seed,
        ),
    )


def test_cache_key_names_the_objective() -> None:
    keys = {n: pretrain.pretrain_key(_tiny(n)) for n in STAND_INS}
    assert keys["synthetic"] == keys["synthetic_au"]  # an alias shares the AU weights
    objectives = {WEIGHTS.get(n).objective for n in STAND_INS}
    assert len(set(keys.values())) == len(objectives)


@pytest.mark.parametrize(
    "name", ["synthetic_identity", "synthetic_identity_rotation", "synthetic_free_au"]
)
def test_pretraining_is_deterministic_and_seeded(name) -> None:
    torch.set_num_threads(1)
    a, facts = pretrain.pretrain_backbone(_tiny(name))
    b, _ = pretrain.pretrain_backbone(_tiny(name))
    assert all(torch.equal(a[k], b[k]) for k in a)
    c, _ = pretrain.pretrain_backbone(_tiny(name, init_seed=1))
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])
    src = WEIGHTS.get(name)
    assert facts["objective"] == src.objective and facts["label_free"]
    assert facts["targets"] == src.targets and facts["reveals"] == src.reveals
    score = "val_mse" if src.objective == "free_au" else "val_acc"
    assert len(facts["history"]) == 1 and score in facts["history"][0]
