"""Rendering styles of the synthetic generator (seed 002's cross-data-set test, issue 14).

A style changes only the ranges nuisances are drawn from, never how many draws are made or in
which order: the default renders today's bytes, and every style draws the same expressions
(AU intensities), poses and face boxes for the same seed, so ``au_regions`` replays them.
"""

from __future__ import annotations

import hashlib

import numpy as np

from fer_ray.data import au_regions
from fer_ray.data import synthetic as syn


def _digest(f: syn.SyntheticFaces) -> str:
    return hashlib.sha256(f.images.tobytes() + f.aus.tobytes() + f.boxes.tobytes()).hexdigest()


def test_default_style_is_todays_bytes() -> None:
    # digests of generate(4, 2, 96, 3) and generate(3, 1, 48, 0) before styles existed
    assert _digest(syn.generate(4, 2, 96, 3)) == (
        "8ab6ded20e160b7784f259e47b993efc18b77a6ec15f1113f235159159f72c22"
    )
    assert _digest(syn.generate(3, 1, 48, 0, syn.STYLES.get("default"))) == (
        "c8bac06ca4f373b724f222509866690580a82918ad763588f313b0cc4266fed0"
    )


def test_styles_change_the_look_not_the_expression_or_pose() -> None:
    base = syn.generate(6, 1, 64, 5)
    studio = syn.generate(6, 1, 64, 5, syn.STYLES.get("studio"))
    dim = syn.generate(6, 1, 64, 5, syn.STYLES.get("dim"))
    for other in (studio, dim):
        np.testing.assert_array_equal(other.aus, base.aus)
        np.testing.assert_array_equal(other.boxes, base.boxes)
        np.testing.assert_array_equal(other.labels, base.labels)
        assert not np.array_equal(other.images, base.images)
    # studio: pale plain backgrounds and little noise; dim: dark and noisy
    corner = (slice(0, 6), slice(0, 6))
    mean = {k: float(f.images[:, corner[0], corner[1]].mean()) for k, f in
            (("base", base), ("studio", studio), ("dim", dim))}  # fmt: skip
    assert mean["dim"] < mean["base"] < mean["studio"]
    rough = {k: float(np.abs(np.diff(f.images.astype(float), axis=2)).mean()) for k, f in
             (("studio", studio), ("dim", dim))}  # fmt: skip
    assert rough["studio"] < rough["dim"]


def test_styled_skin_stays_in_its_range() -> None:
    light, dark = np.array([238, 204, 178]), np.array([100, 66, 46])
    studio = syn.STYLES.get("studio")
    for subject in range(20):
        skin = np.array(syn.identity(0, subject, studio).skin)
        t = float(np.mean((light - skin) / (light - dark)))  # the mix, up to the ±8 jitter
        assert -0.15 < t < studio.skin[1] + 0.15
        # geometry does not depend on the style
        assert syn.identity(0, subject, studio).asp == syn.identity(0, subject).asp


def test_region_replay_holds_for_a_style() -> None:
    studio = syn.generate(3, 1, 64, 9, syn.STYLES.get("studio"))
    geo = au_regions.synthetic_geometry(
        range(len(studio.labels)), n_subjects=3, per_class=1, image_size=64, seed=9
    )
    np.testing.assert_array_equal(np.stack([g.box for g in geo]), studio.boxes)
    np.testing.assert_array_equal(np.stack([g.aus for g in geo]), studio.aus)
