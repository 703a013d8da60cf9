"""The one object every trial reads by reference: inputs, labels and splits.

When the feature cache applies, a Ray task (on a GPU when the config asks for
one) runs the frozen trunk once per image and returns the bundle; it stays in
the object store and each trial gets it by reference, never from a
driver-local path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import ray
import torch

from fer_ray.config import Config
from fer_ray.data import transforms
from fer_ray.data.splits import SplitError, assert_disjoint, grouped_folds, grouped_holdout
from fer_ray.models.pretrain import cached_pretrain
from fer_ray.stages.prepare import Prepared, cache_root
from fer_ray.train.features import cache_applicable, trunk_features
from fer_ray.train.loop import Split


@dataclass
class TrialData:
    x: np.ndarray  # cached trunk features (float32 NCHW) or crops (uint8 NHWC)
    kind: str  # "features" | "pixels"
    y: np.ndarray
    groups: np.ndarray
    test: np.ndarray  # bool: the shared grouped holdout, never used by the grid
    folds: np.ndarray  # grid fold per item, -1 on test items
    n_classes: int
    backbone_state: dict | None = None  # model.weights=synthetic: the pretrained backbone
    recipe: str = "none"  # train.augment: how pixels become network input

    def split(self, mask: np.ndarray, train: bool = False) -> Split:
        """Inputs of ``mask``'s items; a training split of a random recipe stays uint8
        (it is augmented batch by batch, see ``augment``), every other one is final."""
        idx = np.flatnonzero(mask)
        x = torch.from_numpy(self.x[idx])
        if self.kind == "pixels" and not (train and self.augment() is not None):
            x = transforms.get(self.recipe).eval_batch(x)
        return Split(x, torch.from_numpy(self.y[idx]).long())

    def augment(self) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None:
        """The per-batch training transform (None on cached features or a fixed recipe)."""
        recipe = transforms.get(self.recipe)
        return recipe.train_batch if self.kind == "pixels" and recipe.random else None

    def member_split(self, seed: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """Train/val masks of one ensemble member: grouped, drawn from its own seed."""
        rest = ~self.test
        val = np.zeros_like(rest)
        val[rest] = grouped_holdout(self.y[rest], self.groups[rest], val_fraction, seed)
        train = rest & ~val
        assert_disjoint(self.groups, train, val, self.test)
        return train, val


def make_splits(
    cfg: Config, y: np.ndarray, groups: np.ndarray, own_split: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The shared test holdout and the grid folds of the rest, all grouped.

    With ``data.test_split`` the data set's own split (``own_split``) is the holdout;
    otherwise one grouped, stratified fold of about ``ensemble.test_fraction``.
    """
    want = cfg.data.test_split
    if want is None:
        test = grouped_holdout(y, groups, cfg.ensemble.test_fraction, cfg.seed)
    else:
        own = np.asarray(own_split if own_split is not None else [], dtype=object).astype(str)
        test = own == want
        if not test.any() or test.all():
            found = sorted(set(own.tolist()))
            raise SplitError(
                f"data.test_split={want!r} must name a part of the data set's own split, not all"
                f" of it; this data set's split values are {found}"
            )
        assert_disjoint(groups, ~test, test)
    folds = np.full(len(y), -1, dtype=np.int64)
    folds[~test] = grouped_folds(y[~test], groups[~test], cfg.grid.folds, cfg.seed)
    for f in range(cfg.grid.folds):
        assert_disjoint(groups, (folds >= 0) & (folds != f), folds == f, test)
    return test, folds


def _bundle(cfg: Config, images: np.ndarray, y, groups, test, folds, n_classes, cache_dir):  # noqa: ANN001
    use, _ = cache_applicable(cfg.model, cfg.train)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    state, pre = None, None
    if cfg.model.weights == "synthetic":
        state, pre = cached_pretrain(cfg, cache_dir, device)
    if use:
        x = trunk_features(
            cfg.model, images, device=device, backbone_state=state, recipe=cfg.train.augment
        )
        kind = "features"
    else:
        x, kind = images, "pixels"
    data = TrialData(x, kind, y, groups, test, folds, n_classes, state, cfg.train.augment)
    return data, pre


@ray.remote(num_returns=2)
def _bundle_task(cfg, images, y, groups, test, folds, n_classes, cache_dir, threads):  # noqa: ANN001
    torch.set_num_threads(threads)  # Ray pins tasks to 1 thread; this one owns `threads` CPUs
    return _bundle(cfg, images, y, groups, test, folds, n_classes, cache_dir)


def build(cfg: Config, prepared: Prepared) -> tuple[ray.ObjectRef, dict]:
    """Object ref to the TrialData bundle, and facts for the report."""
    m = prepared.manifest
    y = m["label"].to_numpy(np.int64)
    groups = m["group"].astype(str).to_numpy()
    test, folds = make_splits(cfg, y, groups, m["split"].fillna("").to_numpy())
    use, why = cache_applicable(cfg.model, cfg.train)
    t0 = time.time()
    gpus = 1 if cfg.resources.gpus_per_trial > 0 else 0
    cache_dir = cache_root(cfg).parent / "weights"
    # pretraining and the trunk pass run before any trial: give them a node's cores (at most 8)
    threads = max(1, min(8, int(ray.cluster_resources().get("CPU", 1))))
    ref, pre_ref = _bundle_task.options(num_gpus=gpus, num_cpus=threads).remote(
        cfg, prepared.images, y, groups, test, folds, len(prepared.class_names), cache_dir, threads
    )
    pretrain = ray.get(pre_ref)
    info = {
        "weights": cfg.model.weights,
        "pretrain": pretrain,
        "recipe": f"{cfg.train.augment}: {transforms.get(cfg.train.augment).description}",
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
