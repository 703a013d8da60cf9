"""features: build the trial data bundle once and share it by reference.

The stand-in backbone's pretraining and the frozen trunk's pass over every image run as Ray
tasks (on a GPU when the config asks for one), each asking for ``resources.features_cpus``
CPUs and using that many threads. Their results are cached on disk by the driver, keyed by
their inputs, so a resumed or repeated run reads them instead of recomputing; the tasks never
read a driver-local path. The bundle is put into the object store once and every trial reads
it by reference.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch

from fer_ray import layout
from fer_ray.config import Config
from fer_ray.data import recipes
from fer_ray.data.splits import holdout_and_folds
from fer_ray.models import weights as weight_sources
from fer_ray.models.pretrain import (
    load_pretrained,
    pretrain_backbone,
    pretrain_key,
    store_pretrained,
)
from fer_ray.stages.cluster import node_info
from fer_ray.stages.common import set_threads
from fer_ray.stages.prepare import Prepared
from fer_ray.train.bundle import TrialData
from fer_ray.train.features import (
    cache_applicable,
    features_key,
    load_cached,
    store_cached,
    trunk_features,
)


@ray.remote
def _pretrain_task(cfg: Config, threads: int) -> tuple[dict, dict, dict]:
    set_threads(cfg, threads)  # Ray pins tasks to 1 thread; this one owns `threads` CPUs
    t0 = time.time()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    state, facts = pretrain_backbone(cfg, device)
    work = {"unit": "pretrain", **node_info(), "seconds": round(time.time() - t0, 3)}
    return state, facts, work


@ray.remote
def _trunk_task(cfg: Config, images: np.ndarray, state: dict | None, threads: int) -> tuple:
    set_threads(cfg, threads)
    t0 = time.time()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = trunk_features(
        cfg.model, images, device=device, backbone_state=state, recipe=cfg.train.recipe
    )
    return x, {"unit": "trunk features", **node_info(), "seconds": round(time.time() - t0, 3)}


def _gpus(cfg: Config) -> float:
    r = cfg.resources
    return r.features_gpus if r.features_gpus is not None else float(r.gpus_per_trial > 0)


def _weights_identity(cfg: Config, pretrain: dict | None) -> str:
    if pretrain is not None:
        return f"stand-in {pretrain['key']}"
    path = Path(cfg.model.weights).expanduser()
    if weight_sources.source(cfg.model.weights) is None and path.is_file():
        return "sha256 " + hashlib.sha256(path.read_bytes()).hexdigest()[:20]
    return cfg.model.weights


def _backbone_state(cfg: Config, threads: int, device: str, work: list) -> tuple:
    """The stand-in's pretrained state (cached on disk by the driver), or (None, None)."""
    src = weight_sources.source(cfg.model.weights)
    if src is None or not src.stand_in:
        return None, None
    cache = layout.cache_root(cfg, "weights")
    key = pretrain_key(cfg, device, threads)
    stored = load_pretrained(cache, key)
    if stored is not None:
        return stored
    task = _pretrain_task.options(num_cpus=threads, num_gpus=_gpus(cfg))
    state, facts, where = ray.get(task.remote(cfg, threads))
    work.append(where)
    return state, store_pretrained(cache, key, state, facts)


def _trunk(cfg: Config, prepared: Prepared, state: Any, wkey: str, threads: int, device: str,
           work: list) -> tuple[np.ndarray, str]:  # fmt: skip
    """Cached trunk activations: read from disk, or computed by a task and stored."""
    key = features_key(
        cfg.model, cfg.train.recipe, prepared.summary["cache_key"], wkey, device, threads
    )
    path = layout.cache_root(cfg, "features") / f"{key}.npz"
    cached = load_cached(path)  # None when absent, or damaged (then moved aside)
    if cached is not None:
        return cached, "reused"
    task = _trunk_task.options(num_cpus=threads, num_gpus=_gpus(cfg))
    x, where = ray.get(task.remote(cfg, prepared.images, state, threads))
    work.append(where)
    store_cached(path, x)
    return x, "written"


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
    threads = cfg.resources.features_cpus
    device = "cuda" if _gpus(cfg) > 0 else "cpu"
    work: list[dict[str, Any]] = []
    state, pretrain = _backbone_state(cfg, threads, device, work)
    feature_cache = None
    if use:
        wkey = _weights_identity(cfg, pretrain)
        x, feature_cache = _trunk(cfg, prepared, state, wkey, threads, device, work)
        kind = "features"
    else:
        x, kind = prepared.images, "pixels"
    data = TrialData(x, kind, y, groups, test, folds, len(prepared.class_names), state,
                     cfg.train.recipe)  # fmt: skip
    info = {
        "weights": cfg.model.weights,
        "pretrain": pretrain,
        "recipe": f"{cfg.train.recipe}: {recipes.get(cfg.train.recipe).description}",
        "feature_cache": use,
        "feature_cache_reason": why,
        "feature_cache_disk": feature_cache,
        "feature_seconds": round(time.time() - t0, 2),
        "threads": threads,
        "device": device,
        "work": work,
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
        score = ", ".join(f"{k} {v:.4f}" for k, v in h.items() if k not in ("epoch", "train_loss"))
        kind = (
            "label-free"
            if pretrain.get("label_free", True)
            else "supervised: its targets give the class away"
        )
        print(
            f"[weights] {cfg.model.weights} stand-in, {pretrain.get('objective')} objective"
            f" ({kind}; {pretrain['cache']}, {pretrain['images']} disjoint images,"
            f" {pretrain['seconds']:.0f}s to train; last epoch {score})",
            flush=True,
        )
    print(
        f"[features] {'trunk activations ' + feature_cache if use else 'no cache: ' + why}"
        f" ({info['feature_seconds']:.1f}s) · test holdout {info['n_test']} images",
        flush=True,
    )
    return ray.put(data), info
