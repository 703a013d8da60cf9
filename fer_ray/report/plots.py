"""PNG plots of the report, each from stored tables only."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fer_ray.report.aggregate import Report  # noqa: E402


def grid_heatmap(rep: Report, path: Path) -> None:
    t2 = rep.tables["table2"]
    piv = t2.pivot(index="lr", columns="hidden", values="mean").sort_index(ascending=False)
    fig, ax = plt.subplots(figsize=(5, 4))
    im = ax.imshow(piv.to_numpy(), cmap="viridis")
    ax.set_xticks(range(piv.shape[1]), [str(c) for c in piv.columns])
    ax.set_yticks(range(piv.shape[0]), [f"{i:g}" for i in piv.index])
    ax.set_xlabel("hidden units")
    ax.set_ylabel("learning rate")
    for (i, j), v in np.ndenumerate(piv.to_numpy()):
        ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="w")
    fig.colorbar(im, ax=ax, label="mean val accuracy")
    ax.set_title("Grid search (mean over folds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def member_accuracy(rep: Report, path: Path) -> None:
    m = rep.tables["ensemble_members"]
    ens = rep.facts["ensemble"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(m["member"].astype(str), m["test_acc"], color="tab:blue", label="member")
    ax.axhline(ens["test_acc_mean"], color="k", ls="--", label="mean")
    ax.axhline(ens["vote_acc"], color="tab:green", label="soft vote")
    ax.axhline(ens["chance_uniform"], color="tab:red", ls=":", label="chance")
    ax.set_xlabel("member")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    suffix = " (selected on test)" if ens["selected_on_test"] else ""
    ax.set_title("Ensemble members" + suffix)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def learning_curves(rep: Report, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    g = rep.tables.get("grid_curves")
    if g is not None:
        for (lr, h), d in g.groupby(["lr", "hidden"]):
            mean = d.groupby("epoch")["val_acc"].mean()
            axes[0].plot(mean.index, mean.values, label=f"lr {lr:g} h {h}")
        axes[0].set_title("Grid: val accuracy (mean over folds)")
        axes[0].set_xlabel("epoch")
        axes[0].legend(fontsize=6)
    e = rep.tables.get("ensemble_curves")
    if e is not None:
        for _, d in e.groupby("member"):
            axes[1].plot(d["step"], d["val_acc"], color="tab:blue", alpha=0.4)
            axes[1].plot(d["step"], d["train_acc"], color="tab:orange", alpha=0.3)
        p2 = e.loc[e["phase"] == 2, "step"]
        if len(p2):
            axes[1].axvline(p2.min() - 0.5, color="k", ls=":", label="phase 2")
        axes[1].plot([], [], color="tab:blue", label="val")
        axes[1].plot([], [], color="tab:orange", label="train")
        axes[1].set_title("Ensemble members")
        axes[1].set_xlabel("epoch (both phases)")
        axes[1].legend(fontsize=7)
    for ax in axes:
        ax.set_ylabel("accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def make_all(rep: Report, out: Path) -> None:
    if "table2" in rep.tables:
        grid_heatmap(rep, out / "grid_heatmap.png")
    if "ensemble_members" in rep.tables and rep.facts.get("ensemble"):
        member_accuracy(rep, out / "member_accuracy.png")
    if "grid_curves" in rep.tables or "ensemble_curves" in rep.tables:
        learning_curves(rep, out / "learning_curves.png")
    for fn in rep.facts.get("analysis_plots", []):
        fn(rep, out)
