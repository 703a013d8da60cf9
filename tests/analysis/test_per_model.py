import numpy as np
import pytest

from fer_ray.analysis import per_model, pruning
from fer_ray.errors import ConfigError


def two_feature_model() -> per_model.ModelData:
    """Hidden unit i copies feature i; class i's logit is hidden unit i."""
    eye = np.eye(2)
    head = pruning.HeadWeights(eye, np.zeros(2), eye, np.zeros(2))
    return per_model.ModelData(head, np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]))


def test_every_member_analysis_is_registered_once_and_pairs_only_on_request():
    assert per_model.ANALYSES.names() == [
        "magnitude", "angles", "baselines", "sweep_random", "sweep_magnitude", "metrics",
    ]  # fmt: skip
    assert per_model.ON_REQUEST.names() == ["pairs"]


def test_run_finds_an_on_request_analysis_with_hand_computed_accuracies():
    out = per_model.run("pairs", two_feature_model(), per_model.Settings(), 0)
    # without feature 1 the second item's logits tie at 0 and argmax picks class 0 (wrong)
    assert out == {"full": 1.0, "matrix": [[1.0, 0.5], [0.5, 0.5]]}
    preds = per_model.run("metrics", two_feature_model(), per_model.Settings(), 0)
    assert preds == {"preds": [0, 1], "labels": [0, 1]}
    with pytest.raises(ConfigError, match="not a known per-model analysis"):
        per_model.run("pair", two_feature_model(), per_model.Settings(), 0)
