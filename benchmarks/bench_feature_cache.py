"""Cached-trunk training vs training from pixels, side by side in one run.

    python benchmarks/bench_feature_cache.py [--size 64] [--n 256] [--device cpu|cuda] [--quick]

Prints the time per training image for one epoch of the seed-000 tail (layer4.1 + head)
on cached trunk activations and on pixels (trunk forward without grad + tail), the ratio,
and the one-off cost of computing the cache. Also checks the two paths give the same logits.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from fer_ray.config import ModelConfig, TrainConfig
from fer_ray.models.factory import create_model
from fer_ray.train.features import normalize, trunk_features
from fer_ray.train.loop import Split, make_optimizer, train_epoch


def _epoch_time(module: torch.nn.Module, data: Split, cfg: TrainConfig, device: str) -> float:
    opt = make_optimizer([p for p in module.parameters() if p.requires_grad], cfg, 1e-3)
    gen = torch.Generator().manual_seed(0)
    train_epoch(module, Split(data.x[:64], data.y[:64]), opt, cfg.batch_size, gen)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    train_epoch(module, data, opt, cfg.batch_size, gen)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / len(data)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="64 images of 48 px")
    args = p.parse_args()
    if args.quick:  # smaller defaults; values given on the command line still win
        p.set_defaults(size=48, n=64)
        args = p.parse_args()
    mcfg, tcfg = ModelConfig(weights="none"), TrainConfig(batch_size=64)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, args.size, args.size, 3), dtype=np.uint8)
    y = torch.from_numpy(rng.integers(0, 7, args.n))
    t0 = time.perf_counter()
    feats = trunk_features(mcfg, images, device=args.device)
    t_cache = (time.perf_counter() - t0) / args.n
    model = create_model(mcfg, 7, 100, head_seed=0).to(args.device)
    with torch.no_grad():
        model.eval()
        x = normalize(images[:32]).to(args.device)
        diff = (model(x) - model.tail(torch.from_numpy(feats[:32]).to(args.device))).abs().max()
    cached = _epoch_time(model.tail, Split(torch.from_numpy(feats), y), tcfg, args.device)
    pixels = _epoch_time(model, Split(normalize(images), y), tcfg, args.device)
    print(
        f"device {args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else torch.get_num_threads()} "
        f"{'' if args.device == 'cuda' else 'threads'}), {args.n} images of {args.size} px, batch 64"
    )
    print(f"trunk features once:           {1e3 * t_cache:7.3f} ms/img  shape {feats.shape[1:]}")
    print(f"train step, cached features:   {1e3 * cached:7.3f} ms/img")
    print(f"train step, from pixels:       {1e3 * pixels:7.3f} ms/img")
    print(f"ratio pixels / cached:         {pixels / cached:7.2f}x")
    print(f"max |logit diff| cached vs full model: {float(diff):.2e}")


if __name__ == "__main__":
    main()
