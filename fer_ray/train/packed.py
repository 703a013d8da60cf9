"""Several grid cells trained in one process as one batched model (``torch.func`` + ``vmap``).

A small tail (layer4.1 + head on cached features) leaves a GPU mostly idle: its kernels are
too small to fill the device, whatever the batch size of one trial. Cells that share the
architecture (same ``hidden``) and the training split (same fold) can run as ONE batched
forward/backward: their parameters are stacked (``torch.func.stack_module_state``'s layout)
and ``vmap`` maps the tail over them, each cell with its own batch order (its seed), its own
optimizer at its own learning rate, its own BatchNorm statistics. The numbers equal those of
``fit`` on each cell alone up to float reassociation (tests: 1e-5).

Scope: one phase, validation selection on the last epoch's weights (``keep_best=False``, as
the grid scores its cells), no per-batch transform, no class weights, no checkpoints (a packed
trial restarts from scratch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from fer_ray.train.loop import Split, autocast, evaluate, make_optimizer

if TYPE_CHECKING:
    from fer_ray.config import TrainConfig


def _epoch_seed(seed: int, p_idx: int, epoch: int) -> int:
    return int(seed) * 1_000_003 + p_idx * 10_007 + epoch  # as fit draws its batch order


def fit_packed(
    modules: list[nn.Module],
    train: Split,
    val: Split,
    lrs: list[float],
    epochs: int,
    cfg: TrainConfig,
    seeds: list[int],
    on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train ``modules[i]`` at ``lrs[i]`` with seed ``seeds[i]`` for ``epochs``, all at once.

    The modules must share their architecture and device. Each ends with its last epoch's
    weights (written back into it); returns per module ``{"history", "best"}`` as ``fit``
    does with ``keep_best=False``. ``on_epoch(i, row)`` runs for every module after every
    epoch.
    """
    n_models = len(modules)
    if not (len(lrs) == len(seeds) == n_models) or n_models == 0:
        raise ValueError("fit_packed needs one lr and one seed per module")
    device = next(modules[0].parameters()).device
    amp = getattr(cfg, "amp", "none")
    train, val = train.to(device), val.to(device)
    base = modules[0]
    trained = [n for n, p in base.named_parameters() if p.requires_grad]
    optimizers = [
        make_optimizer([p for p in m.parameters() if p.requires_grad], cfg, lr)
        for m, lr in zip(modules, lrs)
    ]
    _, buffers = stack_module_state(modules)  # stacked copies: BatchNorm statistics per model
    frozen, _ = stack_module_state(modules)
    frozen = {k: v.detach() for k, v in frozen.items() if k not in trained}
    own = [dict(m.named_parameters()) for m in modules]

    def one(params: dict, bufs: dict, x: torch.Tensor, y: torch.Tensor) -> tuple:
        with autocast(device, amp):
            out = functional_call(base, (params, bufs), (x,))
            loss = nn.functional.cross_entropy(out, y)
        return loss, (out.argmax(1) == y).sum()

    step = vmap(one, in_dims=(0, 0, 0, 0), randomness="error")
    states = [{"history": [], "best": None} for _ in modules]
    n = len(train)
    for epoch in range(epochs):
        for m in modules:
            m.train()
        gens = [torch.Generator().manual_seed(_epoch_seed(s, 0, epoch)) for s in seeds]
        orders = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)
        total = torch.zeros(n_models, dtype=torch.float64)
        correct = torch.zeros(n_models, dtype=torch.long)
        for start in range(0, n, cfg.batch_size):
            idx = orders[:, start : start + cfg.batch_size]
            if idx.shape[1] < 2 and n > 1:
                continue  # a batch of one breaks BatchNorm, as in train_epoch
            params = {k: torch.stack([o[k] for o in own]) for k in trained}
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            losses, hits = step({**params, **frozen}, buffers, train.x[idx], train.y[idx])
            losses.sum().backward()  # the cells are independent: each gets its own gradient
            for opt in optimizers:
                opt.step()
            total += (
                torch.tensor(losses.detach().float().cpu().tolist(), dtype=torch.float64)
                * idx.shape[1]
            )
            correct += hits.cpu()
        with torch.no_grad():  # each module gets its statistics back, then scores alone
            for i, m in enumerate(modules):
                for k, b in m.named_buffers():
                    b.copy_(buffers[k][i])
        for i, m in enumerate(modules):
            row: dict[str, Any] = {
                "phase": 1,
                "epoch": epoch + 1,
                "step": epoch + 1,
                "lr": lrs[i],
                "train_loss": float(total[i]) / max(1, n),
                "train_acc": int(correct[i]) / max(1, n),
            }
            row.update({f"val_{k}": v for k, v in evaluate(m, val, amp=amp).items()})
            st = states[i]
            if st["best"] is None or row["val_acc"] > st["best"]["score"]:
                st["best"] = {"score": row["val_acc"], "phase": 1, "epoch": epoch + 1,
                              "step": epoch + 1, "state": None}  # fmt: skip
            st["history"].append(row)
            if on_epoch is not None:
                on_epoch(i, row)
    return states
