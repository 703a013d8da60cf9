"""Seed 000's Table 2: validation accuracy per lr × hidden over grouped folds, and the choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer_ray.layout import Grid
from fer_ray.report.figures import save, subplots
from fer_ray.report.page import Block, h2, img, p, pct, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "grid"
HEATMAP = "grid_heatmap.png"


def pivot(t2: pd.DataFrame) -> pd.DataFrame:
    """Table 2 as the paper prints it: lr rows (largest first), hidden columns, mean ± std."""
    cells = t2.assign(cell=[f"{m:.4f} ± {s:.4f}" for m, s in zip(t2["mean"], t2["std"])])
    piv = cells.pivot(index="lr", columns="hidden", values="cell").sort_index(ascending=False)
    piv.columns = [f"hidden {c}" for c in piv.columns]
    return piv.reset_index()


def load(run: Run) -> Part | None:
    t2 = run.csv(Grid.DIR, Grid.TABLE2)
    if t2 is None:
        return None
    part = Part(
        tables={"table2": t2, "table2_pivot": pivot(t2)},
        facts={"chosen": run.json(Grid.DIR, Grid.CHOSEN), "folds": run.config["grid"]["folds"]},
    )
    for key, file in (("grid_trials", Grid.TRIALS), ("grid_curves", Grid.CURVES)):
        df = run.csv(Grid.DIR, file)
        if df is not None:
            part.tables[key] = df
    return part


def plots(part: Part, out: Path) -> None:
    t2 = part.tables["table2"]
    piv = t2.pivot(index="lr", columns="hidden", values="mean").sort_index(ascending=False)
    fig, ax = subplots(figsize=(5, 4))
    im = ax.imshow(piv.to_numpy(), cmap="viridis")
    ax.set_xticks(range(piv.shape[1]), [str(c) for c in piv.columns])
    ax.set_yticks(range(piv.shape[0]), [f"{i:g}" for i in piv.index])
    ax.set_xlabel("hidden units")
    ax.set_ylabel("learning rate")
    for (i, j), v in np.ndenumerate(piv.to_numpy()):
        ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="w")
    fig.colorbar(im, ax=ax, label="mean val accuracy")
    ax.set_title("Grid search (mean over folds)")
    save(fig, out / HEATMAP)


def blocks(part: Part) -> list[Block]:
    chosen = part.facts["chosen"]
    b = [
        h2("Grid search (seed 000, Table 2)"),
        p(
            "Validation accuracy (fraction) at the last epoch, mean ± std over "
            f"{part.facts['folds']} grouped folds, per learning rate × hidden units."
        ),
        table(part.tables["table2_pivot"]),
    ]
    if chosen:
        b.append(
            p(
                f"Chosen config: lr {chosen['lr']:g}, hidden {chosen['hidden']} "
                f"(best mean {pct(chosen['mean_val_acc'])} ± {pct(chosen['std_val_acc'])};"
                " ties go to the simpler model)."
            )
        )
    b.append(img(HEATMAP, "Grid: mean validation accuracy per cell"))
    return b
