"""What the models were trained on: data set, face crops (and every fallback), the test holdout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer_ray import files
from fer_ray.layout import SUMMARY, Ensemble, Grid, Prepare
from fer_ray.report.page import Block, Glance, h2, p, pct, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "data"


def test_indices(run: Run) -> np.ndarray | None:
    """Manifest rows of the shared test holdout (every member has the same; member 0's is read)."""
    member = run.path(Ensemble.DIR, Ensemble.MEMBERS_DIR, Ensemble.member_dir(0), Ensemble.MEMBER)
    if not member.is_file():
        return None
    return files.load_npz(member, ("test_idx",))["test_idx"]


def counts(manifest: pd.DataFrame, test_idx: np.ndarray | None) -> pd.DataFrame:
    """Images per class and part (train+val pool vs shared test holdout), fallback crops."""
    m = manifest.assign(part="train+val")
    if test_idx is not None:
        m.loc[test_idx, "part"] = "test"
    c = pd.crosstab(m["label_name"], m["part"], margins=True, margins_name="total")
    fb = m.groupby("label_name")["fallback"].sum().astype(int)
    c["fallback crops"] = fb.reindex(c.index).fillna(int(m["fallback"].sum())).astype(int)
    return c.reset_index().rename(columns={"label_name": "class"})


def load(run: Run) -> Part | None:
    summary = run.json(Prepare.DIR, SUMMARY)
    if not summary:
        return None
    part = Part(facts={"prepare": summary, "features": run.json(Grid.DIR, Grid.FEATURES)})
    manifest = run.csv(Prepare.DIR, Prepare.MANIFEST)
    if manifest is not None:
        part.tables["data_counts"] = counts(manifest, test_indices(run))
    return part


def plots(part: Part, out: Path) -> None:
    """No plots."""


def blocks(part: Part) -> list[Block]:
    s = part.facts["prepare"]
    b = [
        h2("Data"),
        p(
            f"Data set `{s['data']}`: {s['n_images']} images, {s['n_groups']} groups "
            f"(subjects/movies; no group is on two sides of any split). Faces: detector "
            f"`{s['detector']}`, margin {s['margin']}, crop {s['size']} px; "
            f"**{s['fallbacks']} fallback (centre) crops** where detection failed."
        ),
    ]
    if s["fallbacks"] and s.get("fallback_items"):
        shown = ", ".join(f"`{i}`" for i in s["fallback_items"][:5])
        more = f" (the first 50 are in {Prepare.DIR}/{SUMMARY})" if s["fallbacks"] > 5 else ""
        b.append(p(f"Fallback crops: {shown}{' …' if s['fallbacks'] > 5 else ''}{more}."))
    if s.get("unreadable"):
        listed = ", ".join(f"`{i}`" for i in s.get("unreadable_items", [])[:10])
        b.append(
            p(
                f"**{s['unreadable']} unreadable images left out** "
                f"(data.skip_unreadable=true): {listed}" + (" …" if s["unreadable"] > 10 else "")
            )
        )
    if s.get("skipped_files"):
        listed = ", ".join(f"`{i}`" for i in s.get("skipped_items", [])[:10])
        more = " …" if s["skipped_files"] > 10 else ""
        what = "files in formats fer_ray does not read"
        b.append(p(f"**{s['skipped_files']} {what}** (not images to it), left out: {listed}{more}"))
    feats = part.facts["features"]
    if feats:
        b.append(
            p(
                f"Input recipe: {feats.get('recipe', 'none')}. "
                f"Feature cache: {'on' if feats['feature_cache'] else 'off'} "
                f"({feats['feature_cache_reason']}). Shared test holdout: {feats['n_test']} "
                f"images ({pct(feats['test_fraction_realised'])}; "
                f"{feats.get('test_holdout', 'grouped holdout')}), never seen by the grid. "
                f"Grid fold sizes: {feats['fold_sizes']}."
            )
        )
    if "data_counts" in part.tables:
        b.append(table(part.tables["data_counts"]))
    return b


def glance(part: Part) -> list[Glance]:
    """One line for the page header: the data set, its size and how many faces fell back."""
    s = part.facts["prepare"]
    line = (
        f"`{s['data']}`: {s['n_images']} images, {s['n_groups']} groups; faces by "
        f"`{s['detector']}` at {s['size']} px, {s['fallbacks']} fallback (centre) crops"
    )
    if s.get("unreadable"):
        line += f"; {s['unreadable']} unreadable images left out"
    feats = part.facts["features"]
    if feats:
        line += f"; test holdout {feats['n_test']} images"
    return [("Data", line + ".")]
