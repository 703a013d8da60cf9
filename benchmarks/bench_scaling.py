"""Does the grid's cost grow linearly, and does the driver's memory stay flat? In one run.

    python benchmarks/bench_scaling.py            # 10-trial base grid, 6 epochs, 735 images
    python benchmarks/bench_scaling.py --quick    # 4-trial base, 2 epochs, 210 images, 40 tiny trials

1. Images: the pipeline's grid stage (``fer_ray.stages.grid.run``) on 1x, 2x, 4x the images
   (``data.n_subjects`` scaled, so classes and groups keep their shape), same trials.
2. Trials: the same stage on 1x, 2x, 4x the trials (more learning rates: a trial's cost does
   not depend on its lr), same images.
3. Memory: 200 (--quick: 40) tiny trials (1 epoch on a few images) through the same stage; the driver's
   resident memory (and its peak so far) when trial 50, 100, 150 and 200 completes.

Prints wall times, their ratios to 1x (linear: 2x -> <= 2, 4x -> <= 4; fixed costs such as
actor start make them smaller) and the marginal cost per image and per trial. The model's
weights are ``none`` (no pretraining): a trial's cost does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gridbench as gb  # noqa: E402
from ray import tune  # noqa: E402

LRS = [0.005, 0.001, 0.0005, 0.0002, 0.002, 0.003, 0.0001, 0.0008]


def _grid(runs: str, overrides: list[str]) -> tuple:
    cfg = gb.bench_config("bench_scaling", runs, ["model.weights=none", *overrides])
    ref, data, splits, _ = gb.bundle(cfg)
    return cfg, ref, data, splits


class RssAt(tune.Callback):
    """The driver's (current, peak) RSS when the n-th trial completes, for n in ``marks``."""

    def __init__(self, marks: list[int]):
        self.marks, self.done, self.rows = set(marks), 0, []

    def on_trial_complete(self, iteration, trials, trial, **info):  # noqa: ANN001
        self.done += 1
        if self.done in self.marks:
            self.rows.append((self.done, *gb.rss_mb()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--trials", type=int, help="tiny trials for the memory check (200; --quick 40)")
    a = p.parse_args()
    from fer_ray.stages import cluster

    if a.quick:
        base = ["data.n_subjects=10", "grid.folds=2", "grid.hidden=[100]", "train.epochs=2"]
        n_lr, subjects = 2, 10
    else:
        base = ["grid.folds=5", "grid.hidden=[100]", "train.epochs=6"]
        n_lr, subjects = 2, 35
    print(f"# bench_scaling {'--quick' if a.quick else ''} · {gb.load()}")
    cfg0 = gb.bench_config("bench_scaling", a.runs_dir, ["model.weights=none", *base])
    cluster.connect(cfg0)
    import ray

    def lr_set(n: int) -> str:
        return "grid.lr=[" + ",".join(str(x) for x in LRS[:n]) + "]"

    rows = []
    for kind, factors in (("images", (1, 2, 4)), ("trials", (1, 2, 4))):
        for f in factors:
            if kind == "trials" and f == 1:  # the same grid as images x1: measured once
                rows.append(("trials", *rows[0][1:]))
                continue
            sets = [*base, f"data.n_subjects={subjects * (f if kind == 'images' else 1)}",
                    lr_set(n_lr * (f if kind == "trials" else 1))]  # fmt: skip
            cfg, ref, data, splits = _grid(a.runs_dir, sets)
            la = gb.load()
            r = gb.run_grid(cfg, ref, splits)
            n_trials = len(gb.trials_of(cfg))
            rows.append((kind, f, len(data.y), n_trials, r["wall"], r["fit"], la))
            print(f"# {kind} x{f}: {len(data.y)} images, {n_trials} trials: {r['wall']:.1f}s "
                  f"({la} before)", flush=True)  # fmt: skip
    print(f"\n{'scaled':8s}{'x':>3s}{'images':>8s}{'trials':>8s}{'wall s':>9s}{'ratio':>8s}"
          f"{'marginal':>28s}   load before")  # fmt: skip
    for kind in ("images", "trials"):
        sub = [r for r in rows if r[0] == kind]
        w1 = sub[0][4]
        for kind_, f, n_img, n_tr, wall, _, la in sub:
            unit = n_img if kind == "images" else n_tr
            marg = (
                (wall - w1) / (unit - (sub[0][2] if kind == "images" else sub[0][3]))
                if f > 1
                else 0
            )
            what = "s per extra image" if kind == "images" else "s per extra trial"
            print(f"{kind_:8s}{f:3d}{n_img:8d}{n_tr:8d}{wall:9.1f}{wall / w1:8.2f}"
                  f"{(f'{marg:.4f} ' + what) if f > 1 else '':>28s}   {la}")  # fmt: skip
        print(
            f"RATIO {kind} 2x: {sub[1][4] / w1:.2f}x, 4x: {sub[2][4] / w1:.2f}x (linear: <= 2, <= 4)"
        )

    # memory: many tiny trials
    n = a.trials or (40 if a.quick else 200)
    n_lr_tiny = max(1, n // 5)
    lrs = [round(1e-4 * (1 + i), 6) for i in range(n_lr_tiny)]
    sets = ["data.n_subjects=10", "grid.folds=5", "grid.hidden=[8]", "train.epochs=1",
            "grid.lr=[" + ",".join(map(str, lrs)) + "]"]  # fmt: skip
    cfg, ref, data, splits = _grid(a.runs_dir, sets)
    marks = [n * q // 4 for q in (1, 2, 3, 4)]
    cb = RssAt(marks)
    la = gb.load()
    before = gb.rss_mb()
    t0 = time.time()
    gb.run_grid(cfg, ref, splits, callbacks=[cb])
    after = gb.rss_mb()
    print(f"\n{len(gb.trials_of(cfg))} tiny trials ({len(data.y)} images, 1 epoch) in "
          f"{time.time() - t0:.1f}s ({la} before); driver RSS MB before the stage {before[0]:.0f}")  # fmt: skip
    for done, rss, peak in cb.rows:
        print(f"  after trial {done:4d}: RSS {rss:7.1f} MB   peak so far {peak:7.1f} MB")
    if len(cb.rows) >= 2:
        first, last = cb.rows[0], cb.rows[-1]
        print(f"RATIO driver RSS trial {last[0]} / trial {first[0]}: {last[1] / first[1]:.3f}x "
              f"(+{last[1] - first[1]:.1f} MB); after the stage's result tables: {after[0]:.0f} MB, "
              f"peak {after[1]:.0f} MB")  # fmt: skip
    print(f"# {gb.load()} at the end")
    ray.shutdown()


if __name__ == "__main__":
    main()
