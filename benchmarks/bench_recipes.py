"""What a random augmentation recipe costs, side by side in one run.

    python benchmarks/bench_recipes.py [--size 64] [--n 256] [--threads 1] [--quick]

A random recipe (seed001-003) makes the frozen-trunk feature cache inapplicable, so a
trial trains from pixels and transforms every batch. For each recipe this prints the
time per training image of one epoch (seed 000's freeze policy: layer4.1 + head trained,
the trunk run without grad) from pixels with the recipe, the share of it spent in the
transform, and the ratio to the cached-feature epoch that `none` allows.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from fer_ray.config import ModelConfig, TrainConfig
from fer_ray.data import recipes
from fer_ray.models.factory import create_model
from fer_ray.train.features import trunk_features
from fer_ray.train.loop import Split, make_optimizer, train_epoch


def _epoch(module: torch.nn.Module, data: Split, cfg: TrainConfig, augment=None) -> float:  # noqa: ANN001
    opt = make_optimizer([p for p in module.parameters() if p.requires_grad], cfg, 1e-3)
    gen = torch.Generator().manual_seed(0)
    train_epoch(module, Split(data.x[:64], data.y[:64]), opt, cfg.batch_size, gen, augment)
    t0 = time.perf_counter()
    train_epoch(module, data, opt, cfg.batch_size, gen, augment)
    return (time.perf_counter() - t0) / len(data)


def _transform_time(recipe: recipes.Recipe, x: torch.Tensor, batch: int) -> float:
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for s in range(0, len(x), batch):
        recipe.train_batch(x[s : s + batch], gen)
    return (time.perf_counter() - t0) / len(x)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--threads", type=int, default=1, help="1 = one-CPU Ray trial")
    p.add_argument("--quick", action="store_true", help="64 images of 48 px")
    a = p.parse_args()
    if a.quick:  # smaller defaults; values given on the command line still win
        p.set_defaults(size=48, n=64)
        a = p.parse_args()
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (a.n, a.size, a.size, 3), dtype=np.uint8)
    y = torch.from_numpy(rng.integers(0, 7, a.n)).long()
    mcfg = ModelConfig(weights="none")
    tcfg = TrainConfig(batch_size=64)

    model = create_model(mcfg, 7, 100, head_seed=0)
    feats = torch.from_numpy(trunk_features(mcfg, images))
    cached = _epoch(model.tail, Split(feats, y), tcfg)
    print(
        f"size {a.size}px, {a.n} images, batch 64, torch threads {a.threads}; "
        f"ms per training image (one epoch)"
    )
    print(f"{'recipe':8} {'epoch':>8} {'transform':>10} {'share':>6} {'vs cached':>10}")
    print(f"{'cached':8} {cached * 1e3:8.2f} {'-':>10} {'-':>6} {1.0:9.1f}x")
    raw = torch.from_numpy(images)
    for name in ("none", "seed001", "seed002", "seed003"):
        recipe = recipes.get(name)
        model = create_model(mcfg, 7, 100, head_seed=0)
        if recipe.random:
            data, augment = Split(raw, y), recipe.train_batch
        else:
            data, augment = Split(recipe.eval_batch(raw), y), None
        per = _epoch(model, data, tcfg, augment)
        tr = _transform_time(recipe, raw, 64) if recipe.random else 0.0
        print(
            f"{name:8} {per * 1e3:8.2f} {tr * 1e3:10.3f} {tr / per:6.1%} {per / cached:9.1f}x"
            + ("  (pixels, no augmentation)" if not recipe.random else "")
        )


if __name__ == "__main__":
    main()
