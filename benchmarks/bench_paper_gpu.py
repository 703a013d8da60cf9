"""Seed 000's protocol end to end on SFEW-sized synthetic data: the GPU benchmark.

    python benchmarks/bench_paper_gpu.py            # on a GPU machine: the full protocol
    python benchmarks/bench_paper_gpu.py --quick    # the shape of it on a few tiny images (CPU: < 2 min)

``tune_configs/sfew_paper.yaml`` with the data swapped for the embedded synthetic set at SFEW's
size (672 faces = 32 subjects x 7 classes x 3, the closest balanced count to SFEW's 675), drawn
at 224 px and cropped to their drawn face box at 224 px; everything else is the paper config:
ResNet18 with the last two convs and a 512-hidden-7 head trained on cached trunk features,
3 lr x 3 hidden x 5 folds = 45 grid trials of 50 epochs, 15 two-phase members (50 + 50
epochs), every analysis, 4 trials per GPU (``gpus_per_trial: 0.25``). Left out: the descriptor
baseline (it reads SFEW.xlsx) and ImageNet weights (no model hub: ``model.weights=none`` by
default, ``--weights synthetic`` pretrains the stand-in first; a trial's cost is the same).

Prints the pipeline's wall time per stage, the training images per second of the grid and the
ensemble stages against a plain PyTorch loop (same tail, batch, data on the device, no Ray, no
evaluation) and ``fer_ray.train.loop.fit`` alone on the same device, and the fraction of time the
GPU was busy per stage
(``nvidia-smi`` utilisation sampled every 200 ms). On a GPU it trains with ``train.amp=bf16``,
``train.channels_last=true`` and ``train.deterministic=false`` (cuDNN picks its kernels) unless
``--exact``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gridbench as gb  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "tune_configs" / "sfew_paper.yaml"
SFEW_SIZED = [
    "data.name=synthetic",
    "data.root=null",
    "data.n_subjects=32",
    "data.per_class=3",
    "data.image_size=224",
    "faces.detector=groundtruth",
    "faces.fallback=square",
    "faces.size=224",
    "descriptors.enabled=false",
]
QUICK = [  # the protocol's shape, shrunk: every stage and analysis, a minute on 2 CPU cores
    "data.n_subjects=10",
    "data.per_class=1",
    "data.image_size=64",
    "faces.size=64",
    "train.epochs=2",
    "grid.lr=[0.005]",
    "grid.hidden=[100]",
    "grid.folds=2",
    "ensemble.members=2",
    "ensemble.phase2_epochs=1",
    "analyse.sweep_draws=1",
]
CPU = ["resources.gpus_per_trial=0", "resources.features_gpus=0", "resources.cpus_per_trial=1"]
FAST = ["train.amp=bf16", "train.channels_last=true", "train.deterministic=false"]


class GpuSampler:
    """``nvidia-smi`` utilisation (percent of time a kernel ran) every 200 ms, timestamped here."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, float]] = []
        self.proc = None
        if shutil.which("nvidia-smi") and torch.cuda.is_available():
            cmd = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                   "--format=csv,noheader,nounits", "-lms", "200", "-i", "0"]  # fmt: skip
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                util, mem = (float(v) for v in line.split(","))
            except ValueError:
                continue
            self.rows.append((time.time(), util, mem))

    def busy(self, t0: float, t1: float) -> str:
        xs = [(u, m) for t, u, m in self.rows if t0 <= t <= t1]
        if not xs:
            return "n/a (no GPU)" if self.proc is None else "n/a (no samples)"
        u = np.array([x[0] for x in xs])
        return f"{u.mean():5.1f}% busy (median {np.median(u):.0f}%, peak mem {max(m for _, m in xs):.0f} MiB)"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()


def stage_windows(run: Path) -> dict[str, tuple[float, float]]:
    """When each stage ran: its started.json and done.json are written at its start and end."""
    out = {}
    for d in sorted(run.iterdir()):
        s, e = d / "started.json", d / "done.json"
        if s.is_file() and e.is_file():
            out[d.name] = (s.stat().st_mtime, e.stat().st_mtime)
    return dict(sorted(out.items(), key=lambda kv: kv[1][0]))


def trained_images(run: Path) -> dict[str, int]:
    """Training images seen (epochs x training-set size, summed over trials) per Tune stage."""
    info = json.loads((run / "grid" / "features.json").read_text())
    folds = info["fold_sizes"]
    trials = pd.read_csv(run / "grid" / "trials.csv")
    grid = int(sum(r.epochs * (sum(folds) - folds[int(r.fold)]) for r in trials.itertuples()))
    members = pd.read_csv(run / "ensemble" / "members.csv")
    cfg = (run / "config.yaml").read_text()
    import yaml

    c = yaml.safe_load(cfg)
    ep = c["train"]["epochs"] + c["ensemble"]["phase2_epochs"]
    return {"grid": grid, "ensemble": int(members["n_train"].sum() * ep)}


def plain_loops(cfg, n_train: int, feat_shape: tuple, epochs: int, device: str) -> dict:  # noqa: ANN001
    """Images per second of the same tail on the same device: a plain PyTorch loop (no Ray,
    no evaluation) and ``fit`` alone."""
    from fer_ray.models.factory import create_model
    from fer_ray.train.loop import Phase, Split, fit, torch_settings

    torch_settings(cfg.resources.cpus_per_trial, cfg.train.deterministic)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_train, *feat_shape, generator=g)
    y = torch.randint(0, 7, (n_train,), generator=g)
    n_val = max(2, n_train // 4)
    val = Split(x[:n_val].clone(), y[:n_val].clone())
    lr, hidden = cfg.grid.paper_lr, cfg.grid.paper_hidden

    def tail(seed: int) -> torch.nn.Module:
        return create_model(cfg.model, 7, hidden, head_seed=seed).tail.to(device)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    out = {}
    # plain loop
    m = tail(0)
    if cfg.train.channels_last:
        m = m.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=lr)
    xd, yd = x.to(device), y.to(device)
    amp = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=cfg.train.amp == "bf16")
    sync()
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n_train, device=device)
        for s in range(0, n_train, cfg.train.batch_size):
            idx = perm[s : s + cfg.train.batch_size]
            xb = xd[idx]
            if cfg.train.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=True)
            with amp:
                loss = torch.nn.functional.cross_entropy(m(xb), yd[idx])
            loss.backward()
            opt.step()
    sync()
    out["plain PyTorch loop"] = n_train * epochs / (time.perf_counter() - t0)
    # fit alone (evaluates on a validation split every epoch, as the trials do)
    m = tail(0)
    t0 = time.perf_counter()
    fit(m, Split(x, y), val, [Phase(lr, epochs)], cfg.train, 0, keep_best=False)
    sync()
    out["fer_ray fit alone"] = n_train * epochs / (time.perf_counter() - t0)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--weights", default="none", choices=["none", "synthetic"])
    p.add_argument("--exact", action="store_true", help="no bf16/channels-last/cuDNN autotune")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    from fer_ray import config as config_mod
    from fer_ray.pipeline import run_pipeline

    gpu = torch.cuda.is_available()
    sets = [*SFEW_SIZED, f"model.weights={a.weights}", *(QUICK if a.quick else [])]
    sets += [*(FAST if gpu and not a.exact else []), *([] if gpu else CPU), *a.set]
    reports = Path(a.runs_dir) / ".bench_reports"
    sets += [
        "name=bench_paper_gpu",
        f"output.runs_dir={a.runs_dir}",
        f"output.reports_dir={reports}",
    ]
    cfg = config_mod.load(PAPER, sets)
    dev = torch.cuda.get_device_name(0) if gpu else f"no GPU, {torch.get_num_threads()} CPU threads"
    print(f"# bench_paper_gpu {'--quick ' if a.quick else ''}· {dev} · {gb.load()}")
    print(f"# {cfg.data.n_subjects * 7 * cfg.data.per_class} synthetic faces at {cfg.faces.size} px, "
          f"{len(cfg.grid.lr) * len(cfg.grid.hidden) * cfg.grid.folds} grid trials x {cfg.train.epochs} epochs, "
          f"{cfg.ensemble.members} members x ({cfg.train.epochs} + {cfg.ensemble.phase2_epochs}) epochs, "
          f"gpus_per_trial {cfg.resources.gpus_per_trial:g}, amp {cfg.train.amp}, "
          f"channels_last {cfg.train.channels_last}, deterministic {cfg.train.deterministic}")  # fmt: skip
    sampler = GpuSampler()
    t0 = time.time()
    try:
        run_pipeline(cfg, fresh=True)
    finally:
        sampler.stop()
    wall = time.time() - t0
    run = Path(cfg.output.runs_dir).resolve() / cfg.name
    win = stage_windows(run)
    imgs = trained_images(run)
    print(f"\npipeline wall: {wall:.1f}s ({gb.load()} after)")
    for stage, (s, e) in win.items():
        rate = f" · {imgs[stage] / (e - s):9.0f} training images/s" if stage in imgs else ""
        print(f"  {stage:10s}{e - s:8.1f}s{rate} · GPU {sampler.busy(s, e)}")
    info = json.loads((run / "grid" / "features.json").read_text())
    n_train = sum(info["fold_sizes"]) - info["fold_sizes"][0]
    c = 512 if cfg.model.backbone in ("resnet18", "resnet34") else 2048
    side = {224: 7, 112: 4, 64: 2}.get(cfg.faces.size, max(1, cfg.faces.size // 32))
    device = "cuda" if gpu else "cpu"
    loops = plain_loops(cfg, n_train, (c, side, side), max(2, min(cfg.train.epochs, 10)), device)
    print(
        f"\nsame tail on the same device ({n_train} training images, batch {cfg.train.batch_size}):"
    )
    for k, v in loops.items():
        print(f"  {k:22s}{v:10.0f} images/s")
    base = loops["plain PyTorch loop"]
    for stage in ("grid", "ensemble"):
        if stage in win:
            s, e = win[stage]
            print(f"RATIO {stage} stage (all trials at once) / one plain loop: "
                  f"{imgs[stage] / (e - s) / base:.2f}x")  # fmt: skip
    print(f"RATIO fit alone / plain loop: {loops['fer_ray fit alone'] / base:.2f}x")
    print(f"# {gb.load()} at the end")


if __name__ == "__main__":
    main()
