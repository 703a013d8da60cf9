"""Report → report.md, report.html, tables as CSV, plots as PNG.

The page is built once as a list of blocks and written in both formats, so the
Markdown and the HTML always say the same thing.
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from fer_ray.report import plots  # noqa: E402
from fer_ray.report.aggregate import Report  # noqa: E402
from fer_ray.report.descriptor_tables import descriptor_blocks  # noqa: E402

Block = tuple  # ("h1"|"h2"|"p"|"code", text) · ("table", DataFrame) · ("img", file, caption)


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(blocks: list[Block]) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h1":
            out.append(f"# {b[1]}")
        elif kind == "h2":
            out.append(f"## {b[1]}")
        elif kind == "p":
            out.append(b[1])
        elif kind == "code":
            out.append(f"```\n{b[1].rstrip()}\n```")
        elif kind == "table":
            out.append(_md_table(b[1]))
        elif kind == "img":
            out.append(f"![{b[2]}]({b[1]})\n\n*{b[2]}*")
    return "\n\n".join(out) + "\n"


def to_html(blocks: list[Block], title: str) -> str:
    body = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(b[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{html.escape(b[1]).replace('**', '')}</p>")
        elif kind == "code":
            body.append(f"<pre>{html.escape(b[1])}</pre>")
        elif kind == "table":
            body.append(b[1].to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0))
        elif kind == "img":
            body.append(
                f'<figure><img src="{html.escape(b[1])}" alt="{html.escape(b[2])}">'
                f"<figcaption>{html.escape(b[2])}</figcaption></figure>"
            )
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}"
        "img{max-width:100%}pre{background:#f4f4f4;padding:1em;overflow:auto}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def blocks_for(rep: Report, out: Path) -> list[Block]:
    cfg, run = rep.config, rep.run
    name = cfg.get("name", rep.run_dir.name)
    b: list[Block] = [("h1", f"fer_ray report: {name}")]
    v = run.get("versions", {})
    b.append(
        (
            "p",
            f"Run directory `{rep.run_dir}` · git commit `{run.get('git_commit', 'unknown')}` · "
            f"started {run.get('started', '?')} on {run.get('host', '?')} · "
            + ", ".join(f"{k} {val}" for k, val in v.items()),
        )
    )
    stages = ", ".join(
        f"{s} {'done' if d['done'] else 'not run'}"
        + (f" ({d['seconds']:.0f}s)" if d.get("seconds") is not None else "")
        for s, d in rep.stages.items()
    )
    b.append(("p", f"Stages: {stages}."))
    b.append(("p", f"Model weights: `{cfg['model']['weights']}` ({cfg['model']['backbone']})."))

    ens = rep.facts.get("ensemble")
    if ens:
        tag = " **(selected on test, seed 000's protocol)**" if ens["selected_on_test"] else ""
        b.append(("h2", "Headline"))
        b.append(
            (
                "p",
                f"{ens['members']} members: test accuracy {_pct(ens['test_acc_mean'])} ± "
                f"{_pct(ens['test_acc_std'])}{tag}; soft-vote ensemble {_pct(ens['vote_acc'])}; "
                f"chance {_pct(ens['chance_uniform'])} (uniform), "
                f"{_pct(ens['chance_majority'])} (majority class); test set {ens['n_test']} images.",
            )
        )

    prep = rep.facts.get("prepare")
    if prep:
        b.append(("h2", "Data"))
        b.append(
            (
                "p",
                f"Data set `{prep['data']}`: {prep['n_images']} images, {prep['n_groups']} groups "
                f"(subjects/movies; no group is on two sides of any split). Faces: detector "
                f"`{prep['detector']}`, margin {prep['margin']}, crop {prep['size']} px; "
                f"**{prep['fallbacks']} fallback (centre) crops** where detection failed.",
            )
        )
        if prep["fallbacks"] and prep.get("fallback_items"):
            shown = ", ".join(f"`{i}`" for i in prep["fallback_items"][:5])
            more = " (the first 50 are in prepare/summary.json)" if prep["fallbacks"] > 5 else ""
            b.append(
                ("p", f"Fallback crops: {shown}{' …' if prep['fallbacks'] > 5 else ''}{more}.")
            )
        if prep.get("unreadable"):
            listed = ", ".join(f"`{i}`" for i in prep.get("unreadable_items", [])[:10])
            b.append(
                (
                    "p",
                    f"**{prep['unreadable']} unreadable images left out** "
                    f"(data.skip_unreadable=true): {listed}"
                    + (" …" if prep["unreadable"] > 10 else ""),
                )
            )
        feats = rep.facts.get("features")
        if feats:
            b.append(
                (
                    "p",
                    f"Input recipe: {feats.get('recipe', 'none')}. "
                    f"Feature cache: {'on' if feats['feature_cache'] else 'off'} "
                    f"({feats['feature_cache_reason']}). Shared test holdout: {feats['n_test']} "
                    f"images ({_pct(feats['test_fraction_realised'])}; "
                    f"{feats.get('test_holdout', 'grouped holdout')}), never seen by the grid. "
                    f"Grid fold sizes: {feats['fold_sizes']}.",
                )
            )
        if "data_counts" in rep.tables:
            b.append(("table", rep.tables["data_counts"]))

    if "table2_pivot" in rep.tables:
        chosen = rep.facts.get("chosen") or {}
        b.append(("h2", "Grid search (seed 000, Table 2)"))
        b.append(
            (
                "p",
                "Validation accuracy (fraction) at the last epoch, mean ± std over "
                f"{cfg['grid']['folds']} grouped folds, per learning rate × hidden units.",
            )
        )
        b.append(("table", rep.tables["table2_pivot"]))
        if chosen:
            b.append(
                (
                    "p",
                    f"Chosen config: lr {chosen['lr']:g}, hidden {chosen['hidden']} "
                    f"(best mean {_pct(chosen['mean_val_acc'])} ± {_pct(chosen['std_val_acc'])};"
                    " ties go to the simpler model).",
                )
            )
        b.append(("img", "grid_heatmap.png", "Grid: mean validation accuracy per cell"))

    if "ensemble_members" in rep.tables:
        b.append(("h2", "Ensemble (two-phase fine-tunes)"))
        e = cfg["ensemble"]
        sel = "test set (labelled: selected on test)" if e["selection"] == "test" else "validation"
        b.append(
            (
                "p",
                f"Each member: {cfg['train']['epochs']} epochs at the chosen lr, then "
                f"{e['phase2_epochs']} epochs at lr {e['phase2_lr']:g}; epoch and phase selected "
                f"on {sel}. Train/val split ({1 - e['val_fraction']:.0%}:{e['val_fraction']:.0%}) "
                "drawn per member seed, grouped.",
            )
        )
        b.append(("table", rep.tables["ensemble_members"]))
        b.append(("img", "member_accuracy.png", "Test accuracy per member, mean and soft vote"))
        b.append(("img", "learning_curves.png", "Learning curves (validation accuracy per epoch)"))

    for extra in rep.facts.get("analysis_blocks", []):
        b.append(extra)
    b.extend(descriptor_blocks(rep.run_dir, out))

    if "nodes" in rep.tables:
        b.append(("h2", "Where trials ran"))
        b.append(("table", rep.tables["nodes"]))
    b.append(("h2", "Config"))
    b.append(("code", yaml.safe_dump(cfg, sort_keys=False)))
    b.append(("p", f"Command: `{run.get('command', '?')}`"))
    return b


def render(rep: Report, out: Path) -> None:
    for name, df in rep.tables.items():
        df.to_csv(out / f"{name}.csv", index=False)
    plots.make_all(rep, out)
    blocks = blocks_for(rep, out)
    blocks = [b for b in blocks if b[0] != "img" or (out / b[1]).is_file()]
    (out / "report.md").write_text(to_markdown(blocks))
    title = f"fer_ray report: {rep.config.get('name', '')}"
    (out / "report.html").write_text(to_html(blocks, title))
    plt.close("all")
