"""Plain PyTorch fit/evaluate with multi-phase training and resumable state.

No Ray here: a stage wraps ``fit`` and turns ``on_epoch`` into ``tune.report``
with a checkpoint. Every epoch's batch order is seeded from (seed, phase, epoch),
so a run resumed from a checkpoint trains exactly as an uninterrupted one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from fer_ray.config import TrainConfig

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Phase:
    lr: float
    epochs: int


@dataclass
class Split:
    """Inputs (cached trunk features or normalised pixels) and labels of one split."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


def torch_settings(threads: int, deterministic: bool = True) -> None:
    """Fix what decides a process's numbers besides the seeds: its thread count (reductions
    split differently with more threads) and, when asked, deterministic kernels."""
    torch.set_num_threads(max(1, int(threads)))
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def make_optimizer(
    params: list[nn.Parameter], cfg: TrainConfig, lr: float
) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def train_epoch(
    module: nn.Module,
    data: Split,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator,
    transform: Transform | None = None,
    loss_fn: Loss = nn.functional.cross_entropy,
) -> tuple[float, float]:
    """One pass in a seeded random order; returns (mean loss, accuracy).

    ``transform`` (a recipe's per-batch augmentation) draws from the same generator, so a
    resumed epoch replays exactly. With a regression ``loss_fn`` the accuracy is NaN.
    """
    module.train()
    device = _device_of(module)
    order = torch.randperm(len(data), generator=generator)
    total_loss, correct = 0.0, 0
    classify = not data.y.is_floating_point()
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if len(idx) < 2 and len(order) > 1:
            continue  # a batch of one breaks BatchNorm; it is re-drawn next epoch
        x = data.x[idx]
        if transform is not None:
            x = transform(x, generator)
        x, y = x.to(device), data.y[idx].to(device)
        optimizer.zero_grad(set_to_none=True)
        out = module(x)
        loss = loss_fn(out, y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(idx)
        if classify:
            correct += int((out.argmax(1) == y).sum())
    acc = correct / max(1, len(order)) if classify else float("nan")
    return total_loss / max(1, len(order)), acc


@torch.no_grad()
def predict_proba(module: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    module.eval()
    device = _device_of(module)
    out = [
        torch.softmax(module(x[s : s + batch_size].to(device)), 1).cpu()
        for s in range(0, len(x), batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def evaluate(module: nn.Module, data: Split, batch_size: int = 256) -> dict[str, float]:
    probs = predict_proba(module, data.x, batch_size)
    y = data.y.numpy()
    eps = 1e-12
    loss = float(-np.log(probs[np.arange(len(y)), y] + eps).mean()) if len(y) else float("nan")
    acc = float((probs.argmax(1) == y).mean()) if len(y) else float("nan")
    return {"loss": loss, "acc": acc}


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def fit(
    module: nn.Module,
    train: Split,
    val: Split,
    phases: list[Phase],
    cfg: TrainConfig,
    seed: int,
    *,
    select_on: str = "val",
    test: Split | None = None,
    state: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any], Callable[[], dict[str, Any]]], None] | None = None,
    transform: Transform | None = None,
) -> dict[str, Any]:
    """Train through ``phases``; each phase starts from the best state so far.

    Selection uses ``select_on`` ("val", or "test" for seed 000's protocol; the
    test split is then evaluated every epoch). ``state`` is what ``on_epoch``'s
    second argument returned earlier: passing it resumes after that epoch.
    Returns the final state; its "best" entry holds the selected weights.
    """
    if select_on not in ("val", "test"):
        raise ValueError(f"select_on must be 'val' or 'test', got {select_on!r}")
    if select_on == "test" and test is None:
        raise ValueError("select_on='test' needs a test split")
    params = [p for p in module.parameters() if p.requires_grad]
    st = state or {"phase": 0, "epoch": 0, "history": [], "best": None, "optim": None}
    if state is not None:
        module.load_state_dict(state["module"])
    optimizer = None
    for p_idx in range(st["phase"], len(phases)):
        phase = phases[p_idx]
        if optimizer is None or st["epoch"] == 0:
            if st["epoch"] == 0 and st["best"] is not None and p_idx > 0:
                module.load_state_dict(st["best"]["state"])  # phase starts from the best so far
            optimizer = make_optimizer(params, cfg, phase.lr)
            if st["epoch"] > 0 and st.get("optim") is not None:
                optimizer.load_state_dict(st["optim"])
        for epoch in range(st["epoch"], phase.epochs):
            gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + p_idx * 10_007 + epoch)
            tr_loss, tr_acc = train_epoch(module, train, optimizer, cfg.batch_size, gen, transform)
            row: dict[str, Any] = {
                "phase": p_idx + 1,
                "epoch": epoch + 1,
                "step": len(st["history"]) + 1,
                "lr": phase.lr,
                "train_loss": tr_loss,
                "train_acc": tr_acc,
            }
            row.update({f"val_{k}": v for k, v in evaluate(module, val).items()})
            if select_on == "test":
                row.update({f"test_{k}": v for k, v in evaluate(module, test).items()})
            score = row[f"{select_on}_acc"]
            if st["best"] is None or score > st["best"]["score"]:
                st["best"] = {
                    "score": score,
                    "phase": p_idx + 1,
                    "epoch": epoch + 1,
                    "step": row["step"],
                    "state": _cpu_state(module),
                }
            st["history"].append(row)
            st["epoch"] = epoch + 1
            st["phase"] = p_idx

            def snapshot(optimizer: torch.optim.Optimizer = optimizer) -> dict[str, Any]:
                snap = dict(st)
                snap["history"] = list(st["history"])  # later epochs must not leak in
                snap["module"] = _cpu_state(module)
                snap["optim"] = copy.deepcopy(optimizer.state_dict())
                return snap

            if on_epoch is not None:
                on_epoch(row, snapshot)
        st["phase"], st["epoch"] = p_idx + 1, 0
    if st["best"] is not None:
        module.load_state_dict(st["best"]["state"])
    return st
