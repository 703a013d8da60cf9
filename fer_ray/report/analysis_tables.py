"""The analyse stage's part of the report: seed 000's Figs. 2-5, counts, confusion."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fer_ray.report.aggregate import Report  # noqa: E402


def _per_feature_plot(values: np.ndarray, ylabel: str, title: str, path: Path) -> None:
    m, s = values.mean(), values.std()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(np.arange(len(values)), values, ".", ms=3)
    for y, ls in ((m + s, "--"), (m, "-"), (m - s, "--")):
        ax.axhline(y, color="k", ls=ls, lw=0.8)
    ax.set_xlabel("feature")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (mean = {m:.4g}, std = {s:.2g})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig2_magnitude(rep: Report, out: Path) -> None:
    mag = rep.tables["magnitude"].drop(columns="feature").to_numpy().mean(1)
    _per_feature_plot(
        mag, "avg magnitude", "Fig. 2: Gedeon contribution per feature", out / "fig2_magnitude.png"
    )


def fig3_angles(rep: Report, out: Path) -> None:
    ang = rep.tables["angles"].drop(columns="feature").to_numpy().mean(1)
    _per_feature_plot(
        ang, "avg angle (deg)", "Fig. 3: mean angle to other features", out / "fig3_angles.png"
    )


def fig4_baselines(rep: Report, out: Path) -> None:
    t = rep.tables["pruning_baselines"]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.bar(t["rule"], t["accuracy_mean"], yerr=t["accuracy_std"], capsize=4, color="tab:blue")
    ax.set_ylabel("test accuracy (mean ± std over models)")
    ax.set_ylim(0, 1)
    ax.set_title("Fig. 4: accuracy per pruning baseline")
    fig.tight_layout()
    fig.savefig(out / "fig4_pruning_baselines.png", dpi=110)
    plt.close(fig)


def fig5_sweep(rep: Report, out: Path) -> None:
    sw = rep.tables["sweep"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, lo in zip(axes, (0.0, 0.85)):
        for order, color in (("random", "tab:blue"), ("magnitude", "tab:red")):
            d = sw[(sw["order"] == order) & (sw["ratio"] >= lo - 1e-9)]
            per_model = d.groupby(["ratio", "member"])["accuracy"].mean().unstack()
            mean = per_model.mean(axis=1)
            ax.plot(mean.index, mean.values, color=color, label=f"{order} order (mean)")
            ax.fill_between(
                mean.index, per_model.min(axis=1), per_model.max(axis=1), color=color, alpha=0.2
            )
        ax.set_xlabel("pruning ratio")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    axes[0].set_title("Fig. 5: accuracy vs pruning ratio (band: min-max over models)")
    axes[1].set_title("zoom 85-99 % (the paper's range)")
    fig.tight_layout()
    fig.savefig(out / "fig5_pruning_sweep.png", dpi=110)
    plt.close(fig)


def confusion_plot(rep: Report, out: Path) -> None:
    c = rep.tables["confusion_vote"].set_index("true")
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.imshow(c.to_numpy(), cmap="Blues")
    ax.set_xticks(range(len(c.columns)), c.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(c.index)), c.index)
    for (i, j), v in np.ndenumerate(c.to_numpy()):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (soft vote, test set)")
    fig.tight_layout()
    fig.savefig(out / "confusion_vote.png", dpi=110)
    plt.close(fig)


def analysis_tables(rep: Report) -> None:
    d = rep.run_dir / "analyse"
    if not (d / "summary.json").is_file():
        return
    s = json.loads((d / "summary.json").read_text())
    for name in ("magnitude", "angles", "sweep", "per_class", "confusion_vote"):
        rep.tables[name] = pd.read_csv(d / f"{name}.csv")
    b = pd.read_csv(d / "baselines.csv")
    bt = b.groupby("rule", sort=False).agg(
        n_pruned_mean=("n_pruned", "mean"),
        accuracy_mean=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
    )
    rep.tables["pruning_baselines"] = bt.fillna(0.0).reset_index()
    pc = rep.tables["per_class"]
    members = pc[pc["member"].astype(str) != "vote"]
    avg = members.groupby("class", sort=False)[["precision", "recall", "f1", "support"]].mean()
    vote = pc[pc["member"].astype(str) == "vote"].set_index("class")
    rep.tables["per_class_summary"] = pd.concat(
        [avg.add_prefix("members_"), vote[["precision", "recall", "f1"]].add_prefix("vote_")],
        axis=1,
    ).reset_index()
    n = s["n_features"]
    counts = pd.DataFrame(
        [
            (
                "features within mean ± std, magnitude (paper: 348 of 512)",
                f"{s['features_within_magnitude']} of {n}",
            ),
            (
                "features within mean ± std, angle (paper: 352 of 512)",
                f"{s['features_within_angle']} of {n}",
            ),
            (
                "avg magnitude mean / std (paper: 0.0137 / 0.0003)",
                f"{s['magnitude_mean']:.4f} / {s['magnitude_std']:.4f}",
            ),
            (
                "avg angle mean / std, deg (paper: 46.27 / 0.41)",
                f"{s['angle_mean']:.2f} / {s['angle_std']:.2f}",
            ),
            (
                "min / max pairwise angle, deg (paper: 40.80 / 51.14)",
                f"{s['angle_min_pair']:.2f} / {s['angle_max_pair']:.2f}",
            ),
            (
                "pruned by magnitude < mean - std (paper: 87)",
                f"{s['pruned_by_rule']['magnitude']:.1f}",
            ),
            ("pruned by angle < mean - std (paper: 81)", f"{s['pruned_by_rule']['angle']:.1f}"),
            ("pruned at random (same count as magnitude)", f"{s['pruned_by_rule']['random']:.1f}"),
            (
                "smallest kept-feature count within 1 point of unpruned (median over models; paper: ~25)",
                str(s["smallest_kept_within_1pt"]),
            ),
        ],
        columns=["quantity", "value"],
    )
    rep.tables["analysis_counts"] = counts
    angles_kind = "absolute weights" if s["absolute_angles"] else "signed weights"
    rep.facts["analysis_blocks"] = [
        ("h2", "Feature analysis (seed 000, sections 2.3-2.5 and 3.3-3.5)"),
        (
            "p",
            f"Per member, on the {n} pooled features entering the head; values averaged over "
            f"{s['n_members']} models. Distinctiveness angles use {angles_kind}. Pruning zeroes "
            "features on each model's test split; random pruning draws several subsets per ratio.",
        ),
        ("table", counts),
        (
            "img",
            "fig2_magnitude.png",
            "Fig. 2: average Gedeon magnitude per feature, mean ± std lines",
        ),
        ("img", "fig3_angles.png", "Fig. 3: average mean angle per feature"),
        ("table", rep.tables["pruning_baselines"]),
        ("img", "fig4_pruning_baselines.png", "Fig. 4: test accuracy per pruning baseline"),
        (
            "img",
            "fig5_pruning_sweep.png",
            "Fig. 5: test accuracy against pruning ratio (random and least-magnitude-first)",
        ),
        ("h2", "Per-class results"),
        ("table", rep.tables["per_class_summary"]),
        ("img", "confusion_vote.png", "Confusion matrix of the soft vote"),
    ]
    rep.facts["analysis_plots"] = [
        fig2_magnitude,
        fig3_angles,
        fig4_baselines,
        fig5_sweep,
        confusion_plot,
    ]
