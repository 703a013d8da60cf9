"""Does the driver's memory stay flat as the data set grows? prepare, features and a one-epoch
grid at several sizes, from an image folder and from a FER2013 CSV.

    python benchmarks/bench_scale.py                   # 10k, 30k, 100k fake images, both formats
    python benchmarks/bench_scale.py --quick           # 500 and 1500 (under two minutes)
    python benchmarks/bench_scale.py --sizes 10000 30000 --formats csv --no-grid

Fake data per size and format (48 px PNGs in 7 class folders, or a well-formed
``fer2013.csv``); each runs in a fresh process (so peak memory is that size's): the prepare
stage (centre crop, Ray tasks into the crop cache), the features stage (one trunk task per
shard, ResNet18 trunk, weights ``none``) and the grid stage cut to one cell and one epoch (5
Tune trials over grouped folds, each reading its split's shards), against a plain
single-process loop doing the same decoding and cropping (``crop_chunk``).

Prints per size: seconds per stage, per-image cost of prepare vs the plain loop (ratio), the
driver's peak memory (private: its anonymous memory, the heap; total: ``VmHWM``, which also
counts the pages of Ray's shared-memory object store the driver mapped), the largest object
of the trial data bundle and the store's peak use, and the worker processes' peak RSS; then
each size's driver peak as a ratio to the smallest size's of the same format.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _folder(root: Path, n: int) -> None:
    import cv2

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (64, 48, 48), dtype=np.uint8)  # 64 distinct pictures, reused
    for i in range(n):
        d = root / CLASSES[i % len(CLASSES)]
        d.mkdir(parents=True, exist_ok=True)
        img = np.roll(base[i % 64], i % 48, axis=1)
        cv2.imwrite(str(d / f"{i:07d}.png"), img)


def _fer_csv(root: Path, n: int) -> None:
    """A well-formed ``fer2013.csv`` of ``n`` rows: FER2013's columns, 48 x 48 pixel strings,
    its Usage split (80 % Training, 10 % each test)."""
    rng = np.random.default_rng(0)
    base = [" ".join(map(str, rng.integers(0, 256, 48 * 48))) for _ in range(64)]
    usage = ("Training",) * 8 + ("PublicTest", "PrivateTest")
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "fer2013.csv", "w") as f:
        f.write("emotion,pixels,Usage\n")
        for i in range(n):
            f.write(f"{i % 7},{base[i % 64]},{usage[i % 10]}\n")


def _status(pid: int | str, field: str) -> int:
    """A ``/proc/<pid>/status`` field in bytes (0 when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) * 1024 if m else 0


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int(p.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


class Sampler(threading.Thread):
    """Peaks of the driver's private memory, the object store's use and the workers' RSS,
    sampled while the stages run: Ray ends idle workers, so a worker's peak read only at the
    end would miss every worker that has gone by then."""

    def __init__(self, gcs: str) -> None:
        super().__init__(daemon=True)
        self.private = self.store = self.worker = 0
        self.gcs = gcs
        self.stop = threading.Event()

    def run(self) -> None:
        from ray._private.internal_api import memory_summary

        tick = 0
        while not self.stop.is_set():
            self.private = max(self.private, _status("self", "RssAnon"))
            if tick % 4 == 0:  # every 2 s: scanning /proc costs more than one status read
                self.sample_workers()
            tick += 1
            try:
                text = memory_summary(address=self.gcs, stats_only=True)
                m = re.search(r"Plasma memory usage (\d+) MiB", text)
                self.store = max(self.store, int(m.group(1)) << 20 if m else 0)
            except Exception:  # noqa: BLE001 - a sample missed is no result changed
                pass
            self.stop.wait(0.5)

    def sample_workers(self) -> None:
        peaks = [_status(p, "VmHWM") for p in _workers(os.getpid())]
        self.worker = max([self.worker, *peaks])


def _workers(driver: int) -> list[int]:
    """This Ray's worker processes (``ray::<task>``, not its agents): the raylet's children."""
    out = []
    for p in _descendants(driver):
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"ray::") and b"Agent" not in cmd.split(b"\0")[0]:
            out.append(p)
    return out


def _plain_loop(cfg: object) -> float:
    """Seconds per image of the same decoding and cropping in one process, no Ray."""
    from fer_ray.data.datasets import create_source, read_manifest
    from fer_ray.faces.crop import crop_chunk
    from fer_ray.stages.prepare import margin_of

    source = create_source(cfg.data)
    manifest, _ = read_manifest(cfg.data, source)
    items = manifest["item"].tolist()[:2000]  # per-image cost: a sample is enough
    t0 = time.perf_counter()
    f = cfg.faces
    for s in range(0, len(items), f.chunk_size):
        crop_chunk(source, items[s : s + f.chunk_size], f.detector, margin_of(cfg), f.size)
    return (time.perf_counter() - t0) / len(items)


def child(root: Path, out: Path, fmt: str, grid: bool) -> dict:
    import ray
    from ray.experimental import get_object_locations

    from fer_ray import config
    from fer_ray.layout import RunPaths
    from fer_ray.stages import cluster, prepare
    from fer_ray.stages import grid as grid_stage
    from fer_ray.stages.context import StageContext

    data = "data.name=fer2013" if fmt == "csv" else "data.name=imagefolder"
    cfg = config.load(
        None,
        [
            data, f"data.root={root}", "faces.detector=center", "train.epochs=1",
            "grid.lr=[0.001]", "grid.hidden=[100]", "resources.cpus_per_trial=1",
            "faces.size=48", "model.backbone=resnet18", "model.weights=none",
            "model.train_last_convs=2", "resources.num_cpus=2", "resources.features_cpus=1",
            "resources.dashboard=false", f"output.runs_dir={out / 'runs'}",
            f"output.reports_dir={out / 'reports'}",
        ],
    )  # fmt: skip
    cluster.connect(cfg)
    sampler = Sampler(ray.get_runtime_context().gcs_address)
    sampler.start()
    t0 = time.perf_counter()
    prepared = prepare.load_prepared(cfg)
    t1 = time.perf_counter()
    ctx = StageContext(cfg, RunPaths.of(cfg))
    ctx.set_prepared(prepared)
    ref, _ = ctx.trial_data()  # the features stage: one trunk task per shard
    t2 = time.perf_counter()
    if grid:  # one epoch, one cell, 5 grouped folds: every trial reads its shards
        grid_stage.stage(ctx)
    t3 = time.perf_counter()
    data = ray.get(ref)
    refs = [ref, *data.x.parts]
    sizes = [v["object_size"] for v in get_object_locations(refs).values()]
    sampler.stop.set()
    sampler.join()
    sampler.sample_workers()
    hwm = _status("self", "VmHWM")  # before the plain loop below adds its own
    n = len(prepared.manifest)
    return {
        "n": n,
        "prepare_s": t1 - t0,
        "features_s": t2 - t1,
        "grid_s": t3 - t2,
        "prepare_per_image_ms": 1e3 * (t1 - t0) / n,
        "plain_per_image_ms": 1e3 * _plain_loop(cfg),
        "driver_private": sampler.private,
        "driver_hwm": hwm,
        "largest_object": max(sizes),
        "bundle_object": sizes[0],
        "shards": len(data.x.parts),
        "store_peak": sampler.store,
        "worker_peak": sampler.worker,
    }


def _mb(b: float) -> str:
    return f"{b / 2**20:.0f}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    p.add_argument("--quick", action="store_true", help="500 and 1500 images")
    p.add_argument(
        "--formats",
        nargs="+",
        choices=["folder", "csv"],
        default=["folder", "csv"],
        help="an image folder of PNGs, a FER2013 CSV (default: both)",
    )
    p.add_argument("--no-grid", action="store_true", help="prepare and features only")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        root, out, fmt, grid = args.child
        print(json.dumps(child(Path(root), Path(out), fmt, grid == "grid")))
        return
    sizes = [500, 1500] if args.quick else args.sizes
    print(
        f"{'format':>6} {'images':>7} {'prep s':>7} {'feat s':>7} {'grid s':>7}"
        f" {'ms/img':>7} {'plain':>6} {'ratio':>6}"
        f" {'drv MB':>7} {'drv HWM':>8} {'max obj':>8} {'store':>6} {'worker':>7} {'drv x':>6}",
        flush=True,
    )
    first: dict[str, dict] = {}
    grid = "none" if args.no_grid else "grid"
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        for fmt, n in [(f, n) for f in args.formats for n in sizes]:  # a row as each ends
            root, out = Path(tmp) / f"{fmt}{n}", Path(tmp) / f"out_{fmt}{n}"
            (_fer_csv if fmt == "csv" else _folder)(root, n)
            cmd = [sys.executable, __file__, "--child", str(root), str(out), fmt, grid]
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if res.returncode:
                sys.exit(f"{fmt} {n} failed:\n{res.stderr[-3000:]}")
            r = json.loads(res.stdout.strip().splitlines()[-1])
            base = first.setdefault(fmt, r)
            print(
                f"{fmt:>6} {r['n']:>7} {r['prepare_s']:>7.1f} {r['features_s']:>7.1f}"
                f" {r['grid_s']:>7.1f}"
                f" {r['prepare_per_image_ms']:>7.2f} {r['plain_per_image_ms']:>6.2f}"
                f" {r['prepare_per_image_ms'] / r['plain_per_image_ms']:>6.2f}"
                f" {_mb(r['driver_private']):>7} {_mb(r['driver_hwm']):>8}"
                f" {_mb(r['largest_object']):>8} {_mb(r['store_peak']):>6}"
                f" {_mb(r['worker_peak']):>7} {r['driver_private'] / base['driver_private']:>6.2f}",
                flush=True,
            )
    print(
        "grid s: one epoch of one cell over 5 grouped folds (5 Tune trials) reading the shards;"
        " MB: MiB. drv MB: driver peak private (anonymous) memory; drv HWM: its peak RSS incl."
        " mapped store pages; max obj: largest object of the trial data bundle; store: object"
        " store peak; worker: largest worker peak RSS; drv x: driver peak / the format's smallest"
        " size's."
    )


if __name__ == "__main__":
    main()
