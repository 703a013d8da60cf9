"""What Ray Tune costs on top of the training it runs, side by side in one run.

    python benchmarks/bench_overhead.py            # the default grid: 45 trials (Config() defaults)
    python benchmarks/bench_overhead.py --quick    # 6 trials of 4 epochs, random trunk (< 2 min)
    python benchmarks/bench_overhead.py --order pool,tune,tune-every-epoch   # + per-epoch checkpoints

Builds the trial data bundle once with the pipeline's own prepare + features code, then runs
the grid's trials twice: through the pipeline's own grid stage (``fer_ray.stages.grid.run``:
Tune, actors, reports, checkpoints, result tables) and as the same trials (same model, splits,
seeds, ``fer_ray.train.loop.fit`` options, thread count) in a plain process pool with the same
concurrency. Prints both wall times, their ratio, and where the difference goes, measured:
inside each trial (seconds fetching the bundle, writing checkpoint files and their bytes,
reporting with and without a checkpoint, training) and around them (worker start, the gaps
between a worker's trials, the driver's tail and result tables, CPU seconds of the driver and
of Ray's daemons). Also checks both sides end with the same validation accuracy per trial,
and compares one checkpoint of a grid trial in the old and the current format. The side
``tune-every-epoch`` runs the Tune stage again with ``output.checkpoint_every=1`` (what every
trial did before checkpoints became time-based) to show what per-epoch checkpoints cost.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gridbench as gb  # noqa: E402

QUICK = [
    "grid.lr=[0.005,0.001]",
    "grid.hidden=[100]",
    "grid.folds=3",
    "train.epochs=4",
    "model.weights=none",  # no 90 s pretraining; the trials cost the same
]


def checkpoint_sizes(cfg, data) -> dict[str, int]:  # noqa: ANN001
    """Bytes of one checkpoint of grid cell (first lr, first hidden, fold 0) after its 2nd epoch,
    as ``torch.save`` writes it: the grid's now (``keep_best=False``, only what trains), a fit
    that keeps its best weights (ensemble members) now, and the old format (the full module
    state, a full copy of the best state and the optimizer state, every epoch)."""
    from fer_ray.models.factory import create_model
    from fer_ray.seeds import trial_seed
    from fer_ray.train.loop import Phase, fit

    lr, hidden = cfg.grid.lr[0], cfg.grid.hidden[0]
    seed = trial_seed(cfg.seed, lr, hidden, 0)

    def snapshot(keep_best: bool) -> tuple[dict, torch.nn.Module]:
        model = create_model(cfg.model, data.n_classes, hidden, seed, data.backbone_state)
        module = model.tail if data.kind == "features" else model
        snaps = []
        fit(module, data.split(data.folds >= 1, train=True), data.split(data.folds == 0),
            [Phase(lr, 2)], cfg.train, seed, keep_best=keep_best,
            on_epoch=lambda r, s: snaps.append(s()))  # fmt: skip
        return snaps[-1], module

    def nbytes(obj: object) -> int:
        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.tell()

    grid, module = snapshot(False)
    kept, _ = snapshot(True)
    full = {k: v.detach().clone() for k, v in module.state_dict().items()}
    legacy = {k: grid[k] for k in ("phase", "epoch", "history", "optim")}
    legacy["module"] = full
    legacy["best"] = {"score": 0.0, "phase": 1, "epoch": 1, "step": 1,
                      "state": {k: v.clone() for k, v in full.items()}}  # fmt: skip
    return {"grid": nbytes(grid), "keep_best": nbytes(kept), "old format": nbytes(legacy)}


def compare(side: str, pool: dict, tune: dict, k: int, n_trials: int) -> None:
    """Print pool vs one Tune side: wall, ratio, where the difference goes, checkpoints."""
    merged = pool["trials"].merge(
        tune["result"], on=["lr", "hidden", "fold"], suffixes=("_pool", "_tune")
    )
    same = int((merged["val_acc_pool"] == merged["val_acc_tune"]).sum())
    print(f"\n=== pool vs {side} ===\nsame final val_acc in both: {same}/{len(merged)} trials")
    pt, tt = pool["trials"], tune["trials"]
    p_slot = float((pt["exit"] - pt["enter"]).sum())
    t_slot = float((tt["exit"] - tt["enter"]).sum())
    parts = {c: float(tt[c].sum()) for c in ("fetch", "save", "report_ckpt", "report")}
    t_compute = t_slot - sum(parts.values())
    p_tail = pool["wall"] - float(pt["exit"].max() - pt["enter"].min()) - pool["start"]
    t_tail = tune["tail"]
    rows = [
        ("wall (s)", pool["wall"], tune["wall"]),
        ("  start: first trial begins after", pool["start"], tune["start"]),
        ("  trial-seconds, all trials", p_slot, t_slot),
        ("    training (rest of the trial)", p_slot, t_compute),
        ("    fetching the bundle (ray.get)", 0.0, parts["fetch"]),
        ("    torch.save of checkpoints", 0.0, parts["save"]),
        ("    tune.report with a checkpoint", 0.0, parts["report_ckpt"]),
        ("    tune.report without", 0.0, parts["report"]),
        ("  gaps between a worker's trials", gb.gaps(pt), gb.gaps(tt)),
        ("  after the last trial ends", p_tail, t_tail),
        ("  result tables (grid stage)", 0.0, tune["post"]),
        ("CPU s inside the trials", float(pt["cpu"].sum()), float(tt["cpu"].sum())),
        ("CPU s: driver", pool["cpu_driver"], tune["cpu_driver"]),
        ("CPU s: other processes", pool["cpu_other"], sum(tune["cpu_daemons"].values())),
    ]
    print(f"{'':44s}{'pool':>10s}{side[:10]:>10s}{'diff':>11s}")
    for name, x, y in rows:
        print(f"{name:44s}{x:10.2f}{y:10.2f}{y - x:11.2f}")
    print(f"RATIO {side} / pool wall: {tune['wall'] / pool['wall']:.3f}x "
          f"(Tuner.fit alone: {tune['fit'] / pool['wall']:.3f}x)")  # fmt: skip
    print(f"RATIO {side} / pool trial-seconds: {t_slot / p_slot:.3f}x · training only: "
          f"{t_compute / p_slot:.3f}x · CPU s inside trials: {tt['cpu'].sum() / pt['cpu'].sum():.3f}x")  # fmt: skip
    diff = tune["wall"] - pool["wall"]
    share = [  # trial-slot seconds are shared by k workers
        ("actor start (until the first trial)", tune["start"] - pool["start"]),
        ("training slower (CPU contention)", (t_compute - p_slot) / k),
        ("fetching the bundle", parts["fetch"] / k),
        ("checkpoint writes (save + report)", (parts["save"] + parts["report_ckpt"]) / k),
        ("reports without a checkpoint", parts["report"] / k),
        ("driver: gaps between trials", (gb.gaps(tt) - gb.gaps(pt)) / k),
        ("driver: tail + result tables", (t_tail - p_tail) + tune["post"]),
    ]
    share.append(("unaccounted (load imbalance, noise)", diff - sum(x for _, x in share)))
    print(f"where the {diff:+.1f}s go (seconds of wall; slot seconds / {k}):")
    for name, x in share:
        print(f"  {name:40s}{x:8.2f}s  {100 * x / diff if diff else 0:6.1f}%")
    top = sorted(tune["cpu_daemons"].items(), key=lambda kv: -kv[1])[:6]
    print("Ray's other processes, CPU s: " + ", ".join(f"{n} {c:.1f}" for n, c in top))
    ck = tt["ckpt_bytes"]
    print(f"checkpoints: {int(tt['n_ckpt'].sum())} in {n_trials} trials, "
          f"{ck.mean() / 2**20:.1f} MB written per trial (max {ck.max() / 2**20:.1f}), "
          f"{int(tt['n_report'].sum())} reports; in storage after Tuner.fit: "
          f"{tune['stored_bytes'] / 2**20:.1f} MB, {tune['ckpt_dirs']} checkpoint dirs")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="6 trials, 4 epochs, random trunk")
    p.add_argument("--runs-dir", default="runs", help="runs and caches go under here")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--order", default="pool,tune",
                   help="sides in run order: pool, tune, tune-every-epoch (checkpoint_every=1)")  # fmt: skip
    a = p.parse_args()
    cfg = gb.bench_config("bench_overhead", a.runs_dir, [*(QUICK if a.quick else []), *a.set])
    from fer_ray.stages import cluster

    print(
        f"# bench_overhead {'--quick ' if a.quick else ''}{' '.join('--set ' + s for s in a.set)}"
    )
    print(f"# {gb.load()} · torch {torch.__version__} · pid {os.getpid()}")
    t0 = time.time()
    cluster.connect(cfg)
    t_ray = time.time() - t0
    import ray

    ref, data, splits, info = gb.bundle(cfg)
    k = gb.concurrency(cfg)
    n_trials = len(gb.trials_of(cfg))
    print(
        f"# {n_trials} grid trials ({len(cfg.grid.lr)} lr x {len(cfg.grid.hidden)} hidden x "
        f"{cfg.grid.folds} folds), {cfg.train.epochs} epochs, {len(data.y)} images as {data.kind} "
        f"{tuple(data.x.shape[1:])}, {k} at a time, {cfg.resources.cpus_per_trial:g} CPU each · "
        f"ray.init {t_ray:.1f}s, bundle {info['prepare_s'] + info['features_s']:.1f}s"
    )
    res = {}
    for side in a.order.split(","):
        la = gb.load()
        if side == "pool":
            res[side] = gb.pool_grid(cfg, data, k)
        else:  # tune: as configured; tune-every-epoch: a checkpoint after every epoch
            c = cfg
            if side == "tune-every-epoch":
                c = replace(cfg, output=replace(cfg.output, checkpoint_every=1))
            with tempfile.TemporaryDirectory() as d:
                res[side] = gb.tune_grid(c, ref, splits, Path(d) / "trials.jsonl")
        print(f"# {side}: {res[side]['wall']:.1f}s wall ({la} before, {gb.load()} after)")
    for side in res:
        if side != "pool":
            compare(side, res["pool"], res[side], k, n_trials)
    sizes = checkpoint_sizes(cfg, data)
    mb = {k: v / 2**20 for k, v in sizes.items()}
    print(
        f"one checkpoint of a grid trial after epoch 2: {mb['grid']:.2f} MB now "
        f"({mb['keep_best']:.2f} MB when a fit keeps its best weights, as ensemble members do), "
        f"{mb['old format']:.2f} MB in the old format, which was written every epoch: "
        f"{cfg.train.epochs * mb['old format']:.0f} MB per {cfg.train.epochs}-epoch grid trial"
    )
    print(f"# {gb.load()} at the end")
    ray.shutdown()


if __name__ == "__main__":
    main()
