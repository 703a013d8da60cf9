import numpy as np
import pandas as pd
import pytest

from fer_ray.recipes.rules.export import read_table, table, write_table


def test_member_table_round_trips_through_parquet_and_csv(tmp_path):
    feats = np.array([[0.5, -1.25], [2.0, 0.0], [1.0, 3.5]], dtype=np.float32)
    probs = np.array([[0.2, 0.8], [0.9, 0.1], [0.4, 0.6]])
    frame = table(feats, probs, np.array([1, 0, 0]), np.array(["train", "val", "test"], object))
    assert frame["pred"].tolist() == [1, 0, 1]
    assert frame["p_pred"].tolist() == pytest.approx([0.8, 0.9, 0.6], rel=1e-6)
    for name in ("features.parquet", "features.csv"):
        write_table(frame, tmp_path / "m" / name)
        back = read_table(tmp_path / "m" / name)
        pd.testing.assert_frame_equal(back, frame, check_dtype=name.endswith(".parquet"))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "features.csv",
        "features.parquet",
    ]
