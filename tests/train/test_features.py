"""The cached-trunk path must be the same network as the full model."""

import numpy as np
import pytest
import torch

from fer_ray.config import ModelConfig, TrainConfig
from fer_ray.models.factory import create_model
from fer_ray.train.features import cache_applicable, normalize, trunk_features

CFG = ModelConfig(weights="none")


def _images(n=12, size=64):
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_cached_logits_equal_full_model():
    images = _images()
    feats = trunk_features(CFG, images, batch_size=5)
    model = create_model(CFG, 7, 100, head_seed=3).eval()
    with torch.no_grad():
        full = model(normalize(images))
        cached = model.tail(torch.from_numpy(feats))
    assert feats.shape == (12, 512, 2, 2)
    assert (full - cached).abs().max().item() <= 1e-4


def test_cached_gradients_equal_full_model():
    images, y = _images(), torch.arange(12) % 7
    feats = torch.from_numpy(trunk_features(CFG, images))
    grads = []
    for x, path in ((normalize(images), "full"), (feats, "cached")):
        model = create_model(CFG, 7, 100, head_seed=3).train()
        module = model if path == "full" else model.tail
        torch.nn.functional.cross_entropy(module(x), y).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    full, cached = grads
    assert full.keys() == cached.keys() and len(full) == 10
    for name in full:
        scale = full[name].abs().max().item() + 1e-12
        assert (full[name] - cached[name]).abs().max().item() / scale < 1e-4, name


def test_cache_applicability_rules():
    assert cache_applicable(CFG, TrainConfig())[0]
    assert not cache_applicable(CFG, TrainConfig(recipe="seed002"))[0]
    assert not cache_applicable(ModelConfig(feature_cache="off"), TrainConfig())[0]
    assert not cache_applicable(ModelConfig(train_last_convs=-1), TrainConfig())[0]


def test_trunk_features_refuse_a_random_recipe():
    images = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="random recipe 'seed003'"):
        trunk_features(ModelConfig(weights="none"), images, recipe="seed003")


def test_features_per_shard_equal_one_pass_byte_for_byte():
    """Shards of a multiple of the trunk's batch (resources.shard_images) batch the images as
    one pass does, so the trial data's features do not depend on the sharding; the trunk
    built once per process (memo_key) is the same network as one built per call."""
    from fer_ray.config import TRUNK_BATCH

    images = _images(n=2 * TRUNK_BATCH + 44, size=32)
    whole = trunk_features(CFG, images)
    shards = [
        trunk_features(CFG, images[a : a + TRUNK_BATCH], memo_key="w")
        for a in range(0, len(images), TRUNK_BATCH)
    ]
    assert [len(s) for s in shards] == [128, 128, 44]
    assert np.concatenate(shards).tobytes() == whole.tobytes()
