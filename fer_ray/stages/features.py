"""features: build the trial data bundle once and share it by reference.

The stand-in backbone's pretraining runs as one Ray task; the frozen trunk's pass runs as one
task per feature shard (``resources.shard_images`` rows, spread over the nodes, the trunk built
once per worker process), on a GPU when the config asks for one, each asking for
``resources.features_cpus`` CPUs and using that many threads. Their results are cached on disk,
keyed by their inputs (features shard by shard), so a resumed or repeated run reads them
instead of recomputing. Where every node reads and writes the cache folder (a local Ray, or a
cluster whose runs folder is shared storage: ``cluster.cache_shared``) the trunk tasks read
their crop chunks and store their feature shards themselves, and stored shards are read by
tasks on the nodes: no pixel or feature passes through the driver. Elsewhere the driver reads
and stores them, one shard at a time, and the tasks never read a driver-local path. The bundle
holds one object reference per shard and is put into the object store once; every trial reads
it by reference and fetches the shards its rows are in.

Progress: Ray starts without forwarding worker output (``cluster.connect``, log_to_driver off),
so a task's own prints would be lost; the pretraining task puts its lines (epoch k of n with
loss and seconds per epoch) on a small Ray queue that the driver prints from while it waits
(``_await``); the trunk's line (images done of total, images/s) follows each finished shard.
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

from fer_ray import files, layout
from fer_ray.config import Config
from fer_ray.data import recipes
from fer_ray.data.splits import run_splits
from fer_ray.errors import StoredFileError
from fer_ray.models import weights as weight_sources
from fer_ray.models.pretrain import (
    load_pretrained,
    pretrain_backbone,
    pretrain_key,
    store_pretrained,
)
from fer_ray.stages.cluster import cache_shared, node_info
from fer_ray.stages.common import eta_text, progress, set_threads
from fer_ray.stages.prepare import Prepared
from fer_ray.stages.shards import covering, crop_sharded, fetch, shard_ranges
from fer_ray.train.bundle import TrialData
from fer_ray.train.features import (
    cache_applicable,
    features_key,
    load_cached,
    store_cached,
    trunk_features,
)
from fer_ray.train.rows import Sharded


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


@ray.remote(num_returns=2)
def _trunk_task(cfg: Config, state: dict | None, threads: int, memo_key: str, skip: int,
                n: int, queue: Queue | None, shard: int, disk: tuple | None,
                *chunks: np.ndarray) -> tuple:  # fmt: skip
    """One feature shard: rows ``skip..skip+n`` of the concatenated crop ``chunks`` (the
    shards that hold them, resolved by Ray on this node), through the trunk built once per
    worker process (``memo_key``); after each batch it puts (``shard``, rows done) on
    ``queue`` for the driver's progress line. With ``disk`` (the crops' ``CropShards``, the
    chunks to read, the feature shard's path: the cache is on storage every node shares) it
    reads its crop chunks and stores its features itself. Returns the features and the work
    row (with the features' row shape) as two objects."""
    set_threads(cfg, threads)
    t0 = time.time()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if disk is not None:
        crops_ref, which, _ = disk  # a reference inside a tuple: Ray leaves it to us
        crops = ray.get(crops_ref)
        chunks = tuple(crops.chunk(c) for c in which)
    images = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]

    def send(done: int, _total: int) -> None:
        if queue is not None:
            with contextlib.suppress(Exception):  # progress only: never fail the task
                queue.put_nowait((shard, done))

    x = trunk_features(
        cfg.model, images[skip : skip + n], device=device, backbone_state=state,
        recipe=cfg.train.recipe, memo_key=memo_key, on_batch=send,
    )  # fmt: skip
    if disk is not None:
        store_cached(Path(disk[2]), x)
    where = {**node_info(), "seconds": round(time.time() - t0, 3), "rows": n}
    return x, {**where, "row_shape": x.shape[1:]}


@ray.remote(num_returns=2)
def _load_shard_task(path: str) -> tuple:
    """A stored feature shard read on a node (shared cache): the array stays in that node's
    store; the second object is its row shape, or the damage found (for the driver to name)."""
    try:
        x = files.load_npz(Path(path), ("features",))["features"]
    except StoredFileError as e:
        return None, e
    return x, x.shape[1:]


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


def _read_shards(root: Path, ranges: list[tuple[int, int]], shared: bool) -> dict[int, Any]:
    """Feature shards stored under ``root``: on shared storage read by tasks on the nodes (no
    feature passes through the driver), else each put into the object store as the driver
    reads it, one at a time; a damaged one is moved aside and computed again."""
    paths = {i: root / f"shard_{i:05d}.npz" for i in range(len(ranges))}
    paths = {i: p for i, p in paths.items() if p.is_file()}
    if not shared:
        loaded = {i: load_cached(p) for i, p in paths.items()}
        return {i: (ray.put(x), x.shape[1:]) for i, x in loaded.items() if x is not None}
    task = _load_shard_task.options(scheduling_strategy="SPREAD")
    pending = {i: task.remote(str(p)) for i, p in paths.items()}
    refs: dict[int, Any] = {}
    for i, (x_ref, shape_ref) in pending.items():
        shape = ray.get(shape_ref)
        if isinstance(shape, StoredFileError):
            files.quarantine(shape, "feature cache entry")
        else:
            refs[i] = (x_ref, shape)
    return refs


def _compute_shards(cfg: Config, prepared: Prepared, state: Any, memo_key: str, threads: int,
                    todo: list[int], ranges: list, root: Path, work: list,
                    shared: bool) -> dict[int, Any]:  # fmt: skip
    """Trunk tasks for the shards ``todo`` (SPREAD over the nodes, a bounded number in
    flight). On a ``shared`` cache each task reads its crop chunks and stores its feature
    shard; else its crop chunks are put just before it is submitted (freed when it is done)
    and each feature shard is stored here as it arrives. Every shard stays in the store as the
    bundle's shard."""
    crops, refs = prepared.crops, {}
    crops_ref = ray.put(crops.on_disk()) if shared else None
    task = _trunk_task.options(num_cpus=threads, num_gpus=_gpus(cfg), scheduling_strategy="SPREAD")
    state_ref, lines = ray.put(state), Queue(actor_options={"num_cpus": 0})
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1) // threads))
    total, t0, queue, pending, partial = len(crops), time.time(), list(todo), {}, {}
    done = total - sum(ranges[i][1] - ranges[i][0] for i in todo)  # rows read from the cache
    try:
        while queue or pending:
            while queue and len(pending) < window:
                i = queue.pop(0)
                lo, hi = ranges[i]
                which, skip = covering(crops.counts, lo, hi)
                path = root / f"shard_{i:05d}.npz"
                disk = (crops_ref, which, str(path)) if shared else None
                chunk_refs = [] if shared else [ray.put(crops.chunk(c)) for c in which]
                x_ref, where_ref = task.remote(
                    cfg, state_ref, threads, memo_key, skip, hi - lo, lines, i, disk, *chunk_refs
                )
                pending[where_ref] = (i, x_ref)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            partial.update(dict(lines.get_nowait_batch(lines.qsize())))
            if not ready:  # a shard is running: its batches so far
                now = done + sum(partial.get(i, 0) for i, _ in pending.values())
                progress("features", images_line(now, total, time.time() - t0), False, now, total)
                continue
            i, x_ref = pending.pop(ready[0])
            where = ray.get(ready[0])
            if not shared:  # the task could not store it: stored here
                store_cached(root / f"shard_{i:05d}.npz", ray.get(x_ref))
            refs[i] = (x_ref, tuple(where.pop("row_shape")))
            work.append({"unit": f"trunk shard {i}", **where})
            done += ranges[i][1] - ranges[i][0]
            progress(
                "features",
                images_line(done, total, time.time() - t0),
                not pending and not queue,
                done,
                total,
            )
    finally:
        lines.shutdown()
    return refs


def _trunk(cfg: Config, prepared: Prepared, state: Any, wkey: str, threads: int, device: str,
           work: list) -> tuple[Sharded, str]:  # fmt: skip
    """Cached trunk activations, one shard per ``resources.shard_images`` rows: read from
    disk, or computed by trunk tasks and stored shard by shard."""
    rows = cfg.resources.shard_images
    key = features_key(cfg.model, cfg.train.recipe, prepared.summary["cache_key"], wkey,
                       device, threads, shard_rows=rows)  # fmt: skip
    root = layout.cache_root(cfg, "features") / key
    ranges = shard_ranges(len(prepared.crops), rows)
    shared = cache_shared(root.parent.parent)  # the crops' and the features' cache folder
    refs = _read_shards(root, ranges, shared)
    todo = [i for i in range(len(ranges)) if i not in refs]
    if todo:
        refs.update(
            _compute_shards(cfg, prepared, state, key, threads, todo, ranges, root, work, shared)
        )
    row_shape = refs[0][1]
    parts = [refs[i][0] for i in range(len(ranges))]
    x = Sharded(parts, [b - a for a, b in ranges], row_shape, np.float32, fetch)
    return x, ("reused" if not todo else "written" if len(todo) == len(ranges) else "completed")


def build(cfg: Config, prepared: Prepared) -> tuple[ray.ObjectRef, dict]:
    """Object ref to the TrialData bundle, and facts for the report."""
    m = prepared.manifest
    y = m["label"].to_numpy(np.int64)
    groups = m["group"].astype(str).to_numpy()
    test, folds = run_splits(m, cfg, layout.cache_root(cfg, "splits"))
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
        x, kind = crop_sharded(prepared.crops), "pixels"
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
