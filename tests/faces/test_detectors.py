import re
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_ray.config import DataConfig
from fer_ray.data.loaders.synthetic import SyntheticSource
from fer_ray.data.source import Source
from fer_ray.faces import detectors
from fer_ray.faces.cache import CropCache, cache_key
from fer_ray.faces.crop import crop, crop_chunk


def _marked_image():
    """A 100x120 image whose box (30, 20)-(70, 60) is white, the rest black."""
    img = np.zeros((100, 120, 3), np.uint8)
    img[20:60, 30:70] = 255
    return img


def test_crop_takes_the_box_and_margin_enlarges_it():
    img = _marked_image()
    tight = crop(img, (30, 20, 70, 60), 0.0, 40)
    assert tight.shape == (40, 40, 3) and tight.min() == 255
    wide = crop(img, (30, 20, 70, 60), 0.2, 48)  # 20 % larger: a black rim appears
    assert wide[0, 0].max() == 0 and wide[24, 24].min() == 255
    assert np.isclose((wide == 255).all(-1).mean(), (1 / 1.2) ** 2, atol=0.05)


def test_crop_at_border_keeps_shape_and_center_fallback():
    img = _marked_image()
    assert crop(img, (100, 80, 130, 110), 0.0, 32).shape == (32, 32, 3)
    c = crop(img, None, 0.0, 50)  # central 100x100 square of the 100x120 frame
    assert c.shape == (50, 50, 3)


def test_largest_face_rule():
    assert detectors.largest([(0, 0, 10, 10), (5, 5, 40, 40), (0, 0, 20, 20)]) == (5, 5, 40, 40)
    assert detectors.largest([]) is None


def test_haar_defaults_to_20_percent_margin_and_blank_image_falls_back():
    spec = detectors.get("haar")
    assert spec.default_margin == pytest.approx(0.2)
    detect = spec.factory()
    assert detect(np.full((120, 120, 3), 128, np.uint8), None) is None


class _Blank:
    def load(self, items):
        return [(np.full((64, 64, 3), 90, np.uint8), None) for _ in items]


def test_failed_detections_are_counted_not_dropped():
    crops, fallback, boxes, *_ = crop_chunk(_Blank(), ["a", "b", "c"], "haar", 0.2, 32)
    assert crops.shape == (3, 32, 32, 3) and fallback.tolist() == [True, True, True]
    assert (boxes == -1).all()
    _, fb_center, *_ = crop_chunk(_Blank(), ["a"], "center", 0.0, 32)
    assert fb_center.tolist() == [False]  # a centre crop by design is not a failure


def test_groundtruth_uses_the_synthetic_box():
    src = SyntheticSource(DataConfig(n_subjects=1, per_class=1, image_size=64))
    _, fallback, boxes, *_ = crop_chunk(src, ["synthetic:0", "synthetic:3"], "groundtruth", 0.0, 32)
    assert not fallback.any() and (boxes[:, 2] > boxes[:, 0]).all()


def test_unknown_detector_suggests():
    with pytest.raises(ValueError, match="did you mean 'haar'"):
        detectors.get("haarr")


def test_cache_key_and_chunks(tmp_path):
    ident = {"source": "synthetic", "seed": 0}
    k = cache_key(ident, "haar", 0.2, 64)
    assert k == cache_key(dict(ident), "haar", 0.2, 64)
    assert (
        len(
            {
                k,
                cache_key(ident, "haar", 0.1, 64),
                cache_key(ident, "center", 0.2, 64),
                cache_key(ident, "haar", 0.2, 32),
                cache_key({**ident, "seed": 1}, "haar", 0.2, 64),
            }
        )
        == 5
    )
    c = CropCache(tmp_path, k)
    crops = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    c.put_chunk(0, crops, np.array([True, False]), np.zeros((2, 4), np.int32), np.zeros(2, bool))
    got = c.get_chunk(0)
    assert c.has_chunk(0) and not c.has_chunk(1) and not c.complete
    assert np.array_equal(got[0], crops) and got[1].tolist() == [True, False]
    c.mark_complete({"n": 2})
    assert c.complete


# --- real detectors: mtcnn (seed 000), dlib (seed 001), haar (seed 002) -------------------------

# Building MTCNN (torch + facenet-pytorch import, weights) takes ~3 s in a fresh process.
REAL = ("haar", "dlib", pytest.param("mtcnn", marks=pytest.mark.slow))
ASTRONAUT_FACE = (175, 70, 265, 170)  # the face in skimage.data.astronaut(), by eye
MIN_IOU = 0.5  # the detectors score 0.82-0.90 on it; any centre crop scores < 0.06


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def _blank() -> np.ndarray:
    return np.full((160, 160, 3), 128, np.uint8)


def _two_faces(astronaut: np.ndarray, big_left: bool) -> tuple[np.ndarray, tuple, tuple]:
    """Grey canvas with the astronaut's face pasted twice, at scale 1 and 0.55.

    Returns the image and the reference face boxes (large, small), scaled from ASTRONAUT_FACE.
    """
    patch, (px, py) = astronaut[20:220, 120:320], (120, 20)
    canvas = np.full((300, 560, 3), 128, np.uint8)
    places = {1.0: (20, 40), 0.55: (330, 80)} if big_left else {1.0: (300, 40), 0.55: (20, 80)}
    refs = []
    for scale, (x, y) in places.items():
        p = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas[y : y + p.shape[0], x : x + p.shape[1]] = p
        f = ASTRONAUT_FACE
        refs.append(
            (
                x + (f[0] - px) * scale,
                y + (f[1] - py) * scale,
                x + (f[2] - px) * scale,
                y + (f[3] - py) * scale,
            )
        )
    return canvas, refs[0], refs[1]


class _PairSource(Source):
    """Two images: the astronaut (a face) and a uniform grey one (no face)."""

    def __init__(self, astronaut: np.ndarray):
        self.images = {"astronaut": astronaut, "blank": _blank()}

    def manifest(self) -> pd.DataFrame:
        return pd.DataFrame({"item": list(self.images)})

    def identity(self) -> dict:
        return {"source": "pair"}

    def load(self, items):
        return [(self.images[i], None) for i in items]


def _valid(box, shape) -> bool:
    h, w = shape[:2]
    return (
        all(isinstance(v, int) for v in box)
        and 0 <= box[0] < box[2] <= w
        and (0 <= box[1] < box[3] <= h)
    )


def test_reference_threshold_rejects_centre_crops(astronaut):
    h, w = astronaut.shape[:2]
    assert _iou((0, 0, w, h), ASTRONAUT_FACE) < 0.1  # detectors.crop's fallback square
    assert _iou((w // 4, h // 4, 3 * w // 4, 3 * h // 4), ASTRONAUT_FACE) < 0.1


@pytest.mark.parametrize("name", REAL)
def test_real_detector_finds_the_astronaut_face(name, astronaut):
    box = detectors.get(name).factory()(astronaut, None)
    assert box is not None and _valid(box, astronaut.shape)
    assert _iou(box, ASTRONAUT_FACE) >= MIN_IOU


@pytest.mark.parametrize("name", REAL)
def test_real_detector_blank_image_is_one_counted_fallback(name, astronaut):
    assert detectors.get(name).factory()(_blank(), None) is None
    spec = detectors.get(name)
    crops, fallback, boxes, *_ = crop_chunk(
        _PairSource(astronaut), ["astronaut", "blank"], name, spec.default_margin, 32
    )
    assert crops.shape == (2, 32, 32, 3)
    assert fallback.tolist() == [False, True] and int(fallback.sum()) == 1
    assert _iou(tuple(boxes[0]), ASTRONAUT_FACE) >= MIN_IOU and (boxes[1] == -1).all()


@pytest.mark.parametrize("name", ["haar", "dlib"])
@pytest.mark.parametrize("big_left", [True, False])
def test_two_faces_keep_the_largest(name, big_left, astronaut):
    image, large, small = _two_faces(astronaut, big_left)
    box = detectors.get(name).factory()(image, None)
    assert box is not None and _valid(box, image.shape)
    assert _iou(box, large) >= MIN_IOU and _iou(box, small) == 0


def test_dlib_prefers_area_to_score_on_two_faces(astronaut):
    """The small face scores higher in dlib here, so this checks area really comes first."""
    image, large, small = _two_faces(astronaut, big_left=True)
    rects, scores, _ = detectors._load_dlib().run(image, 1, 0.0)
    found = [(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in rects]
    best = found[int(np.argmax(scores))]
    assert len(found) == 2 and _iou(best, small) >= MIN_IOU  # else the test proves nothing
    assert _iou(detectors.get("dlib").factory()(image, None), large) >= MIN_IOU


@pytest.mark.slow
@pytest.mark.parametrize("big_left", [True, False])
def test_mtcnn_two_faces_keep_the_most_probable(big_left, astronaut):
    image, large, small = _two_faces(astronaut, big_left)
    raw, probs = detectors._load_mtcnn("cpu").detect(image)
    assert len(raw) == 2
    expected = detectors.clip_box(raw[int(np.argmax(probs.astype(float)))], image.shape)
    box = detectors.get("mtcnn").factory()(image, None)
    assert box == expected and _valid(box, image.shape)
    assert max(_iou(box, large), _iou(box, small)) >= MIN_IOU


def test_selection_rules_on_synthetic_arrays():
    big, small, near = (0, 0, 100, 100), (200, 0, 250, 50), (300, 0, 396, 100)  # near: 96 %
    assert detectors.most_probable([big, small], np.array([0.90, 0.99])) == small
    assert detectors.most_probable([big, small], [0.99, 0.99]) == big  # tie → first listed
    assert detectors.most_probable([], []) is None
    # dlib: area first, even against a much higher score ...
    assert detectors.largest_then_score([small, big], [3.0, 0.1]) == big
    # ... but within 10 % of the largest area the score decides; exact ties → first.
    assert detectors.largest_then_score([big, near], [0.1, 1.2]) == near
    assert detectors.largest_then_score([big, near, small], [1.2, 0.1, 9.0]) == big
    assert detectors.largest_then_score([big, (0, 0, 100, 100)], [1.0, 1.0]) == big
    assert detectors.largest_then_score([], []) is None


def test_clip_box_rounds_clips_and_rejects_empty_boxes():
    assert detectors.clip_box((-5.4, 10.6, 50.2, 130.0), (100, 120, 3)) == (0, 11, 50, 100)
    assert detectors.clip_box((130, 10, 150, 40), (100, 120, 3)) is None  # right of the image
    assert detectors.clip_box((10, 10, 10.2, 40), (100, 120, 3)) is None  # zero width


class _FakeMTCNN:
    def __init__(self, boxes, probs):
        self.out = boxes, probs

    def detect(self, image):
        return self.out


def test_mtcnn_detect_clips_and_skips_boxes_outside_the_image(monkeypatch):
    img = np.zeros((100, 120, 3), np.uint8)
    boxes = np.array([[-10.3, 5.0, 60.0, 140.0], [200.0, 10.0, 260.0, 70.0]], dtype=object)
    fake = _FakeMTCNN(boxes, np.array([0.8, 0.99], dtype=object))  # most probable is outside
    monkeypatch.setattr(detectors, "_load_mtcnn", lambda device: fake)
    assert detectors.get("mtcnn").factory()(img, None) == (0, 5, 60, 100)
    fake.out = np.array([[200.0, 10.0, 260.0, 70.0]], dtype=object), np.array([0.9], dtype=object)
    assert detectors.get("mtcnn").factory()(img, None) is None  # degenerate after clipping
    fake.out = None, [None]  # what facenet-pytorch returns when it finds nothing
    assert detectors.get("mtcnn").factory()(img, None) is None


def test_dlib_detect_clips_inclusive_rects(monkeypatch):
    import dlib

    class Fake:
        def run(self, image, upsample, threshold):
            assert image.flags["C_CONTIGUOUS"] and image.dtype == np.uint8 and upsample == 1
            rects = [dlib.rectangle(-20, -10, 49, 59), dlib.rectangle(600, 600, 700, 700)]
            return rects, [0.5, 2.0], [0, 0]

    monkeypatch.setattr(detectors, "_load_dlib", lambda: Fake())
    strided = np.zeros((100, 240, 3), np.uint8)[:, ::2]  # dlib rejects non-contiguous arrays
    assert detectors.get("dlib").factory()(strided, None) == (0, 0, 50, 60)


def test_new_detectors_margins_and_fallback_counting():
    for name in ("mtcnn", "dlib"):
        spec = detectors.get(name)
        assert spec.default_margin == 0.0 and spec.counts_fallbacks


@pytest.mark.slow
def test_mtcnn_is_built_once_per_process():
    detectors.get("mtcnn").factory()
    hits = detectors._load_mtcnn.cache_info().hits
    detectors.get("mtcnn").factory()
    assert detectors._load_mtcnn.cache_info().hits == hits + 1


def test_mtcnn_runs_on_cuda_only_where_the_process_sees_a_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert detectors._mtcnn_device() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert detectors._mtcnn_device() == "cuda"


@pytest.mark.parametrize(
    ("loader", "module", "hint"),
    [
        ("_load_mtcnn", "facenet_pytorch", "pip install 'fer_ray[faces]'"),
        ("_load_dlib", "dlib", "pip install dlib-bin"),
    ],
)
def test_missing_library_says_how_to_install_it(loader, module, hint, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    load = getattr(detectors, loader).__wrapped__  # bypass the per-process cache
    with pytest.raises(ImportError, match=re.escape(hint)):
        load("cpu") if loader == "_load_mtcnn" else load()


def test_native_fallback_cuts_the_central_pixels_unscaled():
    img = np.arange(300 * 400 * 3, dtype=np.uint32).reshape(300, 400, 3).astype(np.uint8)
    out = crop(img, None, 0.0, 224, "native")
    assert np.array_equal(out, img[38:262, 88:312])  # seed 000: "the central 224x224 area"
    small = crop(img[:100, :100], None, 0.0, 224, "native")  # smaller than 224: the square
    assert np.array_equal(small, crop(img[:100, :100], None, 0.0, 224, "square"))
    boxed = crop(img, (10, 10, 60, 60), 0.0, 32, "native")  # a detected face ignores the rule
    assert np.array_equal(boxed, crop(img, (10, 10, 60, 60), 0.0, 32))
