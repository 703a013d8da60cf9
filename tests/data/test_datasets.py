import numpy as np
import pytest

from fer_ray.config import DataConfig
from fer_ray.data.datasets import create_source, read_manifest, select_classes
from fer_ray.errors import ConfigError, DataError


def test_synthetic_manifest_columns_groups_and_counts():
    m, names = read_manifest(DataConfig(n_subjects=4, per_class=2))
    assert list(m.columns[:5]) == ["item", "label", "label_name", "group", "split"]
    assert len(m) == 4 * 7 * 2 and m["group"].nunique() == 4
    assert names == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert (m.groupby("label").size() == 8).all()
    assert [names[i] for i in m["label"]] == m["label_name"].tolist()


def test_synthetic_source_loads_what_the_manifest_names():
    cfg = DataConfig(n_subjects=2, per_class=1, image_size=48)
    src = create_source(cfg)
    ((img, box),) = src.load(["synthetic:5"])
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= 48 and 0 <= y0 < y1 <= 48
    assert src.identity()["image_size"] == 48


def test_class_selection_renumbers_labels():
    m, _ = read_manifest(DataConfig(n_subjects=2, per_class=1))
    kept, names = select_classes(m, ["sad", "happy"])
    assert names == ["sad", "happy"] and sorted(kept["label"].unique()) == [0, 1]
    assert (kept.loc[kept["label_name"] == "sad", "label"] == 0).all()
    with pytest.raises(DataError, match="contempt"):
        select_classes(m, ["contempt"])


def test_unknown_dataset_suggests():
    with pytest.raises(ConfigError, match=r"data\.name='synthetc'.*did you mean 'synthetic'"):
        create_source(DataConfig(name="synthetc"))
