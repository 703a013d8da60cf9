"""Seed 000's descriptor baseline network: z-scored LPQ/PHOG inputs → hidden → 7 classes.

Plain PyTorch on the shared ``Head`` and training loop; the descriptors stage runs one
``train_fold`` per (repeat, fold) as a Ray task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fer_ray.config import TrainConfig
from fer_ray.data.descriptors import CLASS_NAMES
from fer_ray.models.head import Head
from fer_ray.train.loop import Phase, Split, fit, predict_proba

N_CLASSES = len(CLASS_NAMES)
if TYPE_CHECKING:  # the descriptors recipe's section; a pure module reads only its fields
    from fer_ray.recipes.descriptors import DescriptorsConfig

ACTIVATION = "relu"  # Head's default; seed 000 does not name the hidden activation


def zscore(x: np.ndarray, train_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the training rows only (a constant column gets std 1)."""
    mean = x[train_idx].mean(axis=0)
    std = x[train_idx].std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def train_fold(
    x: np.ndarray,
    y: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    d: DescriptorsConfig,
    tcfg: TrainConfig,
    seed: int,
) -> dict[str, Any]:
    """Train one 10-hidden-7 head on the train rows; evaluate its last epoch on the fold."""
    torch.set_num_threads(1)
    mean, std = zscore(x, train_idx)
    x_tr, x_va = (x[train_idx] - mean) / std, (x[val_idx] - mean) / std
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = Head(x.shape[1], d.hidden, N_CLASSES, ACTIVATION)
    tr = Split(torch.as_tensor(x_tr, dtype=torch.float32), torch.as_tensor(y[train_idx]))
    va = Split(torch.as_tensor(x_va, dtype=torch.float32), torch.as_tensor(y[val_idx]))
    last: dict[str, Any] = {}

    def on_epoch(row: dict[str, Any], snapshot: Any) -> None:
        if row["epoch"] == d.epochs:
            last["state"], last["row"] = snapshot()["module"], row

    st = fit(head, tr, va, [Phase(d.lr, d.epochs)], tcfg, seed, on_epoch=on_epoch)
    head.load_state_dict(last["state"])  # fit loads the best-on-fold epoch; we keep the last
    preds = predict_proba(head, va.x).argmax(1)
    return {
        "w_hidden": head.fc1.weight.detach().numpy().astype(np.float64),
        "b_hidden": head.fc1.bias.detach().numpy().astype(np.float64),
        "w_out": head.fc2.weight.detach().numpy().astype(np.float64),
        "b_out": head.fc2.bias.detach().numpy().astype(np.float64),
        "val_features": x_va,
        "val_labels": y[val_idx],
        "val_preds": preds.astype(np.int64),
        "train_idx": train_idx,
        "val_idx": val_idx,
        "mean": mean,
        "std": std,
        "val_acc": float(np.mean(preds == y[val_idx])),
        "train_acc": float(last["row"]["train_acc"]),
        "val_acc_best_epoch": float(st["best"]["score"]),
        "best_epoch": int(st["best"]["epoch"]),
    }
