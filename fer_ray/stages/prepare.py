"""prepare: manifest → face detection and crop in parallel Ray tasks → crop cache.

Tasks receive the (picklable) data source and a chunk of item ids, load the
images themselves and store each chunk into the content-addressed cache, where every node
reads and writes the cache folder (a local Ray; a cluster whose runs folder is shared
storage, asked once by ``cluster.cache_shared``); elsewhere they return the crops and the
driver stores them as they arrive. An interrupted prepare resumes at the first missing chunk
and a later run with the same inputs reads the cache.

The driver keeps no crop: it holds the manifest and, per chunk, which rows are readable
(``faces.shards.CropShards``); the crops stay in their cache chunks, one shard each, read
where pixels are needed (``Prepared.crops.take``) or put into the object store per shard
(``stages.shards``).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import ray

from fer_ray import files, layout
from fer_ray.config import Config
from fer_ray.data.datasets import create_source, read_manifest
from fer_ray.data.source import Source
from fer_ray.errors import DataError, StoredFileError
from fer_ray.faces import detectors
from fer_ray.faces.cache import CropCache, cache_key
from fer_ray.faces.crop import crop_chunk
from fer_ray.faces.shards import CropShards
from fer_ray.layout import RunPaths
from fer_ray.stages.cluster import cache_shared, node_info
from fer_ray.stages.common import drain, write_work

if TYPE_CHECKING:
    from fer_ray.stages.context import StageContext


@dataclass
class Prepared:
    manifest: pd.DataFrame  # + columns fallback, box_x0..box_y1, node
    crops: CropShards  # (N, size, size, 3) uint8 crops, one shard per cache chunk
    class_names: list[str]
    summary: dict[str, Any]
    work: list[dict[str, Any]]  # one row per chunk computed now (none when read from the cache)


@ray.remote
def _crop_task(source: Source, items: list[str], detector: str, margin: float, size: int,
               fallback: str, store: tuple[str, str, int] | None):  # noqa: ANN202  # fmt: skip
    """One chunk's crops and flags. With ``store`` (cache root, key, chunk: the cache is on
    storage every node shares) the task stores the chunk itself and returns no pixels."""
    t0 = time.time()
    crops, *flags = crop_chunk(source, items, detector, margin, size, fallback)
    if store is not None:
        root, key, i = store
        CropCache(root, key).put_chunk(i, crops, *flags)
        crops = None
    return (crops, *flags, {**node_info(), "seconds": round(time.time() - t0, 3)})


@ray.remote
def _chunk_facts(root: str, key: str, i: int) -> tuple | StoredFileError:
    """A stored chunk read (and so checked) on a node: its flags and boxes, or its damage."""
    try:
        return CropCache(root, key).get_chunk(i)[1:]
    except StoredFileError as e:
        return e


def _stored(cache: CropCache, n: int, shared: bool) -> dict[int, tuple]:
    """The per-chunk facts (fallback, boxes, unreadable) of the chunks stored and whole: read
    by tasks on the nodes on a shared cache, else here; a damaged one is moved aside (so it is
    computed again)."""
    if not shared:
        return {i: cache.get_chunk(i)[1:] for i in range(n) if cache.has_chunk(i)}
    task = _chunk_facts.options(scheduling_strategy="SPREAD")
    root = str(cache.dir.parent)
    refs = {i: task.remote(root, cache.key, i) for i in range(n) if cache.chunk_path(i).is_file()}
    out = {}
    for i, facts in zip(refs, ray.get(list(refs.values())), strict=True):
        if isinstance(facts, StoredFileError):
            files.quarantine(facts, "crop cache chunk")
            cache.damaged.append(cache.chunk_path(i).name)
        else:
            out[i] = facts
    return out


def margin_of(cfg: Config) -> float:
    spec = detectors.get(cfg.faces.detector)
    return spec.default_margin if cfg.faces.margin is None else cfg.faces.margin


def _crops(cfg: Config, source: Source, manifest: pd.DataFrame, cache: CropCache) -> tuple:
    items = manifest["item"].tolist()
    cs = cfg.faces.chunk_size
    chunks = [items[i : i + cs] for i in range(0, len(items), cs)]
    shared = cache_shared(cache.dir.parent)  # tasks read and store chunks: no pixels here
    meta = _stored(cache, len(chunks), shared)  # per chunk; the crops stay on disk
    todo = [i for i in range(len(chunks)) if i not in meta]
    work: list[dict[str, Any]] = []
    if todo:
        margin = margin_of(cfg)
        source_ref = ray.put(source)
        task = _crop_task.options(
            num_cpus=cfg.resources.cpus_per_task, scheduling_strategy="SPREAD"
        )
        pending = {
            task.remote(
                source_ref,
                chunks[i],
                cfg.faces.detector,
                margin,
                cfg.faces.size,
                cfg.faces.fallback,
                (str(cache.dir.parent), cache.key, i) if shared else None,
            ): i  # fmt: skip
            for i in todo
        }

        cropped = [len(items) - sum(len(chunks[i]) for i in todo)]  # images cropped so far

        def store(i: int, result: tuple) -> str:
            crops, fallback, boxes, unreadable, where = result
            if crops is not None:  # the cache is not shared: stored here
                cache.put_chunk(i, crops, fallback, boxes, unreadable)
            meta[i] = (fallback, boxes, unreadable)
            work.append({"unit": f"chunk {i}", **where})
            cropped[0] += len(chunks[i])
            return f" · {cropped[0]}/{len(items)} images"

        drain(pending, store, "prepare", "chunks", len(chunks))
    parts = [meta[i] for i in range(len(chunks))]
    kept = [np.flatnonzero(~p[2]) for p in parts]
    return (
        kept,
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        work,
    )


def load_prepared(cfg: Config) -> Prepared:
    """Manifest + crops for ``cfg``, from the cache when present (Ray only for misses)."""
    source = create_source(cfg.data)
    manifest, class_names = read_manifest(cfg.data, source)
    groups_note = manifest.attrs.get("groups_note")
    skipped = list(manifest.attrs.get("skipped_files") or [])  # files of other formats
    margin = margin_of(cfg)
    # crops are chunked by manifest position, so the item list is part of the key
    # (a different data.classes selection must not reuse another selection's chunks)
    items_hash = hashlib.sha1("\n".join(manifest["item"]).encode()).hexdigest()[:16]
    identity = {**source.identity(), "items": items_hash}
    key = cache_key(identity, cfg.faces.detector, margin, cfg.faces.size, cfg.faces.fallback)
    cache = CropCache(layout.cache_root(cfg, "crops"), key)
    t0 = time.time()
    reused = cache.complete
    kept, fallback, boxes, unreadable, work = _crops(cfg, source, manifest, cache)
    if not reused:
        cache.mark_complete({"n": len(manifest), "identity": identity})
    bad = manifest.loc[unreadable, "item"].tolist()
    if bad and not cfg.data.skip_unreadable:
        listing = layout.RunPaths.of(cfg).stage(layout.Prepare.DIR) / layout.Prepare.UNREADABLE
        files.write_text(listing, "\n".join(bad) + "\n")
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise DataError(
            f"{len(bad)} of {len(manifest)} images in {cfg.data.root} could not be read: {shown}"
            f" (all listed in {listing}); fix or remove them, or set data.skip_unreadable=true"
            " to go on without them (they are then counted and listed in the report)"
        )
    keep = ~unreadable
    manifest = manifest.loc[keep].reset_index(drop=True)
    fallback, boxes = fallback[keep], boxes[keep]
    crops = CropShards(cache, kept, cfg.faces.size)
    if manifest["label"].nunique() < 2:
        raise DataError(
            f"{cfg.data.root}: fewer than 2 classes left after dropping unreadable images"
        )
    manifest["fallback"] = fallback
    for j, c in enumerate(("box_x0", "box_y0", "box_x1", "box_y1")):
        manifest[c] = boxes[:, j]
    summary = {
        "data": cfg.data.name,
        "n_images": len(manifest),
        "n_groups": int(manifest["group"].nunique()),
        "group_noun": "images" if groups_note else source.group_noun,
        "groups_note": groups_note,
        "class_names": class_names,
        "counts": {c: int((manifest["label_name"] == c).sum()) for c in class_names},
        "detector": cfg.faces.detector,
        "margin": margin,
        "size": cfg.faces.size,
        "fallback_rule": cfg.faces.fallback,
        "fallbacks": int(fallback.sum()),
        "fallback_items": manifest.loc[manifest["fallback"], "item"].head(50).tolist(),
        "unreadable": len(bad),
        "unreadable_items": bad[:50],
        "skipped_files": len(skipped),
        "skipped_items": skipped[:50],
        "cache_damaged": cache.damaged,
        "cache_key": key,
        "cache_dir": str(cache.dir),
        "cache_reused": reused,
        "seconds": round(time.time() - t0, 2),
    }
    return Prepared(
        manifest, crops, class_names, summary, sorted(work, key=lambda w: int(w["unit"].split()[1]))
    )


def stage(ctx: StageContext) -> None:
    ctx.set_prepared(run(ctx.cfg, ctx.paths))


def run(cfg: Config, paths: RunPaths) -> Prepared:
    prepared = load_prepared(cfg)
    out = paths.stage(layout.Prepare.DIR)
    out.mkdir(parents=True, exist_ok=True)
    prepared.manifest.to_csv(out / layout.Prepare.MANIFEST, index=False)
    files.write_json(out / layout.SUMMARY, prepared.summary)
    write_work(out, prepared.work)
    s = prepared.summary
    print(
        f"[prepare] {s['n_images']} images, {s['n_groups']} groups, detector {s['detector']},"
        f" {s['fallbacks']} fallback crops"
        + (f", {s['unreadable']} unreadable left out" if s["unreadable"] else "")
        + f", cache {'reused' if s['cache_reused'] else 'written'}"
        f" ({s['seconds']:.1f}s)",
        flush=True,
    )
    return prepared
