"""features: build the trial data bundle once, in a Ray task, and share it by reference.

When the feature cache applies, the task (on a GPU when the config asks for one) runs the
frozen trunk once per image; the bundle stays in the object store and each trial gets it by
reference, never from a driver-local path.
"""

from __future__ import annotations

import time

import numpy as np
import ray
import torch

from fer_ray import layout
from fer_ray.config import Config
from fer_ray.data import recipes
from fer_ray.data.splits import holdout_and_folds
from fer_ray.stages.prepare import Prepared
from fer_ray.train.bundle import build_bundle
from fer_ray.train.features import cache_applicable


@ray.remote(num_returns=2)
def _bundle_task(cfg, images, y, groups, test, folds, n_classes, cache_dir, threads):  # noqa: ANN001
    torch.set_num_threads(threads)  # Ray pins tasks to 1 thread; this one owns `threads` CPUs
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return build_bundle(cfg, images, y, groups, test, folds, n_classes, cache_dir, device)


def build(cfg: Config, prepared: Prepared) -> tuple[ray.ObjectRef, dict]:
    """Object ref to the TrialData bundle, and facts for the report."""
    m = prepared.manifest
    y = m["label"].to_numpy(np.int64)
    groups = m["group"].astype(str).to_numpy()
    test, folds = holdout_and_folds(
        y,
        groups,
        folds=cfg.grid.folds,
        seed=cfg.seed,
        test_fraction=cfg.ensemble.test_fraction,
        test_split=cfg.data.test_split,
        own_split=m["split"].fillna("").to_numpy(),
    )
    use, why = cache_applicable(cfg.model, cfg.train)
    t0 = time.time()
    gpus = 1 if cfg.resources.gpus_per_trial > 0 else 0
    cache_dir = layout.cache_root(cfg, "weights")
    # pretraining and the trunk pass run before any trial: give them a node's cores (at most 8)
    threads = max(1, min(8, int(ray.cluster_resources().get("CPU", 1))))
    ref, pre_ref = _bundle_task.options(num_gpus=gpus, num_cpus=threads).remote(
        cfg, prepared.images, y, groups, test, folds, len(prepared.class_names), cache_dir, threads
    )
    pretrain = ray.get(pre_ref)
    info = {
        "weights": cfg.model.weights,
        "pretrain": pretrain,
        "recipe": f"{cfg.train.recipe}: {recipes.get(cfg.train.recipe).description}",
        "feature_cache": use,
        "feature_cache_reason": why,
        "feature_seconds": round(time.time() - t0, 2),
        "n_test": int(test.sum()),
        "test_holdout": (
            f"the data set's own '{cfg.data.test_split}' split"
            if cfg.data.test_split
            else f"grouped holdout of about {cfg.ensemble.test_fraction:g}"
        ),
        "test_fraction_realised": round(float(test.mean()), 4),
        "fold_sizes": [int((folds == f).sum()) for f in range(cfg.grid.folds)],
    }
    if pretrain:
        h = pretrain["history"][-1] if pretrain["history"] else {}
        print(
            f"[weights] synthetic AU-pretrained backbone ({pretrain['cache']}, "
            f"{pretrain['images']} disjoint images, {pretrain['seconds']:.0f}s to train;"
            f" val MSE {h.get('val_mse', float('nan')):.4f} vs {h.get('baseline_mse', float('nan')):.4f}"
            " predicting the mean)",
            flush=True,
        )
    print(
        f"[features] {'trunk activations cached' if use else 'no cache: ' + why}"
        f" ({info['feature_seconds']:.1f}s) · test holdout {info['n_test']} images",
        flush=True,
    )
    return ref, info
