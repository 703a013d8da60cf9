"""The toy stage: orchestration only (it needs no Ray task), from the ensemble's stored table."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fer_ray.layout import Ensemble
from tests.toy_recipe import DIR, SCORES


def run(ctx: Any) -> None:
    members = pd.read_csv(ctx.paths.stage(Ensemble.DIR) / Ensemble.MEMBERS)
    out = members[["member", "test_acc"]].copy()
    out["powered"] = out["test_acc"] ** ctx.cfg.toy.power
    if ctx.cfg.toy.order == "accuracy":
        out = out.sort_values("test_acc", ascending=False)
    (ctx.paths.stage(DIR)).mkdir(parents=True, exist_ok=True)
    out.to_csv(ctx.paths.stage(DIR) / SCORES, index=False)
