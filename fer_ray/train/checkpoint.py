"""What a training checkpoint holds, when one is due, and how a fit resumes from it.

A snapshot (format 2) holds only what training can change: the parameters that train in some
phase, every buffer (BatchNorm statistics), the optimizer's state, the history, and the best
epoch's weights unless they are the current ones (then a flag says so). Frozen weights are
rebuilt by the caller (same model factory, same seed) and are not stored. Every value loads
with ``torch.load(..., weights_only=True)``. Format 1 (the full module state and a full copy
of the best state) still loads.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fer_ray import files
from fer_ray.errors import StoredFileError

STATE_FORMAT = 2
STATE_KEYS = ("phase", "epoch", "history", "best", "module", "optim")


@dataclass(frozen=True)
class CheckpointPolicy:
    """When ``fit`` marks an epoch's snapshot as due: after ``every`` epochs or ``every_s``
    seconds since the last one (or since the fit began), whichever comes first; 0 turns a
    rule off. A restarted trial loses at most that much training plus the epoch under way."""

    every: int = 1
    every_s: float = 0.0

    def due(self, epochs_since: int, seconds_since: float) -> bool:
        return (self.every > 0 and epochs_since >= self.every) or (
            self.every_s > 0 and seconds_since >= self.every_s
        )


class Snapshot:
    """``on_epoch``'s second argument: call it for the resumable state after this epoch.
    ``due``: whether ``fit``'s checkpoint policy asks for a checkpoint now (None without a
    policy: the caller decides)."""

    def __init__(self, take: Callable[[], dict[str, Any]], due: bool | None):
        self._take, self.due = take, due

    def __call__(self) -> dict[str, Any]:
        return self._take()


def cpu_copy(obj: Any) -> Any:
    """A deep copy with every tensor on the CPU (what a checkpoint holds)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


def changing_state(
    module: nn.Module, keep: set[str], clone: bool = False
) -> dict[str, torch.Tensor]:
    """The entries of ``module``'s state dict named in ``keep`` (views, or clones)."""
    sd = module.state_dict()
    return {k: (v.detach().clone() if clone else v.detach()) for k, v in sd.items() if k in keep}


def load_state(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a full or a trained-only state; only frozen parameters may be missing."""
    missing, unexpected = module.load_state_dict(state, strict=False)
    frozen = {n for n, p in module.named_parameters() if not p.requires_grad}
    if unexpected or set(missing) - frozen:
        raise RuntimeError(
            f"checkpoint does not fit the model: missing {sorted(set(missing) - frozen)[:3]},"
            f" unexpected {sorted(unexpected)[:3]}"
        )


def take_snapshot(
    st: dict[str, Any], module: nn.Module, optimizer: torch.optim.Optimizer, keep: set[str]
) -> dict[str, Any]:
    """The resumable state after the last epoch in ``st["history"]``, on the CPU."""
    best = st["best"]
    if best is not None:
        b = {k: v for k, v in best.items() if k != "state"}
        same = best.get("state") is not None and best["step"] == st["history"][-1]["step"]
        b["same_as_module"] = same  # the current weights ARE the best: stored once
        b["state"] = None if same or best.get("state") is None else cpu_copy(best["state"])
        best = b
    return {
        "format": STATE_FORMAT,
        "phase": st["phase"],
        "epoch": st["epoch"],
        "history": list(st["history"]),  # later epochs must not leak in
        "best": best,
        "module": cpu_copy(changing_state(module, keep)),
        "optim": cpu_copy(optimizer.state_dict()),
    }


def resume(module: nn.Module, state: dict[str, Any], keep: set[str], keep_best: bool) -> dict:
    """Load a snapshot (format 1 or 2) into ``module``; returns the running state. A
    trained-only ``state["module"]`` is completed in place with the (rebuilt) frozen weights,
    so a caller may still load it strictly."""
    load_state(module, state["module"])
    full = module.state_dict()
    frozen = {k: v.detach().clone() for k, v in full.items() if k not in state["module"]}
    state["module"] = {**frozen, **state["module"]}
    best = state.get("best")
    if best is not None:
        best = dict(best)
        if best.pop("same_as_module", False):
            best["state"] = changing_state(module, keep, clone=True) if keep_best else None
        elif not keep_best:
            best["state"] = None
    return {
        "phase": state["phase"],
        "epoch": state["epoch"],
        "history": list(state["history"]),
        "best": best,
    }


def read_state(path: Path) -> dict[str, Any] | None:
    """The snapshot stored at ``path`` (a trial checkpoint's ``state.pt``), or None when it is
    absent or damaged. A damaged one (truncated by a full disk or a copy cut short) is moved
    aside with one printed line naming it, so the trial starts from its first epoch and no
    later restart or ``--resume`` trips on the same file."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = files.torch_load(path)
        missing = [k for k in STATE_KEYS if not isinstance(state, dict) or k not in state]
        if missing:
            raise files.damaged(path, "training checkpoint", f"keys {missing} are missing")
    except StoredFileError as e:
        files.quarantine(e, "trial checkpoint", "the trial starts again from its first epoch")
        return None
    return state
