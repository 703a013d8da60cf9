"""prepare on real on-disk layouts: unreadable images and the data set's own test split."""

import numpy as np
import pytest

from fer_ray.errors import DataError
from fer_ray.stages.prepare import load_prepared
from tests.conftest import smoke_config
from tests.data import fixtures

pytestmark = pytest.mark.slow  # a Ray session and real crop tasks


def _folder_with_a_broken_image(root):
    info = fixtures.write_imagefolder(root)
    bad = root / "calm" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    return info, bad


def test_unreadable_image_stops_the_run_naming_it(ray_session, tmp_path):
    _, bad = _folder_with_a_broken_image(tmp_path / "data")
    cfg = smoke_config(
        tmp_path, "data.name=imagefolder", f"data.root={tmp_path / 'data'}", "faces.detector=center"
    )
    with pytest.raises(DataError, match=r"1 of 9 images .* could not be read") as e:
        load_prepared(cfg)
    assert str(bad) in str(e.value) and "data.skip_unreadable=true" in str(e.value)


def test_skip_unreadable_goes_on_and_counts_it(ray_session, tmp_path):
    info, bad = _folder_with_a_broken_image(tmp_path / "data")
    cfg = smoke_config(
        tmp_path,
        "data.name=imagefolder",
        f"data.root={tmp_path / 'data'}",
        "faces.detector=center",
        "data.skip_unreadable=true",
    )
    p = load_prepared(cfg)
    assert p.summary["unreadable"] == 1 and p.summary["unreadable_items"] == [str(bad)]
    assert len(p.manifest) == len(p.crops) == 8 and str(bad) not in set(p.manifest["item"])
    images = p.crops.take(np.arange(8))
    # the kept crops are the real images, not the black placeholder of the broken one
    assert (images.reshape(len(images), -1).max(1) > 0).all()
    assert sorted(p.class_names) == info["classes"]
