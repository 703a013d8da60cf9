"""Tests for the embedded synthetic FER data set (fer_ray.data.synthetic)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_ray.data import synthetic as syn

N_SUBJECTS, PER_CLASS, SIZE, SEED = 3, 2, 64, 11


@pytest.fixture(scope="module")
def small() -> syn.SyntheticFaces:
    return syn.generate(N_SUBJECTS, PER_CLASS, image_size=SIZE, seed=SEED)


def test_constants_are_consistent() -> None:
    assert syn.CLASS_NAMES == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert syn.AU_LIST == (1, 2, 4, 5, 6, 7, 9, 12, 15, 16, 20, 23, 26)
    assert set(syn.CLASS_AUS) == set(syn.CLASS_NAMES)
    assert syn.CLASS_AUS["happy"] == (6, 12) and syn.CLASS_AUS["neutral"] == ()
    assert syn.CLASS_AU_RANGE[0] > syn.DISTRACTOR_MAX


def test_shapes_and_dtypes(small: syn.SyntheticFaces) -> None:
    n = N_SUBJECTS * 7 * PER_CLASS
    assert small.images.shape == (n, SIZE, SIZE, 3) and small.images.dtype == np.uint8
    assert small.labels.shape == (n,) and small.labels.dtype == np.int64
    assert small.aus.shape == (n, len(syn.AU_LIST)) and small.aus.dtype == np.float32
    assert small.subjects.shape == (n,) and small.subjects.dtype == np.int64
    assert small.boxes.shape == (n, 4) and small.boxes.dtype == np.int32


def test_deterministic_and_seed_dependent(small: syn.SyntheticFaces) -> None:
    again = syn.generate(N_SUBJECTS, PER_CLASS, image_size=SIZE, seed=SEED)
    assert np.array_equal(again.images, small.images)
    assert np.array_equal(again.aus, small.aus)
    assert np.array_equal(again.boxes, small.boxes)
    other = syn.generate(N_SUBJECTS, PER_CLASS, image_size=SIZE, seed=SEED + 1)
    differs = [not np.array_equal(a, b) for a, b in zip(other.images, small.images, strict=True)]
    assert all(differs)
    assert not np.array_equal(other.aus, small.aus)


def test_distinct_images_within_a_data_set(small: syn.SyntheticFaces) -> None:
    flat = small.images.reshape(len(small.images), -1)
    assert len({row.tobytes() for row in flat}) == len(flat)


def test_chunks_in_any_order_equal_generate(small: syn.SyntheticFaces) -> None:
    kw = {"n_subjects": N_SUBJECTS, "per_class": PER_CLASS, "image_size": SIZE, "seed": SEED}
    n = len(small.labels)
    idx = np.arange(n)
    first = syn.render_items(idx[: n // 2], **kw)
    second = syn.render_items(list(idx[n // 2 :]), **kw)
    for got, want in zip(first, (small.images, small.aus, small.boxes), strict=True):
        assert np.array_equal(got, want[: n // 2])
    for got, want in zip(second, (small.images, small.aus, small.boxes), strict=True):
        assert np.array_equal(got, want[n // 2 :])
    rev = syn.render_items(idx[::-1], **kw)
    for got, want in zip(rev, (small.images, small.aus, small.boxes), strict=True):
        assert np.array_equal(got, want[::-1])
    empty_images, empty_aus, empty_boxes = syn.render_items([], **kw)
    assert empty_images.shape == (0, SIZE, SIZE, 3) and empty_aus.shape == (0, 13)
    assert empty_boxes.shape == (0, 4)


def test_item_table_structure(small: syn.SyntheticFaces) -> None:
    table = syn.item_table(N_SUBJECTS, PER_CLASS)
    n = N_SUBJECTS * 7 * PER_CLASS
    assert list(table.columns) == ["index", "label", "label_name", "subject"]
    assert table["index"].tolist() == list(range(n))
    assert table["label"].value_counts().to_dict() == {c: N_SUBJECTS * PER_CLASS for c in range(7)}
    assert table["subject"].value_counts().to_dict() == {s: 7 * PER_CLASS for s in range(3)}
    assert (table.groupby("subject")["label"].nunique() == 7).all()
    assert table["label_name"].tolist() == [syn.CLASS_NAMES[c] for c in table["label"]]
    assert np.array_equal(table["label"].to_numpy(), small.labels)
    assert np.array_equal(table["subject"].to_numpy(), small.subjects)
    # Documented layout: subject-major blocks, then per_class consecutive items per class.
    assert table.loc[2 * 7 * PER_CLASS + 3 * PER_CLASS + 1, ["subject", "label"]].tolist() == [2, 3]


def test_au_intensities_follow_class_definitions() -> None:
    data = syn.generate(4, 6, image_size=32, seed=3)
    aus = data.aus
    assert aus.min() >= 0.0 and aus.max() <= 1.0
    low, high = syn.CLASS_AU_RANGE
    n_distractors = 0
    for label, name in enumerate(syn.CLASS_NAMES):
        rows = aus[data.labels == label]
        mask = np.array([au in syn.CLASS_AUS[name] for au in syn.AU_LIST])
        if mask.any():
            assert rows[:, mask].min() >= low - 1e-6, name
            assert rows[:, mask].max() <= high + 1e-6, name
        assert rows[:, ~mask].max() <= syn.DISTRACTOR_MAX + 1e-6, name
        n_distractors += int((rows[:, ~mask] > 0).sum())
    neutral = aus[data.labels == syn.CLASS_NAMES.index("neutral")]
    assert neutral.max() <= syn.DISTRACTOR_MAX + 1e-6
    # Distractors exist (classes overlap) but are a minority of the non-class slots.
    n_slots = sum(
        (data.labels == c).sum() * (len(syn.AU_LIST) - len(syn.CLASS_AUS[name]))
        for c, name in enumerate(syn.CLASS_NAMES)
    )
    assert 0.1 * n_slots < n_distractors < 0.5 * n_slots


def test_boxes_inside_image_with_plausible_size_and_jitter() -> None:
    size = 96
    data = syn.generate(4, 3, image_size=size, seed=5)
    x0, y0, x1, y1 = data.boxes.T
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= size).all() and (y1 <= size).all()
    width, height = x1 - x0, y1 - y0
    assert width.min() >= 0.35 * size and width.max() <= 0.9 * size, (width.min(), width.max())
    assert height.min() >= 0.3 * size, height.min()
    assert np.std((x0 + x1) / 2) > 2.0 and np.std(width) > 2.0  # position/scale jitter


@pytest.mark.slow  # trains a logistic regression per seed on rendered faces (~30 s)
def test_difficulty_band_logistic_regression_on_face_crops() -> None:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    n_subjects, per_class, n_train = 40, 3, 30
    data = syn.generate(n_subjects, per_class, image_size=96, seed=0)

    def features(crop: bool) -> np.ndarray:
        rows = []
        for img, (x0, y0, x1, y1) in zip(data.images, data.boxes, strict=True):
            face = img[y0:y1, x0:x1] if crop else img
            small = cv2.resize(face, (32, 32), interpolation=cv2.INTER_AREA)
            rows.append(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).reshape(-1) / 255.0)
        return np.asarray(rows)

    def accuracy(crop: bool) -> float:
        x = features(crop)
        train = data.subjects < n_train  # subject-grouped split: test identities are unseen
        scaler = StandardScaler().fit(x[train])
        clf = LogisticRegression(max_iter=1000).fit(scaler.transform(x[train]), data.labels[train])
        return float(clf.score(scaler.transform(x[~train]), data.labels[~train]))

    chance = 1.0 / len(syn.CLASS_NAMES)
    cropped, whole = accuracy(crop=True), accuracy(crop=False)
    assert chance + 0.10 < cropped < 0.85, f"cropped accuracy {cropped:.3f} out of band"
    # The boxes locate the face: whole frames (clutter, position jitter) are much harder.
    # Measured (this split, 40x3, seeds 0-2): cropped 0.48-0.59, whole 0.15-0.21.
    assert whole < cropped - 0.10, f"whole-frame {whole:.3f} vs cropped {cropped:.3f}"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_subjects": 0, "per_class": 1}, "n_subjects"),
        ({"n_subjects": 1, "per_class": 0}, "per_class"),
        ({"n_subjects": 2.5, "per_class": 1}, "n_subjects"),
        ({"n_subjects": 1, "per_class": 1, "image_size": 31}, "image_size"),
        ({"n_subjects": 1, "per_class": 1, "seed": -1}, "seed"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        syn.generate(**kwargs)


def test_item_table_and_render_items_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="per_class"):
        syn.item_table(2, -1)
    kw = {"n_subjects": 1, "per_class": 1, "image_size": 32, "seed": 0}
    with pytest.raises(ValueError, match="indices"):
        syn.render_items([7], **kw)
    with pytest.raises(ValueError, match="indices"):
        syn.render_items([-1], **kw)
    with pytest.raises(ValueError, match="image_size"):
        syn.render_items([0], **{**kw, "image_size": 16})
