"""The learning-rate range test (Smith 2017; fastai's ``lr_find``, seed 004 Fig. 4).

Train a COPY of the model for ``num_it`` mini-batches while the learning rate grows
exponentially from ``start_lr`` to ``end_lr``, record the loss, and read a learning rate
off the curve.  Seed 004 plots the curve (Fig. 4) but states neither the range nor how it
picked the rate; it used fastai v1, whose defaults are copied here: 1e-7 .. 10 over 100
batches, loss smoothed by a debiased exponential moving average (beta 0.98), stop once the
smoothed loss exceeds 4 x its best so far (or is not finite).

Suggestion rules (fastai v1's ``Recorder.plot(suggestion=True)`` shows both; seed 004 does
not say which it followed).  ``"min_div10"`` (default): the lr at the smallest smoothed loss,
divided by 10 (fastai v2's ``lr_min``); the minimum itself already sits at the edge of
divergence (the moving average lags), hence the "/10".  ``"steepest"``: the lr where the
smoothed loss falls fastest per step, i.e. per unit of log lr (``np.gradient`` minimum),
fastai v1's red dot.  Both ignore the first ``skip_start`` and last ``skip_end`` points
(fastai's 10 and 5).  The default is min/10 because the steepest point is fragile: on
the linear regression of this module's tests (4 data draws x 4 batch orders), batch noise
at tiny rates made it pick ~1e-6, where training does nothing, in 7 of 16 runs; min/10
landed 4-9x below the divergence limit in all 16.  No Ray here: plain PyTorch on
tensors, no DataLoader.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from fer_ray.errors import ConfigError, DataError
from fer_ray.train.rows import Rows

__all__ = ["LRFinderResult", "lr_find", "plot_lr_finder", "suggest_lr"]

Suggestion = Literal["steepest", "min_div10"]
SUGGESTIONS = ("steepest", "min_div10")


@dataclass(frozen=True)
class LRFinderResult:
    """The recorded curve and the suggested learning rate.

    ``lrs[i]`` is the rate of step i's update and ``losses[i]`` the loss of step i's batch
    before that update; ``smoothed`` its debiased moving average.  ``diverged``: the run
    stopped because the smoothed loss diverged at its last recorded point (no update was
    made with that point's lr).
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggested_lr: float
    suggestion: str
    steepest_lr: float
    min_loss_lr: float
    diverged: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (non-finite losses become None)."""

        def clean(a: np.ndarray) -> list[float | None]:
            return [float(v) if math.isfinite(v) else None for v in a]

        return {
            "lrs": [float(v) for v in self.lrs],
            "losses": clean(self.losses),
            "smoothed": clean(self.smoothed),
            "suggested_lr": self.suggested_lr,
            "suggestion": self.suggestion,
            "steepest_lr": self.steepest_lr,
            "min_loss_lr": self.min_loss_lr,
            "diverged": self.diverged,
        }


def _window(n: int, skip_start: int, skip_end: int) -> slice:
    """fastai's trim; falls back to the whole curve when it is too short to trim."""
    if n - skip_start - skip_end >= 3:
        return slice(skip_start, n - skip_end)
    return slice(0, n)


def suggest_lr(
    lrs: np.ndarray,
    smoothed: np.ndarray,
    rule: Suggestion = "min_div10",
    skip_start: int = 10,
    skip_end: int = 5,
) -> float:
    """A learning rate from a recorded curve (see the module docstring for the rules).

    The steepest-descent index is taken over the trimmed window; the diverging last
    points are also dropped from both rules by ``skip_end``.  Non-finite losses count as
    +inf (never the minimum, never a descent).
    """
    if rule not in SUGGESTIONS:
        raise ConfigError(f"lr suggestion must be one of {SUGGESTIONS}, got {rule!r}")
    lr = np.asarray(lrs, dtype=np.float64)
    loss = np.asarray(smoothed, dtype=np.float64)
    if lr.shape != loss.shape or lr.ndim != 1 or lr.size < 2:
        raise DataError(f"need matching 1-D lrs and losses of >= 2 points, got {lr.shape}")
    win = _window(lr.size, skip_start, skip_end)
    lr, loss = lr[win], np.where(np.isfinite(loss[win]), loss[win], np.inf)
    if rule == "min_div10":
        return float(lr[int(np.argmin(loss))] / 10.0)
    finite = np.isfinite(loss)
    if finite.sum() < 2:
        return float(lr[0])
    grad = np.gradient(np.where(finite, loss, np.nanmax(loss[finite])))
    grad[~finite] = np.inf
    return float(lr[int(np.argmin(grad))])


def _check(x: torch.Tensor | Rows, y: torch.Tensor, batch_size: int) -> None:
    if not isinstance(x, torch.Tensor | Rows) or not isinstance(y, torch.Tensor):
        raise DataError("lr_find needs tensors (or rows read from shards) x and a tensor y")
    if len(x) != y.shape[0]:
        raise DataError(f"x has {len(x)} rows but y has {y.shape[0]}")
    if batch_size < 2 or len(x) < 2:
        raise ConfigError(
            f"lr_find needs batch_size >= 2 and >= 2 items, got {batch_size}, {len(x)}"
        )


def _batches(n: int, batch_size: int, generator: torch.Generator):
    """Endless seeded epochs of index batches; a final batch of one is skipped (BatchNorm)."""
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            if len(idx) >= 2:
                yield idx


def lr_find(
    model: nn.Module,
    x: torch.Tensor | Rows,
    y: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator,
    optimizer_factory: Callable[[nn.Module], torch.optim.Optimizer],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_it: int = 100,
    beta: float = 0.98,
    diverge_factor: float = 4.0,
    suggestion: Suggestion = "min_div10",
    skip_start: int = 10,
    skip_end: int = 5,
) -> LRFinderResult:
    """Run the range test on a deep copy of ``model``; ``model`` itself is left untouched.

    Step i (0-based) uses ``lr_i = start_lr * (end_lr / start_lr) ** (i / (num_it - 1))``
    (first ``start_lr``, last ``end_lr``).  ``optimizer_factory(copy)`` builds the
    optimizer; with several parameter groups each keeps its ratio to the largest group's
    initial lr (discriminative rates scale together) and ``lrs`` records the largest.
    Batches come from seeded permutations of ``generator``; the copy's own randomness
    (dropout) is seeded from it too, inside a forked RNG, so the result is a function of
    the generator's seed and the global RNG is left as it was.
    """
    _check(x, y, batch_size)
    _check_settings(start_lr, end_lr, num_it, beta, suggestion)
    work = copy.deepcopy(model)
    work.train()
    device = next(work.parameters()).device
    optimizer = optimizer_factory(work)
    base = [float(g["lr"]) for g in optimizer.param_groups]
    top = max(base)
    ratios = [b / top if top > 0 else 1.0 for b in base]
    schedule = start_lr * (end_lr / start_lr) ** (np.arange(num_it) / (num_it - 1))
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    avg, best, diverged = 0.0, math.inf, False
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        rng_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        torch.default_generator.manual_seed(rng_seed)
        for dev in cuda:
            with torch.cuda.device(dev):
                torch.cuda.manual_seed(rng_seed)
        batches = _batches(len(x), batch_size, generator)
        for i, lr in enumerate(schedule):
            for group, ratio in zip(optimizer.param_groups, ratios):
                group["lr"] = float(lr) * ratio
            idx = next(batches)
            xb, yb = x[idx].to(device), y[idx].to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(work(xb), yb)
            value = float(loss.detach())
            avg = beta * avg + (1 - beta) * value
            smooth = avg / (1 - beta ** (i + 1))
            lrs.append(float(lr))
            losses.append(value)
            smoothed.append(smooth)
            if not math.isfinite(smooth) or smooth > diverge_factor * best:
                diverged = True
                break
            best = min(best, smooth)
            loss.backward()
            optimizer.step()
    return _result(lrs, losses, smoothed, diverged, suggestion, skip_start, skip_end)


def _check_settings(
    start_lr: float, end_lr: float, num_it: int, beta: float, suggestion: str
) -> None:
    if not 0 < start_lr < end_lr:
        raise ConfigError(f"need 0 < start_lr < end_lr, got {start_lr}, {end_lr}")
    if num_it < 2:
        raise ConfigError(f"num_it must be >= 2, got {num_it}")
    if not 0 <= beta < 1:
        raise ConfigError(f"smoothing beta must lie in [0, 1), got {beta}")
    if suggestion not in SUGGESTIONS:
        raise ConfigError(f"lr suggestion must be one of {SUGGESTIONS}, got {suggestion!r}")


def _result(
    lrs: list[float], losses: list[float], smoothed: list[float], diverged: bool,
    suggestion: Suggestion, skip_start: int, skip_end: int,
) -> LRFinderResult:  # fmt: skip
    """The curve and both suggestions (the steepest descent, the loss minimum / 10)."""
    lr_arr, sm_arr = np.asarray(lrs), np.asarray(smoothed)
    steep = suggest_lr(lr_arr, sm_arr, "steepest", skip_start, skip_end)
    low = suggest_lr(lr_arr, sm_arr, "min_div10", skip_start, skip_end)
    return LRFinderResult(
        lrs=lr_arr,
        losses=np.asarray(losses),
        smoothed=sm_arr,
        suggested_lr=steep if suggestion == "steepest" else low,
        suggestion=suggestion,
        steepest_lr=steep,
        min_loss_lr=low * 10.0,
        diverged=diverged,
    )


def plot_lr_finder(result: LRFinderResult, path: str | Path) -> Path:
    """Save the loss-vs-lr curve (log x, raw and smoothed loss, suggestion marked) as PNG.

    Uses matplotlib's object API with the Agg canvas, so no global backend is switched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    finite = np.isfinite(result.losses)
    ax.plot(result.lrs[finite], result.losses[finite], color="0.75", lw=1, label="batch loss")
    ax.plot(result.lrs, result.smoothed, color="tab:blue", label="smoothed loss")
    ax.axvline(
        result.suggested_lr,
        color="tab:red",
        ls="--",
        label=f"suggested {result.suggested_lr:.2e} ({result.suggestion})",
    )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    shown = result.smoothed[np.isfinite(result.smoothed)]
    if shown.size and shown.max() > shown.min():
        pad = 0.05 * (shown.max() - shown.min())
        ax.set_ylim(shown.min() - pad, shown.max() + pad)
    ax.set_title("LR range test" + (" (stopped: loss diverged)" if result.diverged else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out
