"""Plain PyTorch fit/evaluate with multi-phase training and resumable state.

No Ray here: a stage wraps ``fit`` and turns ``on_epoch`` into ``tune.report``, with a
checkpoint when ``fit``'s ``CheckpointPolicy`` says one is due. Every epoch's batch order is
seeded from (seed, phase, epoch), so a run resumed from a checkpoint trains exactly as an
uninterrupted one.

A checkpoint (``on_epoch``'s snapshot) holds only what training can change: the parameters
that train in some phase, every buffer (BatchNorm statistics), the optimizer's state, and
the best epoch's weights unless they are the current ones. Frozen weights are rebuilt by the
caller (the same model factory and seed), so they are not stored.

Options (none changes a default run's numbers): per-class loss weights, phases with parameter
groups at their own learning rates (discriminative fine-tuning), bf16 autocast and
channels-last memory (``train.amp``, ``train.channels_last``), inputs kept on the model's
device for the whole fit (no per-batch host→device copy when no per-batch transform runs).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from fer_ray.train.checkpoint import (
    CheckpointPolicy,
    Snapshot,
    changing_state,
    load_state,
    resume,
    take_snapshot,
)
from fer_ray.train.rows import Rows

if TYPE_CHECKING:
    from fer_ray.config import TrainConfig

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# a phase's parameter group: parameters (or a name prefix of the module's parameters, or a
# tuple of prefixes) and its learning-rate multiplier
Group = tuple[Any, float]
__all__ = [
    "CheckpointPolicy",
    "Phase",
    "Snapshot",
    "Split",
    "evaluate",
    "fit",
    "make_optimizer",
    "predict_proba",
    "torch_settings",
    "train_epoch",
]


@dataclass(frozen=True)
class Phase:
    """``epochs`` at ``lr``. With ``groups`` only the listed parameters train, group ``i`` at
    ``lr * multiplier_i``; every other parameter (and every BatchNorm whose parameters are
    all frozen, statistics included) stays as it is for this phase."""

    lr: float
    epochs: int
    groups: tuple[Group, ...] | None = None

    def __post_init__(self) -> None:
        if self.groups is not None:
            object.__setattr__(self, "groups", tuple((g, float(m)) for g, m in self.groups))

    @classmethod
    def discriminative(cls, lo: float, hi: float, epochs: int, groups: Sequence[Any]) -> Phase:
        """fastai's ``slice(lo, hi)``: group ``i`` of ``n`` (earliest layers first) trains at
        ``lo * (hi / lo) ** (i / (n - 1))``, the last group at ``hi``."""
        n = len(groups)
        mult = [1.0] if n == 1 else [(lo / hi) ** (1 - i / (n - 1)) for i in range(n)]
        return cls(hi, epochs, tuple(zip(groups, mult)))


# inputs read from shards (``Rows``) are moved whole onto an accelerator for a fit only up to
# this size; larger splits, and every split on the CPU, are gathered batch by batch
ON_DEVICE_MAX_BYTES = 2 << 30


@dataclass
class Split:
    """Inputs (cached trunk features or normalised pixels: a tensor, or ``Rows`` gathered
    from shards batch by batch) and labels of one split."""

    x: torch.Tensor | Rows
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> Split:
        """The split on ``device``; ``Rows`` stay where they are on the CPU or when larger
        than ``ON_DEVICE_MAX_BYTES`` (their batches move one at a time instead)."""
        x = self.x
        if isinstance(x, Rows):
            if torch.device(device).type == "cpu" or x.nbytes > ON_DEVICE_MAX_BYTES:
                return self
            x = x.materialize()
        return Split(x.to(device), self.y.to(device))


def torch_settings(threads: int, deterministic: bool = True) -> None:
    """Fix what decides a process's numbers besides the seeds: its thread count (reductions
    split differently with more threads) and, when asked, deterministic kernels; otherwise
    cuDNN benchmarks and picks the fastest ones (``train.deterministic: false``)."""
    torch.set_num_threads(max(1, int(threads)))
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def make_optimizer(params: Iterable[Any], cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """``params``: parameters, or param-group dicts (each may carry its own ``lr``).

    Fused kernels where every parameter allows them: one vectorised update instead of a
    Python loop over tensors (Adam's step was a fifth of a default trial's time on a CPU)."""
    params = [_materialised(p) for p in params]  # fused_ok reads them; keep them readable
    fused = fused_ok(params)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay, fused=fused)
    return torch.optim.SGD(
        params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=fused
    )


def _materialised(p: Any) -> Any:
    if not isinstance(p, dict):
        return p
    ps = p["params"]
    return {**p, "params": [ps] if isinstance(ps, torch.Tensor) else list(ps)}


def fused_ok(params: list[Any]) -> bool | None:
    """True when every parameter is a floating tensor on a CPU or CUDA device (torch's fused
    optimizers' condition), else None (torch's default choice)."""
    tensors = [t for p in params for t in (p["params"] if isinstance(p, dict) else [p])]
    ok = all(t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in tensors)
    return True if ok and tensors else None


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for ``amp == "bf16"`` (no loss scaling needed), else nothing."""
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def _freeze_frozen_batchnorms(module: nn.Module) -> None:
    """BatchNorms whose parameters are all frozen keep their statistics (eval mode)."""
    for m in module.modules():
        params = list(m.parameters(recurse=False))
        frozen = params and not any(p.requires_grad for p in params)
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and frozen:
            m.eval()


def train_epoch(
    module: nn.Module,
    data: Split,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator,
    transform: Transform | None = None,
    loss_fn: Loss = nn.functional.cross_entropy,
    *,
    amp: str = "none",
    channels_last: bool = False,
    freeze_bn: bool = False,
) -> tuple[float, float]:
    """One pass in a seeded random order; returns (mean loss, accuracy).

    ``transform`` (a recipe's per-batch augmentation) draws from the same generator, so a
    resumed epoch replays exactly. With a regression ``loss_fn`` the accuracy is NaN. Inputs
    already on the model's device stay there (the batch order is drawn on the CPU either way).
    """
    module.train()
    if freeze_bn:
        _freeze_frozen_batchnorms(module)
    device = _device_of(module)
    order = torch.randperm(len(data), generator=generator)
    if data.x.device != order.device:
        order = order.to(data.x.device)
    total_loss, correct = 0.0, 0
    classify = not data.y.is_floating_point()
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if len(idx) < 2 and len(order) > 1:
            continue  # a batch of one breaks BatchNorm; it is re-drawn next epoch
        x = data.x[idx]
        if transform is not None:
            x = transform(x, generator)
        x, y = _layout(x.to(device), channels_last), data.y[idx].to(device)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, amp):
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
def predict_proba(
    module: nn.Module,
    x: torch.Tensor | Rows,
    batch_size: int = 256,
    *,
    amp: str = "none",
    channels_last: bool = False,
) -> np.ndarray:
    module.eval()
    device = _device_of(module)
    out = []
    for s in range(0, len(x), batch_size):
        with autocast(device, amp):
            logits = module(_layout(x[s : s + batch_size].to(device), channels_last))
        out.append(torch.softmax(logits.float(), 1).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def evaluate(
    module: nn.Module, data: Split, batch_size: int = 256, **options: Any
) -> dict[str, float]:
    """Unweighted loss and accuracy (class weights shape training, not the metric)."""
    probs = predict_proba(module, data.x, batch_size, **options)
    y = data.y.cpu().numpy()
    eps = 1e-12
    loss = float(-np.log(probs[np.arange(len(y)), y] + eps).mean()) if len(y) else float("nan")
    acc = float((probs.argmax(1) == y).mean()) if len(y) else float("nan")
    return {"loss": loss, "acc": acc}


def _resolve(
    module: nn.Module, groups: tuple[Group, ...]
) -> list[tuple[list[nn.Parameter], float]]:
    """Parameter groups with prefixes resolved to the module's parameters, in module order."""
    named = list(module.named_parameters())
    out = []
    for sel, mult in groups:
        prefixes = (sel,) if isinstance(sel, str) else sel
        if isinstance(prefixes, tuple) and prefixes and all(isinstance(q, str) for q in prefixes):
            params = [p for n, p in named if any(n == q or n.startswith(q + ".") for q in prefixes)]
            if not params:
                raise ValueError(f"phase group {sel!r} matches no parameter of the model")
        else:
            params = list(sel)
        out.append((params, mult))
    return out


class _Trainable:
    """Which parameters train in each phase (``requires_grad`` is set per phase and restored
    when the fit ends) and what a checkpoint keeps: those parameters and every buffer."""

    def __init__(self, module: nn.Module, phases: list[Phase]):
        self.module = module
        self.base = {p: p.requires_grad for p in module.parameters()}
        self.groups = [_resolve(module, ph.groups) if ph.groups else None for ph in phases]
        ever = {id(p) for p, on in self.base.items() if on}
        ever |= {id(p) for g in self.groups if g for ps, _ in g for p in ps}
        names = {n for n, p in module.named_parameters() if id(p) in ever}
        self.keep = names | {n for n, _ in module.named_buffers()}

    def optimizer(self, p_idx: int, phase: Phase, cfg: TrainConfig) -> torch.optim.Optimizer:
        groups = self.groups[p_idx]
        if groups is None:
            self.restore()
            return make_optimizer([p for p, on in self.base.items() if on], cfg, phase.lr)
        on = {id(p) for ps, _ in groups for p in ps}
        for p in self.module.parameters():
            p.requires_grad_(id(p) in on)
        return make_optimizer(
            [{"params": ps, "lr": phase.lr * m} for ps, m in groups], cfg, phase.lr
        )

    def restore(self) -> None:
        for p, on in self.base.items():
            p.requires_grad_(on)


def diverged_row(select_on: str = "val") -> dict[str, Any]:
    """An epoch whose training loss is not finite: the weights are NaN or inf from here on,
    so every accuracy is unknown (an argmax of NaN would read as class 0, i.e. chance)."""
    row: dict[str, Any] = {"diverged": True, "val_loss": float("nan"), "val_acc": float("nan")}
    if select_on == "test":
        row.update({"test_loss": float("nan"), "test_acc": float("nan")})
    return row


def _phase_start(
    st: dict[str, Any], state: dict[str, Any] | None, module: nn.Module, tr: _Trainable,
    p_idx: int, phase: Phase, cfg: TrainConfig,
) -> torch.optim.Optimizer:  # fmt: skip
    """A phase's optimizer; a new phase starts from the best weights so far, a resumed one
    from its stored optimizer state."""
    best_state = (st["best"] or {}).get("state")
    if st["epoch"] == 0 and best_state is not None and p_idx > 0:
        load_state(module, best_state)
    optimizer = tr.optimizer(p_idx, phase, cfg)
    if st["epoch"] > 0 and state is not None and state.get("optim") is not None:
        optimizer.load_state_dict(state["optim"])
    return optimizer


def _check_selection(select_on: str, test: Split | None) -> None:
    if select_on not in ("val", "test"):
        raise ValueError(f"select_on must be 'val' or 'test', got {select_on!r}")
    if select_on == "test" and test is None:
        raise ValueError("select_on='test' needs a test split")


def _end_on_best(st: dict[str, Any], module: nn.Module, keep: set[str]) -> dict[str, Any]:
    best_state = (st["best"] or {}).get("state")
    if best_state is not None:
        load_state(module, best_state)
        st["best"]["state"] = changing_state(module, keep)  # saved with the module: stored once
    return st


def _loss(class_weights: torch.Tensor | None, device: torch.device) -> Loss:
    """Cross-entropy, weighted per class for training when ``class_weights`` are given."""
    if class_weights is None:
        return nn.functional.cross_entropy
    w = torch.as_tensor(class_weights).to(device=device, dtype=torch.float32)
    return functools.partial(nn.functional.cross_entropy, weight=w)


def _due(
    policy: CheckpointPolicy | None, epochs: int, last: tuple[int, float]
) -> tuple[bool | None, tuple[int, float]]:
    """Whether the policy asks for a checkpoint after ``epochs`` epochs, and the new "last
    checkpoint" (epochs, time); None without a policy (the caller decides)."""
    if policy is None:
        return None, last
    due = policy.due(epochs - last[0], time.monotonic() - last[1])
    return due, ((epochs, time.monotonic()) if due else last)


def _diverged(
    st: dict[str, Any], row: dict[str, Any], select_on: str, on_epoch: Callable | None
) -> None:
    """Record and report a diverged epoch (never checkpointed: its weights are not numbers)."""
    row.update(diverged_row(select_on))
    st["history"].append(row)
    st["diverged"] = {"phase": row["phase"], "epoch": row["epoch"], "step": row["step"]}
    if on_epoch is not None:
        on_epoch(row, Snapshot(lambda: {}, False))


def _track_best(
    st: dict[str, Any], row: dict[str, Any], score: float, module: nn.Module, keep: set[str],
    keep_best: bool,
) -> None:  # fmt: skip
    if st["best"] is None or score > st["best"]["score"]:
        st["best"] = {
            "score": score,
            "phase": row["phase"],
            "epoch": row["epoch"],
            "step": row["step"],
            "state": changing_state(module, keep, clone=True) if keep_best else None,
        }


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
    on_epoch: Callable[[dict[str, Any], Snapshot], None] | None = None,
    transform: Transform | None = None,
    class_weights: torch.Tensor | None = None,
    keep_best: bool = True,
    checkpoint: CheckpointPolicy | None = None,
) -> dict[str, Any]:
    """Train through ``phases``; each phase starts from the best state so far.

    Selection uses ``select_on`` ("val", or "test" for seed 000's protocol). ``on_epoch(row,
    snapshot)`` runs after every epoch; ``snapshot()`` is the resumable state, ``snapshot.due``
    whether ``checkpoint`` asks to store it now; an earlier snapshot as ``state`` resumes after
    its epoch with the numbers of an uninterrupted fit. ``class_weights``: weighted
    cross-entropy. ``keep_best=False`` keeps no copy of the best weights: phases continue from
    the last epoch. A non-finite training loss ends the fit (``state["diverged"]``).

    Returns the final state; with ``keep_best`` the module holds the best epoch's weights and
    ``state["best"]["state"]`` is a view of them (it shares the module's storage).
    """
    _check_selection(select_on, test)
    amp, channels_last = getattr(cfg, "amp", "none"), getattr(cfg, "channels_last", False)
    opts = {"amp": amp, "channels_last": channels_last}
    device = _device_of(module)
    if channels_last:
        module.to(memory_format=torch.channels_last)
    if transform is None:  # the whole fit's inputs live on the model's device (once)
        train, val = train.to(device), val.to(device)
        test = test.to(device) if test is not None else None
    loss_fn = _loss(class_weights, device)
    tr = _Trainable(module, phases)
    if state is not None:
        st = resume(module, state, tr.keep, keep_best)
    else:
        st = {"phase": 0, "epoch": 0, "history": [], "best": None}
    last_ckpt = (len(st["history"]), time.monotonic())
    optimizer = None
    try:
        for p_idx in range(st["phase"], len(phases)):
            phase = phases[p_idx]
            if optimizer is None or st["epoch"] == 0:
                optimizer = _phase_start(st, state, module, tr, p_idx, phase, cfg)
            for epoch in range(st["epoch"], phase.epochs):
                gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + p_idx * 10_007 + epoch)
                tr_loss, tr_acc = train_epoch(module, train, optimizer, cfg.batch_size, gen,
                                              transform, loss_fn, **opts,
                                              freeze_bn=phase.groups is not None)  # fmt: skip
                row: dict[str, Any] = {"phase": p_idx + 1, "epoch": epoch + 1,
                                       "step": len(st["history"]) + 1, "lr": phase.lr,
                                       "train_loss": tr_loss, "train_acc": tr_acc}  # fmt: skip
                if not math.isfinite(tr_loss):  # diverged: no accuracy to report, not chance
                    _diverged(st, row, select_on, on_epoch)
                    break
                row.update({f"val_{k}": v for k, v in evaluate(module, val, **opts).items()})
                if select_on == "test":
                    row.update({f"test_{k}": v for k, v in evaluate(module, test, **opts).items()})
                _track_best(st, row, row[f"{select_on}_acc"], module, tr.keep, keep_best)
                st["history"].append(row)
                st["epoch"] = epoch + 1
                st["phase"] = p_idx
                due, last_ckpt = _due(checkpoint, len(st["history"]), last_ckpt)
                if on_epoch is not None:
                    take = functools.partial(take_snapshot, st, module, optimizer, tr.keep)
                    on_epoch(row, Snapshot(take, due))
            if st.get("diverged"):
                break
            st["phase"], st["epoch"] = p_idx + 1, 0
    finally:
        tr.restore()
    return _end_on_best(st, module, tr.keep)
