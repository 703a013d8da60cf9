"""Every seed of a run derives from ``cfg.seed`` here, so a trial, a member or an analysis task
gets the same seed wherever it runs (any node, any retry, any resume)."""

from __future__ import annotations

import zlib

import numpy as np


def trial_seed(seed: int, lr: float, hidden: int, fold: int) -> int:
    """One grid cell's seed: head init and batch order of (lr, hidden, fold)."""
    return zlib.crc32(f"{seed}|{lr!r}|{hidden}|{fold}".encode()) & 0x7FFFFFFF


def member_seed(seed: int, member: int, repeat: int = 0) -> int:
    """An ensemble member's seed: head init, batch order, its train/val split, its analyses;
    ``repeat`` > 0 for the members of another test holdout (ensemble.holdout_repeats)."""
    return seed * 1000 + member + 1_000_000 * repeat


def holdout_seed(seed: int, repeat: int) -> int:
    """The test holdout of repeat ``repeat``; repeat 0 is the grid's (the run seed)."""
    return seed + repeat


def fold_model_seed(seed: int, repeat: int, fold: int) -> int:
    """One independent seed per (seed, repeat, fold) of a cross-validated model."""
    return int(np.random.SeedSequence([seed % 2**32, repeat, fold]).generate_state(1)[0])
