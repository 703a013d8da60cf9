"""Coverage of the report's 95 % intervals, measured against the synthetic population.

    python benchmarks/bench_coverage.py [--quick] [--draws 300] [--truth-subjects 1500]
                                        [--sizes 5 15] [--members 15] [--seed 0]

The embedded generator is the population, so how often an interval holds the truth can be
counted.  An ensemble is trained once (``--members`` multinomial logistic regressions on HOG
features of the face crop, each on its own 80 % of the training subjects, as each member of a
run draws its own validation subjects), then scored on:

* a pool of fresh subjects (generator seed 2), cut into disjoint test sets of ``k`` subjects
  for each ``k`` in ``--sizes`` (``--draws`` test sets at the largest size; smaller sizes get
  as many as the same pool holds), 7 images per subject (one per class) as in the default data;
* a separate truth sample of ``--truth-subjects`` fresh subjects (generator seed 1): the
  members' mean accuracy, the soft vote's, and their difference there are the "true" values.

For every method of ``fer_ray.analysis.intervals`` (t, percentile, bca) and every quantity
the report gives an interval for, it prints the share of test sets whose interval holds the
true value, with its Monte-Carlo error, side by side.  Every image is rendered once and
reused by all methods.  ``--quick``: 20 draws and a 100-subject truth sample (under 2 min
on an idle 2-core machine); the full run took 145 s on a busy one.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import cv2
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fer_ray.analysis.coverage import coverage_table, truth
from fer_ray.analysis.intervals import METHODS
from fer_ray.data.synthetic import CLASS_NAMES, render_items

PER_CLASS = 1  # the default data's images per subject and class: 7 per subject
IMAGE_SIZE = 96
CROP = 48
TRAIN_SUBJECTS = 90  # the default run's 105 subjects less its test holdout of 15
_HOG = cv2.HOGDescriptor((CROP, CROP), (16, 16), (8, 8), (8, 8), 9)
_CHUNK_SUBJECTS = 40


def features(images: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """HOG of each image's face box (ground truth), grey, resized to CROP x CROP."""
    out = np.empty((len(images), _HOG.getDescriptorSize()), np.float32)
    for i, (img, (x0, y0, x1, y1)) in enumerate(zip(images, boxes, strict=True)):
        face = cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
        out[i] = _HOG.compute(cv2.resize(face, (CROP, CROP), interpolation=cv2.INTER_AREA)).ravel()
    return out


def render(n_subjects: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and subjects of ``n_subjects`` fresh subjects of generator ``seed``,
    rendered a few subjects at a time so the images never pile up."""
    block = len(CLASS_NAMES) * PER_CLASS
    feats = []
    for s0 in range(0, n_subjects, _CHUNK_SUBJECTS):
        idx = range(s0 * block, min(n_subjects, s0 + _CHUNK_SUBJECTS) * block)
        images, _, boxes = render_items(
            idx, n_subjects=n_subjects, per_class=PER_CLASS, image_size=IMAGE_SIZE, seed=seed
        )
        feats.append(features(images, boxes))
    index = np.arange(n_subjects * block)
    return np.concatenate(feats), (index % block) // PER_CLASS, index // block


def train_members(n_members: int, seed: int) -> list:
    """The ensemble: each member on its own random 80 % of the training subjects."""
    x, y, subj = render(TRAIN_SUBJECTS, seed=0)
    members = []
    for m in range(n_members):
        rng = np.random.default_rng([seed, m])
        keep = np.isin(subj, rng.permutation(TRAIN_SUBJECTS)[: int(0.8 * TRAIN_SUBJECTS)])
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=300))
        members.append(model.fit(x[keep], y[keep]))
    return members


def score(members: list, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(members, items) correctness and the soft vote's correctness."""
    probs = np.stack([m.predict_proba(x) for m in members])
    return probs.argmax(2) == y, probs.mean(0).argmax(1) == y


def side_by_side(table: pd.DataFrame) -> pd.DataFrame:
    """Quantity x subjects rows, one ``coverage ± MC error`` column per method."""
    cell = table.assign(
        cell=[f"{100 * c:5.1f} ± {100 * e:3.1f}" for c, e in zip(table.coverage, table.mc_error)]
    )
    wide = cell.pivot_table(
        index=["quantity", "subjects", "draws"], columns="method", values="cell", aggfunc="first"
    )
    width = cell.pivot_table(index=["quantity", "subjects"], columns="method", values="mean_width")
    wide = wide[[m for m in METHODS if m in wide.columns]]
    for m in wide.columns:
        wide[f"width {m}"] = (100 * width[m]).round(1).to_numpy()
    return wide


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="20 draws, 100 truth subjects")
    p.add_argument("--draws", type=int, default=300, help="test sets at the largest size")
    p.add_argument("--truth-subjects", type=int, default=1500)
    p.add_argument("--sizes", type=int, nargs="+", default=[5, 15])
    p.add_argument("--members", type=int, default=15)
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.quick:  # smaller defaults; values given on the command line still win
        p.set_defaults(draws=20, truth_subjects=100)
        args = p.parse_args()
    cv2.setNumThreads(1)
    threadpool_limits(1)  # one core: the numbers do not depend on BLAS threads
    t0 = time.perf_counter()
    members = train_members(args.members, args.seed)
    t1 = time.perf_counter()
    true = truth(*score(members, *render(args.truth_subjects, seed=1)[:2]))
    t2 = time.perf_counter()
    pool_x, pool_y, pool_s = render(args.draws * max(args.sizes), seed=2)
    member_correct, vote_correct = score(members, pool_x, pool_y)
    t3 = time.perf_counter()
    table = coverage_table(
        member_correct, vote_correct, pool_s, true, args.sizes, n_boot=args.n_boot,
        seed=args.seed,
    )  # fmt: skip
    t4 = time.perf_counter()
    n_pool = len(np.unique(pool_s))
    print(
        f"coverage of 95 % intervals · {args.members} members (HOG + logistic regression) · "
        f"{PER_CLASS * len(CLASS_NAMES)} images per subject · pool {n_pool} fresh subjects · "
        f"truth on {args.truth_subjects} other subjects · {args.n_boot} bootstrap resamples"
    )
    print(
        "true values: "
        + ", ".join(f"{k} {100 * v:.2f}" for k, v in true.items())
        + " (percent / points)"
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(side_by_side(table).to_string())
    print(
        f"cells: coverage % ± Monte-Carlo standard error; width: mean interval width in points"
        f"\ntimes: train {t1 - t0:.0f} s · truth {t2 - t1:.0f} s · pool {t3 - t2:.0f} s · "
        f"intervals {t4 - t3:.0f} s · total {t4 - t0:.0f} s on {platform.machine()} "
        f"({os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
