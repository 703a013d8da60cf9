"""features: build the trial data bundle once and share it by reference.

The stand-in backbone's pretraining and the frozen trunk's pass over every image run as Ray
tasks (on a GPU when the config asks for one), each asking for ``resources.features_cpus``
CPUs and using that many threads. Their results are cached on disk by the driver, keyed by
their inputs, so a resumed or repeated run reads them instead of recomputing; the tasks never
read a driver-local path. The bundle is put into the object store once and every trial reads
it by reference.

Progress: Ray starts without forwarding worker output (``cluster.connect``, log_to_driver off),
so a task's own prints would be lost; the two tasks instead put their progress lines (epoch k of
n with loss and seconds per epoch; images done of total and images/s) on a small Ray queue that
the driver prints from while it waits (``_await``).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from ray.util.queue import Queue

from fer_ray import layout
from fer_ray.config import Config
from fer_ray.data import recipes
from fer_ray.data.splits import run_splits
from fer_ray.models import weights as weight_sources
from fer_ray.models.pretrain import (
    load_pretrained,
    pretrain_backbone,
    pretrain_key,
    store_pretrained,
)
from fer_ray.stages.cluster import node_info
from fer_ray.stages.common import eta_text, progress, set_threads
from fer_ray.stages.prepare import Prepared
from fer_ray.train.bundle import TrialData
from fer_ray.train.features import (
    cache_applicable,
    features_key,
    load_cached,
    store_cached,
    trunk_features,
)


def _sender(queue: Queue | None) -> Callable[[str, int, int], None]:
    """Task side: put one progress line (text, done, total) for the driver to print."""

    def send(text: str, done: int, total: int) -> None:
        if queue is None:
            return
        with contextlib.suppress(Exception):  # progress is output only: never fail the task
            queue.put_nowait((text, done, total))

    return send


def epoch_line(row: dict[str, Any]) -> str:
    """``pretraining epoch 3/8 · loss 0.4123 · val_mse 0.0312 · 31.2s/epoch · ETA 2m36s`` (from
    ``pretrain_backbone``'s ``on_epoch`` row)."""
    k, n = int(row["epoch"]), int(row["epochs"])
    skip = ("epoch", "epochs", "seconds", "train_loss")
    scores = "".join(
        f" · {key} {v:.4f}" for key, v in row.items() if key not in skip and isinstance(v, float)
    )
    sec = float(row["seconds"])
    return (
        f"pretraining epoch {k}/{n} · loss {float(row['train_loss']):.4f}{scores}"
        f" · {sec:.1f}s/epoch" + (f" · {eta_text(sec * (n - k))}" if k < n else "")
    )


def images_line(done: int, total: int, seconds: float) -> str:
    """``trunk features 512/2100 images · 41 images/s · ETA 39s``."""
    rate = done / seconds if seconds > 0 and done > 0 else None
    speed = f"{rate:.0f} images/s" if rate else "? images/s"
    left = (total - done) / rate if rate else None
    return f"trunk features {done}/{total} images · {speed}" + (
        f" · {eta_text(left)}" if done < total else ""
    )


@ray.remote
def _pretrain_task(cfg: Config, threads: int, queue: Queue | None = None) -> tuple:
    set_threads(cfg, threads)  # Ray pins tasks to 1 thread; this one owns `threads` CPUs
    t0 = time.time()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    send = _sender(queue)
    state, facts = pretrain_backbone(
        cfg, device, on_epoch=lambda row: send(epoch_line(row), row["epoch"], row["epochs"])
    )
    work = {"unit": "pretrain", **node_info(), "seconds": round(time.time() - t0, 3)}
    return state, facts, work


@ray.remote
def _trunk_task(cfg: Config, images: np.ndarray, state: dict | None, threads: int,
                queue: Queue | None = None) -> tuple:  # fmt: skip
    set_threads(cfg, threads)
    t0 = time.time()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    send = _sender(queue)
    x = trunk_features(
        cfg.model, images, device=device, backbone_state=state, recipe=cfg.train.recipe,
        on_batch=lambda d, n: send(images_line(d, n, time.time() - t0), d, n),
    )  # fmt: skip
    return x, {"unit": "trunk features", **node_info(), "seconds": round(time.time() - t0, 3)}


def _await(start: Callable[[Queue], ray.ObjectRef], stage: str) -> Any:
    """Run a task (``start(queue)`` submits it) and return its result, printing the progress
    lines it puts on the queue while it runs."""
    queue = Queue(actor_options={"num_cpus": 0})
    try:
        ref = start(queue)
        while True:
            ready, _ = ray.wait([ref], timeout=1.0)
            for text, done, total in queue.get_nowait_batch(queue.qsize()):
                progress(stage, text, False, done, total)
            if ready:
                return ray.get(ref)
    finally:
        queue.shutdown()


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
    n = cfg.model.pretrain_epochs
    # a plain print: the throttle would hide the first epoch's line (seconds per epoch, ETA)
    print(f"[weights] pretraining the {cfg.model.weights} stand-in: {n} epochs", flush=True)
    t0 = time.time()
    state, facts, where = _await(lambda q: task.remote(cfg, threads, q), "weights")
    progress("weights", f"pretrained {n} epochs in {time.time() - t0:.0f}s", True, n, n)
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
    n, t0 = len(prepared.images), time.time()
    x, where = _await(lambda q: task.remote(cfg, prepared.images, state, threads, q), "features")
    progress("features", images_line(n, n, time.time() - t0), True, n, n)
    work.append(where)
    store_cached(path, x)
    return x, "written"


def build(cfg: Config, prepared: Prepared) -> tuple[ray.ObjectRef, dict]:
    """Object ref to the TrialData bundle, and facts for the report."""
    m = prepared.manifest
    y = m["label"].to_numpy(np.int64)
    groups = m["group"].astype(str).to_numpy()
    test, folds = run_splits(m, cfg)
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
