"""The two-phase fine-tuned members: per-member test accuracy, soft vote, learning curves,
the stored 95 % intervals (member mean, soft vote, vote against the best member by validation
and against the members' mean, both paired) and the soft vote against the number of members
(accuracy, NLL, ECE). With ``ensemble.holdout_repeats`` > 1, the repeats on other grouped test
holdouts (``holdouts.csv``) as a table and a figure: holdout-to-holdout spread beside
member-to-member spread.

A run made before the ensemble stage stored ``intervals`` and ``size_curve.csv`` shows the
rest without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.ticker import MaxNLocator

from fer_ray.layout import SUMMARY, Ensemble, Grid
from fer_ray.report import uncertainty as u
from fer_ray.report.figures import legend_outside, save, subplots
from fer_ray.report.page import Block, h2, img, p, pct, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "ensemble"
MEMBER_ACCURACY = "member_accuracy.png"
LEARNING_CURVES = "learning_curves.png"
SIZE_CURVE = "ensemble_size_curve.png"
HOLDOUTS = "ensemble_holdouts.png"


def load(run: Run) -> Part | None:
    members = run.csv(Ensemble.DIR, Ensemble.MEMBERS)
    if members is None:
        return None
    part = Part(
        tables={"ensemble_members": members},
        facts={
            "summary": run.json(Ensemble.DIR, SUMMARY),
            "epochs": run.config["train"]["epochs"],
            "ensemble": run.config["ensemble"],
            # the learning-curve figure puts the grid's curves beside the members'
            "grid_curves": run.csv(Grid.DIR, Grid.CURVES),
        },
    )
    part.facts["noun"] = u.group_noun(run)
    curves = run.csv(Ensemble.DIR, Ensemble.CURVES)
    if curves is not None:
        part.tables["ensemble_curves"] = curves
    size = run.csv(Ensemble.DIR, Ensemble.SIZE_CURVE)
    if size is not None and len(size):
        part.tables["ensemble_size_curve"] = size
    holdouts = run.csv(Ensemble.DIR, Ensemble.HOLDOUTS)
    if holdouts is not None and len(holdouts):
        part.tables["ensemble_holdouts"] = holdouts
    iv = intervals(part)
    if iv:
        part.tables["ensemble_intervals"] = interval_table(iv, members)
    return part


def intervals(part: Part) -> dict[str, Any] | None:
    """The ensemble summary's stored intervals, or ``None`` for a run made before them."""
    return (part.facts["summary"] or {}).get("intervals") or None


def interval_table(iv: dict[str, Any], members: pd.DataFrame) -> pd.DataFrame:
    """Member mean, soft vote and the paired vote - best member, as stored (fractions)."""
    best = iv["best_member_by_val"]
    rows = [
        ("member mean accuracy", iv["member_mean"]),
        ("soft-vote accuracy", iv["vote"]),
        (f"soft vote - member {best} (best by validation), paired", iv["vote_minus_best_member"]),
    ]
    if "vote_minus_member_mean" in iv:
        rows.append(("soft vote - member mean, paired", iv["vote_minus_member_mean"]))
    return pd.DataFrame(
        [
            {
                "quantity": q,
                "estimate": d["estimate"],
                "low": d["low"],
                "high": d["high"],
                "n_images": int(d.get("n_items", iv["n_images"])),
                "n_groups": int(d.get("n_groups", iv["n_groups"])),
            }
            for q, d in rows
        ]
    )


def member_accuracy(members: pd.DataFrame, ens: dict[str, Any], path: Path) -> None:
    save(member_accuracy_figure(members, ens), path)


def member_accuracy_figure(members: pd.DataFrame, ens: dict[str, Any]) -> Any:
    """Bars per member; mean and vote lines, shaded by their 95 % intervals where stored; the
    legend beside the bars, not over them."""
    fig, ax = subplots(figsize=(8.5, 3.5))
    ax.bar(members["member"].astype(str), members["test_acc"], color="tab:blue", label="member")
    ax.axhline(ens["test_acc_mean"], color="k", ls="--", label="mean")
    ax.axhline(ens["vote_acc"], color="tab:green", label="soft vote")
    iv = ens.get("intervals")
    if iv:
        for key, color in (("member_mean", "k"), ("vote", "tab:green")):
            ax.axhspan(iv[key]["low"], iv[key]["high"], color=color, alpha=0.15, lw=0, zorder=3)
    ax.axhline(ens["chance_uniform"], color="tab:red", ls=":", label="chance")
    ax.set_xlabel("member")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    suffix = " (selected on test)" if ens["selected_on_test"] else ""
    ax.set_title("Ensemble members" + suffix + (" (bands: 95 % intervals)" if iv else ""))
    legend_outside(ax)
    return fig


def size_curve(curve: pd.DataFrame, iv: dict[str, Any] | None, path: Path) -> None:
    save(size_curve_chart(curve, iv), path)


def size_curve_chart(curve: pd.DataFrame, iv: dict[str, Any] | None) -> Any:
    """Accuracy, NLL and ECE of the soft vote against k, ± std across k-member ensembles; on
    the accuracy panel the test-set intervals of k = 1 (member mean) and k = M (the vote).
    One legend, beside the last panel."""
    fig, axes = subplots(1, 3, figsize=(13, 3.4))
    k = curve["k"].to_numpy()
    for ax, col, label in zip(
        axes, ("accuracy", "nll", "ece"), ("accuracy", "NLL (nats)", "ECE (15 bins)")
    ):
        mean, std = curve[col].to_numpy(), curve[f"{col}_std"].to_numpy()
        ax.plot(k, mean, "o-", color="tab:blue", ms=3, label="mean over k-member ensembles")
        ax.fill_between(k, mean - std, mean + std, color="tab:blue", alpha=0.2, label="± std")
        ax.set_xlabel("members in the soft vote (k)")
        ax.set_ylabel(label)
        ax.set_xticks(k if len(k) <= 15 else k[:: max(1, len(k) // 10)])
    if iv:
        for x, key in ((1, "member_mean"), (int(k.max()), "vote")):
            d = iv[key]
            yerr = [[d["estimate"] - d["low"]], [d["high"] - d["estimate"]]]
            axes[0].errorbar([x], [d["estimate"]], yerr=yerr, fmt="none", color="k", capsize=4)
        axes[2].plot([], [], color="k", label="95 % test-set interval\n(accuracy, k = 1 and M)")
    legend_outside(axes[2])
    axes[0].set_title("Soft-vote accuracy")
    axes[1].set_title("Negative log-likelihood")
    axes[2].set_title("Expected calibration error")
    return fig


def holdout_figure(h: pd.DataFrame, path: Path) -> None:
    save(holdout_chart(h), path)


def holdout_chart(h: pd.DataFrame) -> Any:
    """Per holdout repeat: member mean ± member std (member-to-member spread) and the vote;
    dashed lines: their means over repeats (the holdout-to-holdout spread is their scatter).
    The legend beside the points."""
    fig, ax = subplots(figsize=(8.5, 3.4))
    x = h["repeat"].to_numpy()
    ax.errorbar(x - 0.08, h["member_mean"], yerr=h["member_std"], fmt="o", color="k",
                capsize=4, label="member mean ± std over members")  # fmt: skip
    ax.plot(x + 0.08, h["vote_acc"], "s", color="tab:green", label="soft vote")
    ax.axhline(h["member_mean"].mean(), color="k", ls="--", lw=0.8)
    ax.axhline(h["vote_acc"].mean(), color="tab:green", ls="--", lw=0.8)
    ax.set_xticks(x, [str(int(r)) for r in x])
    ax.set_xlabel("holdout repeat (0: the analysed one)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Other grouped test holdouts: spread across holdouts vs across members")
    legend_outside(ax)
    return fig


def span(values: pd.Series) -> str:
    lo, hi = int(values.min()), int(values.max())
    return str(lo) if lo == hi else f"{lo}-{hi}"


def holdout_text(h: pd.DataFrame, noun: str) -> str:
    """The two spreads in points, from the stored per-repeat rows."""
    n = len(h)
    within = 100 * h["member_std"].mean()
    across_mean = 100 * h["member_mean"].std(ddof=1) if n > 1 else 0.0
    across_vote = 100 * h["vote_acc"].std(ddof=1) if n > 1 else 0.0
    size = f"{span(h['n_test'])} images of {span(h['n_groups'])} {noun}"
    return (
        f"The ensemble repeated on {n} grouped test holdouts ({size} each; repeat 0 is the one "
        "analysed everywhere else; the grid's choice saw the other holdouts' subjects): "
        f"member-to-member spread {within:.2f} points (std over members, mean over holdouts) "
        f"against holdout-to-holdout spread {across_mean:.2f} points for the member mean and "
        f"{across_vote:.2f} points for the vote (std over holdouts). The second is the "
        "test-set variance that one holdout hides and that the members' spread does not show."
    )


#: Line styles of the grid's curves, one per hidden size (colours: one per lr).
HIDDEN_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))


def grid_styles(grid: pd.DataFrame) -> dict[tuple[Any, Any], tuple[Any, Any]]:
    """``(lr, hidden) -> (colour, line style)``: a colour per lr, a line style per hidden, so
    each grid cell's curve can be told apart and read back to its cell."""
    lrs = sorted(grid["lr"].unique())
    try:
        hiddens = sorted(grid["hidden"].unique())
    except TypeError:  # mixed kinds (a searched head): by text
        hiddens = sorted(grid["hidden"].unique(), key=str)
    return {
        (lr, h): (f"C{i % 10}", HIDDEN_STYLES[j % len(HIDDEN_STYLES)])
        for i, lr in enumerate(lrs)
        for j, h in enumerate(hiddens)
    }


def learning_curves(grid: pd.DataFrame | None, ens: pd.DataFrame | None, path: Path) -> None:
    save(learning_curves_figure(grid, ens), path)


def learning_curves_figure(grid: pd.DataFrame | None, ens: pd.DataFrame | None) -> Any:
    """Left: grid cells (mean over folds), colour by lr and line style by hidden; right: every
    member, both phases. Each legend beside its panel."""
    fig, axes = subplots(1, 2, figsize=(13, 4))
    if grid is not None:
        styles = grid_styles(grid)
        for (lr, h), d in grid.groupby(["lr", "hidden"]):
            mean = d.groupby("epoch")["val_acc"].mean()
            colour, style = styles[(lr, h)]
            axes[0].plot(mean.index, mean.values, color=colour, ls=style, lw=1.5,
                         label=f"lr {lr:g}, hidden {h}")  # fmt: skip
        axes[0].set_title("Grid: val accuracy (mean over folds)")
        axes[0].set_xlabel("epoch")
        legend_outside(axes[0], title="cell", title_fontsize=8)
    if ens is not None:
        for _, d in ens.groupby("member"):
            axes[1].plot(d["step"], d["val_acc"], color="tab:blue", alpha=0.4)
            axes[1].plot(d["step"], d["train_acc"], color="tab:orange", alpha=0.3)
        p2 = ens.loc[ens["phase"] == 2, "step"]
        if len(p2):
            axes[1].axvline(p2.min() - 0.5, color="k", ls=":", label="phase 2")
        axes[1].plot([], [], color="tab:blue", label="val")
        axes[1].plot([], [], color="tab:orange", label="train")
        axes[1].set_title("Ensemble members")
        axes[1].set_xlabel("epoch (both phases)")
        legend_outside(axes[1])
    for ax in axes:
        ax.set_ylabel("accuracy")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def plots(part: Part, out: Path) -> None:
    if part.facts["summary"]:
        member_accuracy(
            part.tables["ensemble_members"], part.facts["summary"], out / MEMBER_ACCURACY
        )
    learning_curves(
        part.facts["grid_curves"], part.tables.get("ensemble_curves"), out / LEARNING_CURVES
    )
    if "ensemble_size_curve" in part.tables:
        size_curve(part.tables["ensemble_size_curve"], intervals(part), out / SIZE_CURVE)
    if "ensemble_holdouts" in part.tables:
        holdout_figure(part.tables["ensemble_holdouts"], out / HOLDOUTS)


def interval_text(iv: dict[str, Any], members: pd.DataFrame, noun: str) -> str:
    """Member mean and vote with their intervals, the paired vote - best member, McNemar."""
    best = iv["best_member_by_val"]
    row = members[members["member"] == best]
    accs = ""
    if len(row) and "val_acc" in row:
        r = row.iloc[0]
        accs = f" (validation {pct(r['val_acc'])}, test {pct(r['test_acc'])})"
    diff = iv["vote_minus_best_member"]
    text = (
        f"On the shared test set, {u.sample(iv['n_images'], iv['n_groups'], noun)}: member "
        f"mean {u.accuracy_of(iv['member_mean'])} (resampling each image's share of members "
        f"that got it right), soft vote {u.accuracy_of(iv['vote'])}. The vote against member "
        f"{best}{accs}, the best member by validation accuracy (picking it on test would "
        f"flatter it), paired on the same images: {u.difference_of(diff)}, "
        f"{u.verdict(diff['low'], diff['high'])}."
    )
    over_mean = iv.get("vote_minus_member_mean")
    if over_mean:
        text += (
            f" The best member by validation is close to a member drawn at random, so the vote "
            f"is also paired against the members' mean (per image: the vote right or not, minus "
            f"the share of members right): {u.difference_of(over_mean)}, "
            f"{u.verdict(over_mean['low'], over_mean['high'])}."
        )
    mc = iv.get("mcnemar_vote_vs_best_member")
    if mc:
        text += (
            f" McNemar: only the vote right on b = {mc['b']} images, only member {best} "
            f"right on c = {mc['c']}, exact p = {mc['p_value']:.3g} (it treats images as "
            "independent, so it is optimistic too)."
        )
    unit = iv["vote"].get("unit", "group")
    return (
        text
        + " "
        + u.caveat(iv["n_groups"], noun, iv["vote"].get("n_boot"), unit, u.method_of(iv["vote"]))
    )


def size_text(curve: pd.DataFrame) -> str:
    m = int(curve["k"].max())
    exact = bool(curve["exhaustive"].all()) if "exhaustive" in curve else False
    how = (
        "every k-member subset scored"
        if exact
        else "every k-member subset where there are few, else random k-member subsets"
    )
    first, last = curve.iloc[0], curve.iloc[-1]
    return (
        f"The soft vote against its number of members, k = 1 to {m} ({how}): mean over "
        "k-member ensembles, ± std across them. That spread is over the choice of members on "
        "this one test set, not a test-set interval; the test-set intervals of k = 1 (member "
        f"mean) and k = {m} (the vote) are above. From k = 1 to {m}: accuracy "
        f"{pct(first['accuracy'])} → {pct(last['accuracy'])}, NLL {first['nll']:.3f} → "
        f"{last['nll']:.3f}, ECE {first['ece']:.3f} → {last['ece']:.3f}."
    )


def blocks(part: Part) -> list[Block]:
    e = part.facts["ensemble"]
    sel = "test set (labelled: selected on test)" if e["selection"] == "test" else "validation"
    used = (part.facts["summary"] or {}).get("phase2_lr")  # the rate phase 2 actually used
    rate = e["phase2_lr"] if isinstance(e["phase2_lr"], str) else f"{e['phase2_lr']:g}"
    lr2 = f"{used:g} ({rate})" if used is not None and isinstance(e["phase2_lr"], str) else rate
    b = [
        h2("Ensemble (two-phase fine-tunes)"),
        p(
            (
                "Each member: the phases under Training choices"
                if ((part.facts["summary"] or {}).get("training") or {}).get("custom_phases")
                else f"Each member: {part.facts['epochs']} epochs at the chosen lr, then "
                f"{e['phase2_epochs']} epochs at lr {lr2}"
            )
            + f"; epoch and phase selected on {sel}. Train/val split"
            f" ({1 - e['val_fraction']:.0%}:{e['val_fraction']:.0%}) drawn per member seed,"
            " grouped."
        ),
        table(part.tables["ensemble_members"]),
    ]
    members = part.tables["ensemble_members"]
    iv = intervals(part)
    if iv:
        b.append(p(interval_text(iv, members, part.facts["noun"])))
        b.append(table(part.tables["ensemble_intervals"]))
        if "test_acc_low" not in members:
            b.append(
                p(
                    "Each member's own test accuracy (table above) is on the same images; the "
                    "ensemble stage stores no interval for it."
                )
            )
    if part.facts["summary"]:  # the figure draws the summary's mean and vote lines
        caption = "Test accuracy per member, mean and soft vote"
        b.append(img(MEMBER_ACCURACY, caption + (" (bands: 95 % intervals)" if iv else "")))
    if "ensemble_size_curve" in part.tables:
        curve = part.tables["ensemble_size_curve"]
        b += [
            p(size_text(curve)),
            table(curve),
            img(SIZE_CURVE, "Soft vote against the number of members: accuracy, NLL, ECE"),
        ]
    if "ensemble_holdouts" in part.tables:
        h = part.tables["ensemble_holdouts"]
        b += [
            p(holdout_text(h, part.facts["noun"])),
            table(h),
            img(HOLDOUTS, "Per holdout repeat: member mean ± std over members, and the vote"),
        ]
    b.append(img(LEARNING_CURVES, "Learning curves (validation accuracy per epoch)"))
    return b
