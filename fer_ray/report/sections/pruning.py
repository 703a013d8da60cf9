"""Seed 000's pruning (sections 2.5 and 3.5, Figs. 4-5): how many features each rule prunes,
what pruning costs on the test set, and where the pruning sweep falls off.

A count is put next to the paper's only where both mean the same thing: the paper's 87
(magnitude) and 81 (angle) threshold the 15-model AVERAGE of the scores at mean - std, which the
analyse stage stores as ``pruned_on_average``; each member's own count (``pruned_by_rule``) is
another measure and is shown without a paper value. Accuracies carry the stored 95 % intervals
(``pruning_intervals.csv``) and each rule is compared with no pruning as a paired difference on
the same images; the sweep reports where accuracy falls off as a paired-interval test
(``sweep_falloff.csv``) rather than a fixed "within 1 point". Where it falls off is read from
the stored table by a rule that survives testing every count
(``fer_ray.analysis.pruning.falloff_fixed_sequence``), not taken as the largest count that is
significant on its own. A run made before those files shows the per-member counts and mean ±
std over models only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from fer_ray.analysis.pruning import falloff_fixed_sequence
from fer_ray.layout import SUMMARY, Analyse
from fer_ray.report import uncertainty as u
from fer_ray.report.figures import legend_below, save, subplots
from fer_ray.report.page import Block, h2, img, p, table, ul
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "pruning"
FIG4 = "fig4_pruning_baselines.png"
FIG5 = "fig5_pruning_sweep.png"
#: The paper's counts on its 15-model average of 512 features, as it prints them (section 3.5).
PAPER_PRUNED = {"magnitude": "87 of 512 (≈16.9 %)", "angle": "81 of 512 (≈15.8 %)"}


def baselines(b: pd.DataFrame, iv: pd.DataFrame | None) -> pd.DataFrame:
    """Per rule: features pruned (mean over members), accuracy (member mean) with its interval
    and the paired difference to no pruning where stored, and the spread over members."""
    bt = b.groupby("rule", sort=False).agg(
        n_pruned_mean=("n_pruned", "mean"),
        accuracy_mean=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
    )
    bt = bt.fillna(0.0).reset_index()
    if iv is None:
        return bt
    bt = bt.rename(columns={"accuracy_std": "accuracy_std_over_members"})
    cols = ["rule", "accuracy", "low", "high", "diff_vs_none", "diff_low", "diff_high"]
    both = iv[cols].merge(bt.drop(columns="accuracy_mean"), on="rule", how="left")
    return both[["rule", "n_pruned_mean", *cols[1:], "accuracy_std_over_members"]]


def paper_counts(s: dict[str, Any]) -> pd.DataFrame:
    """Counts on the model-averaged scores beside the paper's, which are counted the same way."""
    n, models = s["n_features"], s["n_members"]
    rows = [
        {
            "pruned at mean - std of the model-averaged score": rule,
            f"ours ({models}-model average)": f"{s['pruned_on_average'][rule]} of {n}",
            "paper (15-model average)": paper,
        }
        for rule, paper in PAPER_PRUNED.items()
    ]
    return pd.DataFrame(rows)


def load(run: Run) -> Part | None:
    s = run.json(Analyse.DIR, SUMMARY)
    if s is None:
        return None
    iv = run.csv(Analyse.DIR, Analyse.PRUNING_INTERVALS)
    tables = {
        "pruning_baselines": baselines(run.need_csv(Analyse.DIR, Analyse.BASELINES), iv),
        "sweep": run.need_csv(Analyse.DIR, Analyse.SWEEP),
    }
    if s.get("pruned_on_average"):
        tables["pruning_counts"] = paper_counts(s)
    falloff = run.csv(Analyse.DIR, Analyse.SWEEP_FALLOFF)
    facts = {"summary": s, "intervals": iv is not None, "noun": u.group_noun(run),
             "method": u.run_method(run)}  # fmt: skip
    if falloff is not None and len(falloff):
        tables["sweep_falloff"] = falloff
        facts["falls_off_at"] = falloff_fixed_sequence(falloff)
    return Part(tables=tables, facts=facts)


def fig4_baselines(t: pd.DataFrame, intervals: bool, path: Path) -> None:
    """Bars per rule; error bars: the 95 % test-set interval, or the spread over models."""
    fig, ax = subplots(figsize=(5.5, 3.5))
    if intervals:
        acc = t["accuracy"]
        yerr = [acc - t["low"], t["high"] - acc]
        label = "test accuracy, member mean (95 % interval)"
    else:
        acc, yerr, label = t["accuracy_mean"], t["accuracy_std"], "test accuracy (mean ± std)"
    ax.bar(t["rule"], acc, yerr=yerr, capsize=4, color="tab:blue")
    ax.set_ylabel(label, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title("Fig. 4: accuracy per pruning baseline")
    save(fig, path)


def fig5_sweep(sw: pd.DataFrame, falloff: pd.DataFrame | None, at: Any, path: Path) -> None:
    """Full range and the paper's 85-99 % zoom (band = min-max over models); with the stored
    fall-off test, a third panel: the paired difference to unpruned with its interval."""
    panels = 3 if falloff is not None else 2
    fig, axes = subplots(1, panels, figsize=(5 * panels, 4.2))
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
    legend_below(axes[0])  # the same two orders in both panels: one legend
    axes[0].set_title("Fig. 5: accuracy vs pruning ratio\n(band: min-max over models)")
    axes[1].set_title("zoom 85-99 % (the paper's range)")
    if falloff is not None:
        f = falloff.sort_values("ratio")
        ax = axes[2]
        ax.plot(f["ratio"], 100 * f["diff_vs_none"], color="tab:blue", label="random order")
        ax.fill_between(
            f["ratio"], 100 * f["diff_low"], 100 * f["diff_high"], color="tab:blue", alpha=0.2
        )
        sig = f[f["significant"].astype(bool)]
        ax.plot(sig["ratio"], 100 * sig["diff_vs_none"], "o", color="tab:red", ms=4,
                label="interval below 0 (uncorrected)")  # fmt: skip
        ax.axhline(0, color="k", lw=0.8)
        if at is not None:
            ratio = f.loc[f["n_kept"] == at, "ratio"]
            if len(ratio):
                label = f"falls off: {at} kept (fixed-sequence rule)"
                ax.axvline(float(ratio.iloc[0]), color="tab:red", ls=":", label=label)
        ax.set_xlabel("pruning ratio")
        ax.set_ylabel("accuracy - unpruned (points)")
        ax.set_title("paired difference to unpruned, 95 % interval")
        legend_below(ax, ncol=1)
    save(fig, path)


def plots(part: Part, out: Path) -> None:
    t = part.tables
    fig4_baselines(t["pruning_baselines"], part.facts["intervals"], out / FIG4)
    at = part.facts.get("falls_off_at")
    fig5_sweep(t["sweep"], t.get("sweep_falloff"), at, out / FIG5)


def count_text(s: dict[str, Any]) -> str:
    """Each member thresholded on its own scores: not the paper's measure, so no paper value."""
    per = s.get("pruned_by_rule", {})
    shown = ", ".join(
        f"{rule} {per[rule]:.1f}" for rule in ("magnitude", "angle", "random") if rule in per
    )
    text = (
        f"Each member thresholded at mean - std of its own scores prunes, on average over the "
        f"{s['n_members']} members: {shown} features (random pruning takes each member's "
        "magnitude count). That is another measure than the paper's, so it is not compared "
        "with it."
    )
    if not s.get("pruned_on_average"):
        text += (
            " This run predates the count on the model-averaged scores, the one that means "
            "what the paper's 87 (magnitude) and 81 (angle) mean, so no count here is compared "
            "with the paper's."
        )
    return text


def baseline_text(
    t: pd.DataFrame, s: dict[str, Any], noun: str, method: str | None = None
) -> list[Block]:
    """The test set, and each rule against no pruning as a paired difference."""
    n, groups = s.get("n_test"), s.get("n_test_groups")
    on = f": {u.sample(n, groups, noun)}" if n and groups else ""
    head = (
        f"Pruning zeroes features on the shared test set{on}. Random pruning draws several "
        "subsets. Accuracy: the member mean (each image's share of members, and of random "
        "draws, that got it right) with its interval; each rule against no pruning: the paired "
        "difference on the same images, with its interval."
    )
    if n:
        head += f" A difference under {100 / n:.2f} points is less than one image."
    if groups:
        head += f" {u.brief_caveat(int(groups), noun, method=method).capitalize()}."
        head += f" {u.zero_width(method)}"
    items = [
        f"{r['rule']}: {u.accuracy(r['accuracy'], r['low'], r['high'])}; against none "
        f"{u.difference(r['diff_vs_none'], r['diff_low'], r['diff_high'])}, "
        f"{u.verdict(r['diff_low'], r['diff_high'])}"
        for r in t.to_dict("records")
        if r["rule"] != "none"
    ]
    none = t[t["rule"] == "none"]
    if len(none):
        r = none.iloc[0]
        items.insert(0, f"none (unpruned): {u.accuracy(r['accuracy'], r['low'], r['high'])}")
    return [p(head), ul(items)]


def percent(ratio: float) -> str:
    return f"{100 * ratio:.0f} %"


def listed(counts: pd.Series, most: int = 8) -> str:
    shown = [str(int(k)) for k in counts]
    return ", ".join(shown[:most]) + (f" and {len(shown) - most} more" if len(shown) > most else "")


#: One-sided level of each count's test: the top of its 95 % interval below 0.
ONE_SIDED = 0.025


def falloff_text(
    f: pd.DataFrame, s: dict[str, Any], at: int | None, method: str | None = None
) -> str:
    """Where accuracy falls off by the fixed-sequence rule (``at``), what the uncorrected
    per-count intervals say beside it, and how many of those would pass by chance."""
    pruned = f[f["ratio"] > 0]
    sig = pruned[pruned["significant"].astype(bool)].sort_values("n_kept", ascending=False)
    most = pruned.loc[pruned["n_kept"].idxmin()]
    rule = (
        "Rule: walking from the most pruned count towards unpruned, stop at the first count "
        "whose paired interval against unpruned does not lie entirely below 0; the fall-off is "
        "the largest kept count reached, so it and every smaller count are significantly "
        "below unpruned. Tested in that fixed order, each count one-sided at "
        f"{100 * ONE_SIDED:.1f} %, the chance of any false call is at most "
        f"{100 * ONE_SIDED:.1f} %, however many counts the sweep has."
    )
    if at is None:
        text = (
            "Where accuracy falls off: at no kept count by the rule below: the most pruned "
            f"count ({int(most['n_kept'])} kept, {percent(most['ratio'])} pruned) is already "
            "not significantly below unpruned "
            f"({u.difference(most['diff_vs_none'], most['diff_low'], most['diff_high'])})."
        )
    else:
        r = f[f["n_kept"] == at].iloc[0]
        text = (
            f"Where accuracy falls off: at **{at} kept features** ({percent(r['ratio'])} "
            "pruned), the largest kept count at and below which every count of the "
            "random-order sweep is significantly below unpruned: "
            f"{u.difference(r['diff_vs_none'], r['diff_low'], r['diff_high'])}."
        )
    n = len(pruned)
    text += (
        f" {rule} Uncorrected, {len(sig)} of the {n} pruned counts "
        f"{'has its interval' if len(sig) == 1 else 'have their intervals'} below 0"
        + (f" ({listed(sig['n_kept'])} kept)" if len(sig) else "")
        + f"; with {n} counts each tested one-sided at {100 * ONE_SIDED:.1f} %, about "
        f"{n * ONE_SIDED:.1f} would pass by chance alone if pruning cost nothing, so a count "
        "significant on its own among non-significant ones is weak evidence."
    )
    if "p_holm" in pruned:
        holm = pruned[pruned["p_holm"] < ONE_SIDED]
        text += (
            f" After Holm's correction over the {n} counts (p-values of the "
            f"{u.method_short(method, 'groups')}, column `p_holm`), {len(holm)} {'is' if len(holm) == 1 else 'are'} significant."
        )
    return text + (
        ' The paper\'s "25 (5 %) features" is not the same measurement, so it is not put '
        "beside ours: the paper read it by eye off its Fig. 5, the average test accuracy of its "
        '15 models at 85-99 % pruning, as the point past which accuracy "drops greatly" (more '
        "than 96 % pruned), with no interval and no test. Ours is the first loss measurable on "
        f"our test set, averaged over our {s['n_members']} members and the random draws, over "
        "0-99 % pruning, so it marks where a loss becomes detectable, not where it becomes "
        "large, and it moves with the size of the test set."
    )


def blocks(part: Part) -> list[Block]:
    s, t = part.facts["summary"], part.tables
    b = [h2("Feature pruning (seed 000, sections 2.5 and 3.5, Figs. 4-5)")]
    if "pruning_counts" in t:
        b += [
            p(
                "Features pruned by thresholding the model-averaged magnitude and angle at "
                "mean - std, the way the paper counts its 87 and 81:"
            ),
            table(t["pruning_counts"]),
        ]
    b.append(p(count_text(s)))
    if part.facts["intervals"]:
        b += baseline_text(t["pruning_baselines"], s, part.facts["noun"], part.facts.get("method"))
    else:
        b.append(p("Accuracy per rule: mean ± std over models, on each model's test split."))
    b += [
        table(t["pruning_baselines"]),
        img(FIG4, "Fig. 4: test accuracy per pruning baseline"),
    ]
    if "sweep_falloff" in t:
        at = part.facts.get("falls_off_at")
        b += [
            p(falloff_text(t["sweep_falloff"], s, at, part.facts.get("method"))),
            table(t["sweep_falloff"]),
        ]
    b.append(
        img(FIG5, "Fig. 5: test accuracy against pruning ratio (random and least-magnitude-first)")
    )
    return b
