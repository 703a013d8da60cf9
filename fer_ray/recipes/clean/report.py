"""Seed 004's top-loss cleaning: the gallery of the largest out-of-fold losses (Fig. 3 and 5),
the flags scored against the truly flipped labels (with ``data.label_noise``), and the test
accuracy of members retrained without the flagged items, and without exactly the flipped ones
(the oracle), with intervals over subjects and paired differences.

Only stored files are read: ``clean/summary.json`` (with the paper's Table 2 in ``paper``),
``gallery.csv`` and ``gallery.npz`` (the crops the grid is drawn from), ``losses.csv``,
``variants.csv`` and ``retrain.csv``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from fer_ray.layout import SUMMARY, Clean
from fer_ray.report import uncertainty as u
from fer_ray.report.figures import legend_outside, save, subplots
from fer_ray.report.page import Block, h2, img, p, pct, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "clean"
GALLERY_PNG = "clean_gallery.png"
LOSSES_PNG = "clean_losses.png"
COLUMNS = 5


def load(run: Run) -> Part | None:
    s = run.json(Clean.DIR, SUMMARY)
    if s is None:
        return None
    tables = {"clean_gallery": run.need_csv(Clean.DIR, Clean.GALLERY)}
    for key, file in (("clean_variants", Clean.VARIANTS), ("clean_retrain", Clean.RETRAIN)):
        frame = run.csv(Clean.DIR, file)
        if frame is not None:
            tables[key] = frame
    stored = run.npz(Clean.DIR, Clean.GALLERY_CROPS, keys=("crops",))
    crops = stored["crops"] if stored is not None else None
    return Part(
        tables=tables,
        facts={
            "summary": s,
            "crops": crops,
            "losses": run.need_csv(Clean.DIR, Clean.LOSSES),
            "noun": u.group_noun(run),
        },
    )


def gallery_png(crops: np.ndarray, gallery: pd.DataFrame, path: Path) -> None:
    """The top losses as a grid, titled prediction/actual/loss/probability of the actual class
    (seed 004 Fig. 5); a truly flipped label gets a red frame (seed 004 Fig. 3's red squares)."""
    n = len(gallery)
    rows = max(1, math.ceil(n / COLUMNS))
    fig, axes = subplots(rows, COLUMNS, figsize=(2.1 * COLUMNS, 2.35 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    flipped = gallery["flipped"].to_numpy(bool) if "flipped" in gallery else np.zeros(n, bool)
    for i, (ax, r) in enumerate(zip(axes.ravel(), gallery.itertuples())):
        ax.imshow(crops[i])
        ax.set_title(r.title.replace(" / ", "/"), fontsize=7, color="red" if flipped[i] else "k")
        if flipped[i]:
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor("red")
                spine.set_linewidth(2.5)
    fig.suptitle("Top out-of-fold losses: prediction/actual/loss/probability", fontsize=9)
    save(fig, path)


def losses_png(losses: pd.DataFrame, cut: float, path: Path) -> None:
    """Out-of-fold loss histogram, flipped and kept labels apart when known, and the flag cut."""
    fig, ax = subplots(figsize=(6.0, 3.4))
    bins = np.linspace(0, float(losses["loss"].max()) + 1e-9, 30)
    if "flipped" in losses:
        fl = losses["flipped"].astype(bool)
        ax.hist(losses.loc[~fl, "loss"], bins=bins, alpha=0.6, label="label kept")
        ax.hist(losses.loc[fl, "loss"], bins=bins, alpha=0.6, color="red", label="label flipped")
        legend_outside(ax)
    else:
        ax.hist(losses["loss"], bins=bins, alpha=0.8)
    ax.axvline(cut, color="k", ls="--", lw=1)
    ax.set_xlabel("out-of-fold cross-entropy loss (dashed: flag cut)")
    ax.set_ylabel("training-pool images")
    save(fig, path)


def plots(part: Part, out: Path) -> None:
    crops = part.facts["crops"]
    if crops is not None and len(crops):
        gallery_png(crops, part.tables["clean_gallery"], out / GALLERY_PNG)
    losses = part.facts["losses"]
    flagged = losses["flagged"].astype(bool)
    cut = float(losses.loc[flagged, "loss"].min()) if flagged.any() else float("nan")
    losses_png(losses, cut, out / LOSSES_PNG)


def flags_text(s: dict) -> str:
    f = s["flags"]
    text = (
        f"Label noise: {f['n_flipped']} of {s['n_pool']} training-pool labels were flipped "
        f"(data.label_noise = {pct(s['label_noise'])}, recorded per image in "
        f"prepare/manifest.csv; test labels never). The {f['n_flagged']} flags find "
        f"{f['n_true_positive']} of them: precision {pct(f['precision'])} (flagging at random: "
        f"{pct(f['base_rate'])}), recall {pct(f['recall'])}, F1 {pct(f['f1'])}."
    )
    if f.get("auroc") is not None:
        text += (
            f" The loss ranks a flipped label above a kept one with probability "
            f"{pct(f['auroc'])} (AUROC; 50 % = no signal); mean loss {f['mean_loss_flipped']:.2f}"
            f" (flipped) against {f['mean_loss_clean']:.2f} (kept)."
        )
    return text


def variants_table(part: Part) -> pd.DataFrame:
    v = part.tables["clean_variants"]
    return pd.DataFrame(
        {
            "variant": v["variant"],
            "images dropped": v["dropped"],
            "soft vote": [u.accuracy(a, lo, hi) for a, lo, hi in
                          zip(v["vote_acc"], v["vote_low"], v["vote_high"])],
            "vote - none": ["" if n == "none" else u.difference(d, lo, hi) for n, d, lo, hi in
                            zip(v["variant"], v["vote_minus_none"], v["diff_low"],
                                v["diff_high"])],
            "member mean": [pct(x) for x in v["member_mean"]],
            "member mean - none": ["" if n == "none" else f"{100 * x:+.2f} points"
                                   for n, x in zip(v["variant"], v["member_minus_none"])],
        }
    )  # fmt: skip


def retrain_text(s: dict, noun: str) -> str:
    r = s["retrain"]
    var = r["variants"]
    # one member trainer: 'none' applies train.* exactly as the ensemble does
    same = "(the ensemble's own members of those seeds)"
    text = (
        f"Retrained: {r['members']} members per variant with the ensemble's recipe and the same "
        f"seeds and splits; 'none' keeps every pool image {same}, 'flagged' drops the flagged images from each member's training and validation "
        "parts (seed 004 cleaned its folders)"
        + (", 'oracle' drops exactly the flipped ones" if "oracle" in var else "")
        + f". Soft-vote test accuracy on {r['n_test']} images: "
    )
    parts = []
    for name, f in var.items():
        if "vote" not in f:
            continue
        d = f["vote_minus_none"]
        parts.append(
            f"{name} {u.accuracy_of(f['vote'])}"
            + ("" if name == "none" else f", {u.difference_of(d)} vs none "
               f"({u.verdict(d['low'], d['high'])})")
        )  # fmt: skip
    text += "; ".join(parts) + "."
    if "flagged_minus_oracle" in var:
        g = var["flagged_minus_oracle"]
        text += f" Flagged against the oracle: {u.difference_of(g)}."
    method = next((u.method_of(f["vote"]) for f in var.values() if "vote" in f), None)
    text += f" {u.brief_caveat(r['n_test_groups'], noun, method=method).capitalize()}."
    return text


def blocks(part: Part) -> list[Block]:
    s = part.facts["summary"]
    pp = s["paper"]
    b = [
        h2("Top-loss cleaning (seed 004)"),
        p(
            f"Out-of-fold losses of the {s['n_pool']} training-pool images (every image outside "
            f"the test holdout): {s['folds']} grouped folds, one Ray task each trains the chosen "
            f"cell (lr {s['chosen']['lr']:g}, hidden {s['chosen']['hidden']}, {s['epochs']} "
            "epochs, last epoch) on the other folds, so no image is scored by a model that saw "
            f"it. Out-of-fold accuracy against the given labels: {pct(s['oof_acc'])}. Flagged: "
            f"the {s['n_flagged']} largest losses ({pct(s['flag_fraction'])})."
        ),
    ]
    if "flags" in s:
        b.append(p(flags_text(s)))
    if part.facts["crops"] is not None:
        b.append(img(GALLERY_PNG, "Largest out-of-fold losses (red: truly flipped label)"))
    keep = [c for c in ("rank", "index", "title", "flipped", "clean_label_name")
            if c in part.tables["clean_gallery"]]  # fmt: skip
    b += [table(part.tables["clean_gallery"][keep]), img(LOSSES_PNG, "Out-of-fold losses")]
    if "retrain" in s and "clean_variants" in part.tables:
        text = retrain_text(s, part.facts["noun"])
        b += [p(text), table(variants_table(part))]
    b.append(
        p(
            f"Seed 004 (FER2013, ResNet-34, cleaned by hand from the top-loss plots): error "
            f"{pct(pp['error_original_fine_tuned'])} before and "
            f"{pct(pp['error_cleaned_fine_tuned'])} after cleaning (fine-tuned; "
            f"{pct(pp['error_original'])} → {pct(pp['error_cleaned'])} before fine-tuning), one "
            "run each, no interval, and no way to tell how many flagged images were mislabelled."
        )
    )
    return b
