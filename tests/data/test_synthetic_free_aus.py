"""Faces whose AUs are drawn without a class (the ``free_au`` stand-in's pretraining set), and
the guarantee that adding them left the embedded data set's own draws unchanged."""

from __future__ import annotations

import hashlib

import numpy as np

from fer_ray.data import synthetic as syn


def _digest(faces: syn.SyntheticFaces) -> str:
    h = hashlib.sha256()
    for a in (faces.images, faces.aus, faces.boxes):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def test_class_draws_are_unchanged() -> None:
    """The bytes the generator rendered before ``independent_aus`` existed (same arguments)."""
    faces = syn.generate(3, 2, 48, 11)
    assert _digest(faces) == "22a407746625bc289024ea1f1c3845a2cbe0b9d4503b7ae429b958c093724378"
    assert _digest(syn.generate(3, 2, 48, 11, independent_aus=False)) == _digest(faces)


def test_independent_aus_ignore_the_class_slot() -> None:
    """Same item table, same identities; the AUs are fair coins per AU, whatever the slot."""
    free = syn.generate(30, 4, 32, 5, independent_aus=True)
    ref = syn.generate(30, 4, 32, 5)
    assert np.array_equal(free.labels, ref.labels) and np.array_equal(free.subjects, ref.subjects)
    assert not np.array_equal(free.aus, ref.aus)
    strong = free.aus > 0.275
    assert abs(strong.mean() - syn.INDEPENDENT_AU_PROB) < 0.02
    by_slot = np.array([strong[free.labels == c].mean(0) for c in range(7)])
    assert np.abs(by_slot - 0.5).max() < 0.15  # 120 faces per slot: sd 0.046 per AU
    assert free.aus.min() >= 0 and free.aus.max() <= syn.CLASS_AU_RANGE[1]
    gap = (free.aus > syn.DISTRACTOR_MAX) & (free.aus < syn.CLASS_AU_RANGE[0])
    assert not gap.any()  # the class draws' intensity law: strong or at most a distractor


def test_prototype_class_is_the_generators_rule() -> None:
    """It recovers every class draw, and -1 marks a pattern that is no class's AU set."""
    faces = syn.generate(10, 3, 32, 2)
    assert np.array_equal(syn.prototype_class(faces.aus), faces.labels)
    none = np.zeros((1, len(syn.AU_LIST)), np.float32)
    everything = np.ones_like(none)
    assert syn.prototype_class(none)[0] == syn.CLASS_NAMES.index("neutral")
    assert syn.prototype_class(everything)[0] == -1


def test_render_items_chunks_agree_with_independent_aus() -> None:
    kw = dict(n_subjects=2, per_class=1, image_size=32, seed=9, independent_aus=True)
    whole = syn.render_items(range(14), **kw)
    parts = [
        syn.render_items(idx, **kw) for idx in ([13, 0, 5], [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12])
    ]
    order = [13, 0, 5, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12]
    for j, arr in enumerate(whole):
        joined = np.concatenate([parts[0][j], parts[1][j]])
        assert np.array_equal(joined, arr[order])
