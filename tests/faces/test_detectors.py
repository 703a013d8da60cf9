import numpy as np
import pytest

from fer_ray.config import DataConfig
from fer_ray.data.datasets import SyntheticSource
from fer_ray.faces import detectors
from fer_ray.faces.cache import CropCache, cache_key
from fer_ray.stages.prepare import crop_chunk


def _marked_image():
    """A 100x120 image whose box (30, 20)-(70, 60) is white, the rest black."""
    img = np.zeros((100, 120, 3), np.uint8)
    img[20:60, 30:70] = 255
    return img


def test_crop_takes_the_box_and_margin_enlarges_it():
    img = _marked_image()
    tight = detectors.crop(img, (30, 20, 70, 60), 0.0, 40)
    assert tight.shape == (40, 40, 3) and tight.min() == 255
    wide = detectors.crop(img, (30, 20, 70, 60), 0.2, 48)  # 20 % larger: a black rim appears
    assert wide[0, 0].max() == 0 and wide[24, 24].min() == 255
    assert np.isclose((wide == 255).all(-1).mean(), (1 / 1.2) ** 2, atol=0.05)


def test_crop_at_border_keeps_shape_and_center_fallback():
    img = _marked_image()
    assert detectors.crop(img, (100, 80, 130, 110), 0.0, 32).shape == (32, 32, 3)
    c = detectors.crop(img, None, 0.0, 50)  # central 100x100 square of the 100x120 frame
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
    crops, fallback, boxes = crop_chunk(_Blank(), ["a", "b", "c"], "haar", 0.2, 32)
    assert crops.shape == (3, 32, 32, 3) and fallback.tolist() == [True, True, True]
    assert (boxes == -1).all()
    _, fb_center, _ = crop_chunk(_Blank(), ["a"], "center", 0.0, 32)
    assert fb_center.tolist() == [False]  # a centre crop by design is not a failure


def test_groundtruth_uses_the_synthetic_box():
    src = SyntheticSource(DataConfig(n_subjects=1, per_class=1, image_size=64))
    crops, fallback, boxes = crop_chunk(src, ["synthetic:0", "synthetic:3"], "groundtruth", 0.0, 32)
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
    c.put_chunk(0, crops, np.array([True, False]), np.zeros((2, 4), np.int32))
    got = c.get_chunk(0)
    assert c.has_chunk(0) and not c.has_chunk(1) and not c.complete
    assert np.array_equal(got[0], crops) and got[1].tolist() == [True, False]
    c.mark_complete({"n": 2})
    assert c.complete
