"""Seed 003's deconvolution panels and Action Unit ↔ map table (stage ``aumaps``).

Seed 003 shows, by eye, deconvolutions of conv3 maps that look like Action Units and picks
each AU's map by its eq. 13 distance. The report gives that table (per AU the best map, its
distance), the distance of every map for a few AUs (seed 003's Figs. 5-6) and the best maps'
panels (Table 2's layout: receptive-field crops of the top images above their
deconvolutions). Where the true AU regions are known (synthetic faces) it adds what the
paper could not: how often the best map's top activations sit on the AU's region, against
maps picked with shuffled AU labels.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from fer_ray.analysis.intervals import holm
from fer_ray.layout import SUMMARY, AuMaps
from fer_ray.report.figures import save, subplots
from fer_ray.report.page import Block, h2, img, p, pct, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "aumaps"
DISTANCES = "aumaps_distances.png"
MAX_PANELS = 6  # best-map panels shown on the page (all are under the run's aumaps/panels/)


def panel_file(au: str, channel: int) -> str:
    return f"aumaps_{au}_map{channel:03d}.png"


#: Level of the region check's one-sided shuffle test.
LEVEL = 0.05


def with_holm(maps: pd.DataFrame) -> pd.DataFrame:
    """Add ``p_holm``: each member × AU pair's shuffle p-value Holm-adjusted over every pair
    with a p-value (the family the region check's count is over)."""
    if "p_value" not in maps:
        return maps
    return maps.assign(p_holm=holm(maps["p_value"].to_numpy(dtype=float)))


def per_au(maps: pd.DataFrame) -> pd.DataFrame:
    """One row per AU over members: member 0's best map and distance, the best maps of all
    members, and (synthetic) the mean region agreement beside the shuffled baseline, with the
    members whose pair passes the shuffle test after Holm's correction over all pairs."""
    rows = []
    for au, d in maps.groupby("au", sort=False):
        d = d.sort_values("member")
        row = {
            "au": au,
            "images_with": int(d["n_with"].iloc[0]),
            "images_without": int(d["n_without"].iloc[0]),
            "best_map_member0": int(d["map"].iloc[0]),
            "distance_member0": float(d["distance"].iloc[0]),
            "best_maps_all_members": " ".join(str(int(m)) for m in d["map"]),
        }
        if "agreement" in d:
            row.update(
                agreement=float(d["agreement"].mean()),
                shuffled=float(d["shuffled_mean"].mean()),
                members_holm_below_005=f"{int((d['p_holm'] < LEVEL).sum())} of {len(d)}",
            )
        rows.append(row)
    return pd.DataFrame(rows)


def load(run: Run) -> Part | None:
    s = run.json(AuMaps.DIR, SUMMARY)
    if s is None:
        return None
    if s.get("skipped"):
        return Part(facts={"summary": s})
    maps = with_holm(run.need_csv(AuMaps.DIR, AuMaps.MAPS))
    dist = run.need_csv(AuMaps.DIR, AuMaps.DISTANCES)
    panels = {}
    for r in maps[(maps["member"] == 0) & (maps["map"] >= 0)].itertuples():
        src = run.path(AuMaps.DIR, AuMaps.panel(0, s["unit"], int(r.map)))
        if src.is_file() and len(panels) < MAX_PANELS:
            panels[r.au] = (int(r.map), src)
    return Part(
        tables={"aumaps_maps": maps, "aumaps_per_au": per_au(maps) if len(maps) else maps},
        facts={"summary": s, "distances": dist, "panels": panels},
    )


def plots(part: Part, out: Path) -> None:
    if part.facts["summary"].get("skipped"):
        return
    for au, (channel, src) in part.facts["panels"].items():
        shutil.copy(src, out / panel_file(au, channel))
    dist = part.facts["distances"]
    dist = dist[dist["member"] == 0]
    aus = list(dict.fromkeys(dist["au"]))[:4]
    if not aus:
        return
    fig, axes = subplots(len(aus), 1, figsize=(7, 1.7 * len(aus)), sharex=True, squeeze=False)
    for ax, au in zip(axes[:, 0], aus):
        d = dist[dist["au"] == au].sort_values("map")
        ax.bar(d["map"], d["distance"], width=1.0, color="tab:blue")
        best = int(d.loc[d["distance"].idxmax(), "map"])
        ax.set_ylabel(f"{au}\nD", fontsize=8)
        ax.set_title(f"{au}: largest distance at map {best}", fontsize=9)
    axes[-1, 0].set_xlabel("map of the analysed layer (member 0)")
    save(fig, out / DISTANCES)


def region_counts(maps: pd.DataFrame) -> dict[str, int]:
    """Pairs with a shuffle p-value, and how many pass at 5 % uncorrected and after Holm."""
    ok = maps.dropna(subset=["p_value"])
    return {
        "tested": int(len(ok)),
        "uncorrected": int((ok["p_value"] < LEVEL).sum()),
        "holm": int((ok["p_holm"] < LEVEL).sum()),
    }


def region_text(s: dict, c: dict[str, int]) -> str:
    """The region check; the count of significant pairs is Holm-corrected (a family of
    member × AU tests at 5 % each would pass about 5 % of its pairs by chance alone)."""
    n = c["tested"]
    floor, first = 1 / (1 + s["shuffles"]), LEVEL / max(n, 1)
    text = (
        f"Region check (true AU regions of the synthetic faces, rule '{s['rule']}': the"
        f" receptive field's centre inside the AU's box): over {s['n_pairs']} member×AU pairs"
        f" the best map's top-{s['top_k']} activations land on the AU's region"
        f" **{pct(s['agreement_mean'])}** of the time, against **{pct(s['shuffled_mean'])}**"
        f" for the maps picked with the AU labels shuffled across images ({s['shuffles']}"
        f" shuffles); {s['n_above']} of {s['n_pairs']} pairs are above their baseline."
        f" Shuffle test (one-sided, shuffles as the null), Holm-corrected over the {n} pairs:"
        f" **{c['holm']} of {n}** pairs significant at 5 % (uncorrected p < 0.05:"
        f" {c['uncorrected']}, of which about {LEVEL * n:.1f} would pass by chance alone if"
        f" no map owed anything to its AU)."
    )
    if floor >= first:
        text += (
            f" With {s['shuffles']} shuffles no p-value can be below {floor:.3g}, which is not"
            f" below Holm's first step 0.05 / {n} = {first:.3g}: no pair can pass at this"
            " number of shuffles (raise `aumaps.shuffles`)."
        )
    return text


def blocks(part: Part) -> list[Block]:
    s = part.facts["summary"]
    head = h2("Deconvolution and Action Units ↔ maps (seed 003)")
    if s.get("skipped"):
        return [head, p(f"Not computed for {s['backbone']}: {s['skipped']}.")]
    rf = s["receptive_field"]
    n_img = sorted(set(s["n_images"].values()))
    b = [
        head,
        p(
            f"Layer `{s['unit']}` of {s['backbone']} ({s['n_maps']} maps; seed 003 reads its"
            f" network's {s['paper_layer']}), {s['members']} member(s), on"
            f" {'/'.join(str(n) for n in n_img)} {s['images']} images of {s['input_size']} px."
            f" Receptive field {rf['size']} px, stride {rf['stride']}, offset {rf['offset']}."
            f" Per map: its top {s['top_k']} images (seed 003's first nine); per AU: the map"
            f" with the largest eq. 13 distance (n = {s['n']}) between the map's strongest"
            " responses on images with and without the AU. AU labels:"
            f" {s['au_source']}."
        ),
    ]
    maps = part.tables["aumaps_maps"]
    if s.get("region_check") and "agreement_mean" in s and "p_holm" in maps:
        b.append(p(region_text(s, region_counts(maps))))
    elif s["aus"]:
        b.append(p("The AUs' true regions are unknown for this data set: no region check."))
    if len(part.tables["aumaps_per_au"]):
        b.append(table(part.tables["aumaps_per_au"]))
        b.append(img(DISTANCES, "Eq. 13 distance of every map for the first AUs (Figs. 5-6)"))
    for au, (channel, _) in part.facts["panels"].items():
        b.append(
            img(
                panel_file(au, channel),
                f"{au}: map {channel}, top images' receptive fields (top row) above their"
                " deconvolutions (bottom row)",
            )
        )
    b.append(
        p(
            f"Every map's panel ({'all maps' if s['panels'] == 'all' else 'the best maps'}) is"
            f" under the run's `{AuMaps.DIR}/{AuMaps.PANELS_DIR}/` folder."
        )
    )
    return b
