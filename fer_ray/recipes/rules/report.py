"""Seed 001's explanation mechanism: rules read off per-class trees, their fidelity to the
network beside the paper's 96.64 %, and the depth sweep (fidelity against rule length).

Everything comes from the rules stage's stored files; the paper's numbers are in its
``summary.json`` (``paper``), so the report needs nothing else. The network under explanation
(its accuracy beside seed 001's 54.90 %) comes from the ensemble stage's summary.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fer_ray import files
from fer_ray.layout import SUMMARY, Analyse, Ensemble, Rules
from fer_ray.report.figures import legend_outside, save, subplots
from fer_ray.report.page import Block, code, h2, img, p, pct, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "rules"
SWEEP_PNG = "rules_depth_sweep.png"


def per_class_table(fidelity: pd.DataFrame, summary: dict) -> pd.DataFrame:
    """One row per class at the chosen depth (mean ± std over members) beside the paper's,
    then the mean over classes (seed 001's measure) and the combined multi-class agreement."""
    at = fidelity[fidelity["depth"] == summary["depth"]]
    paper = summary["paper"]

    def row(what: str, col: str, ref: float | None) -> dict:
        v = at[col]
        return {
            "class": what,
            "fidelity_mean": float(v.mean()),
            "fidelity_std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "seed001": ref,
        }

    rows = [row(c, f"fidelity_{c}", paper["per_class"].get(c)) for c in summary["class_names"]]
    rows.append(row("mean per class", "mean_per_class", paper["mean_per_class"]))
    rows.append(row("combined (one class per image)", "overall", None))
    return pd.DataFrame(rows)


def first_member_text(text: str) -> str:
    """The chosen depth's rules of the first explained member (rules.txt lists them all)."""
    keep, first, on = [], None, False
    for line in text.strip().splitlines():
        if line.startswith("member "):
            first = first or line.split(" · ")[0]
            on = line.split(" · ")[0] == first
        if on:
            keep.append(line)
    return "\n".join(keep)


def load(run: Run) -> Part | None:
    s = run.json(Rules.DIR, SUMMARY)
    if s is None:
        return None
    fidelity = run.need_csv(Rules.DIR, Rules.FIDELITY)
    rules_txt = run.path(Rules.DIR, Rules.RULES_TEXT)
    return Part(
        tables={
            "rules_fidelity": per_class_table(fidelity, s),
            "rules_sweep": run.need_csv(Rules.DIR, Rules.SWEEP),
            "rules_all": run.need_csv(Rules.DIR, Rules.RULES),
        },
        facts={
            "summary": s,
            "text": files.read_text(rules_txt) if rules_txt.is_file() else "",
            "ensemble": run.json(Ensemble.DIR, SUMMARY),
            "recall": run.csv(Analyse.DIR, Analyse.VOTE_RECALL),
        },
    )


def plots(part: Part, out: Path) -> None:
    """Fidelity against mean rule length, one point per depth (error bars: std over members)."""
    sw = part.tables["rules_sweep"]
    paper = part.facts["summary"]["paper"]["mean_per_class"]
    fig, ax = subplots(figsize=(6.2, 4.0))
    for col, label in (("mean_per_class", "mean per class (seed 001's measure)"),
                       ("overall", "combined (one class per image)")):  # fmt: skip
        ax.errorbar(sw["mean_rule_length_mean"], 100 * sw[f"{col}_mean"],
                    yerr=100 * sw[f"{col}_std"], marker="o", capsize=3, label=label)  # fmt: skip
    for r in sw.itertuples():
        ax.annotate(f"depth {r.depth}", (r.mean_rule_length_mean, 100 * r.mean_per_class_mean),
                    textcoords="offset points", xytext=(4, 4), fontsize=7)  # fmt: skip
    ax.axhline(100 * paper, color="grey", ls="--", lw=1, label=f"seed 001: {100 * paper:.2f} %")
    ax.set_xlabel("mean rule length (conditions per rule)")
    ax.set_ylabel("test fidelity to the network (%)")
    ax.set_title("Depth sweep: fidelity against rule length")
    legend_outside(ax)
    save(fig, out / SWEEP_PNG)


def network_text(part: Part) -> str:
    e, s = part.facts.get("ensemble"), part.facts["summary"]
    paper = s["paper"]
    text = "The networks explained: "
    if e:
        text += (
            f"member test accuracy {pct(e['test_acc_mean'])} ± {pct(e['test_acc_std'])}, soft "
            f"vote {pct(e['vote_acc'])}"
        )
    text += f"; seed 001's ResNet-18: {pct(paper['test_acc'])} on SFEW's test set."
    recall = part.facts.get("recall")
    if recall is not None and len(recall):
        ours = {r["class"]: r["recall"] for r in recall.to_dict("records")}
        pairs = [
            f"{c} {pct(ours[c])} (seed 001: {pct(v)})"
            for c, v in paper["recall"].items()
            if c in ours and ours[c] == ours[c]
        ]
        if pairs:
            text += " Soft-vote recall where seed 001 states it: " + "; ".join(pairs) + "."
    return text + " The confusion matrix and every class's recall are under Per-class results."


def blocks(part: Part) -> list[Block]:
    s = part.facts["summary"]
    at, n_cls = s["at_depth"], len(s["class_names"])
    floor = 1 - 1 / n_cls
    members = ", ".join(str(m) for m in s["members"])
    b = [
        h2("Rules from features (seed 001)"),
        p(
            f"Per explained member ({members}) and class, a one-vs-rest decision tree of depth "
            f"{', '.join(str(d) for d in s['depths'])} on the member's {s.get('n_features', 512)}"
            f" pooled features, fitted on {s['fitted_on']}; fidelity = agreement with the "
            f"member on {s['scored_on']} ({s['n_test']} images). One Ray task per (member, "
            "class, depth)."
        ),
        p(network_text(part)),
        p(
            f"At depth {s['depth']}: fidelity {pct(at['mean_per_class_mean'])} ± "
            f"{pct(at['mean_per_class_std'])} as the mean of the per-class agreements (seed 001: "
            f"{pct(s['paper']['mean_per_class'])}), {pct(at['overall_mean'])} ± "
            f"{pct(at['overall_std'])} when the trees must name one class per image (the class "
            f"whose tree is surest), {at['n_rules_mean']:.1f} rules of "
            f"{at['mean_rule_length']:.2f} conditions on average. The per-class mean flatters: "
            f"trees that always answer 'no' score 1 - 1/{n_cls} = {pct(floor)} on it, whatever "
            "the network does; the combined agreement has no such floor."
        ),
        table(part.tables["rules_fidelity"]),
        img(SWEEP_PNG, "Depth sweep: test fidelity against mean rule length (std over members)"),
        table(part.tables["rules_sweep"]),
        p(
            f"The rules at depth {s['depth']} of member {s['members'][0]} (feature fK = column K "
            "of the pooled features, numbered from 0; seed 001 numbers from 1). Every explained "
            "member's rules at every depth are in `rules_all.csv`."
        ),
        code(first_member_text(part.facts["text"])),
    ]
    return b
