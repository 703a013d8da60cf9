"""Runs side by side: ``python -m fer_ray.report runs/a runs/b [...] --out reports/compare-...``.

Why: the question after a second run is rarely "what did it get" but "what changed, and is the
difference real". So the comparison puts the configs' differing keys, the headlines (with the
stored 95 % intervals), Table 2 and the curves of every run next to each other, and, for runs
that tested on the same images, the paired difference of their soft votes: scored on the same
test items with one interval over the same groups (``fer_ray.analysis.intervals``), which is far
narrower than comparing two separate intervals. Runs with other test items are not paired.

Like the report, it reads stored files only (``report.md``, ``report.html``, CSVs, one PNG per
overlay) and needs no Ray.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fer_ray import files
from fer_ray.analysis.intervals import DEFAULT_METHOD, mcnemar, mean_interval, paired_difference
from fer_ray.config_diff import flatten
from fer_ray.errors import ReportError
from fer_ray.layout import STARTED, SUMMARY, Analyse, Ensemble, Grid, Prepare
from fer_ray.report import figures
from fer_ray.report import uncertainty as u
from fer_ray.report.build import REPORT_HTML, REPORT_MD
from fer_ray.report.live import is_partial, stage_states
from fer_ray.report.page import Block, Shown, h1, h2, img, p, pct, table, ul
from fer_ray.report.render import to_markdown, to_page
from fer_ray.report.run import Run, open_run

CURVES_PNG = "compare_learning_curves.png"
SIZE_PNG = "compare_size_curves.png"
SWEEP_PNG = "compare_pruning_sweeps.png"


@dataclass
class TestSet:
    """A run's shared test holdout: item ids, labels and groups in item order, the soft vote's
    and each member's predictions on it."""

    items: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    vote: np.ndarray  # predicted class per item
    member_correct: np.ndarray  # (members, items) 0/1


def names_of(runs: list[Run]) -> list[str]:
    """Each run's config name; when two share one, their folder names, then more of their
    paths, then numbers: the columns must tell the runs apart."""
    for names in (
        [str(r.config.get("name", r.root.name)) for r in runs],
        [r.root.name for r in runs],
        [f"{r.root.parent.name}/{r.root.name}" for r in runs],
    ):
        if len(set(names)) == len(names):
            return names
    return [f"{r.root.name} ({i + 1})" for i, r in enumerate(runs)]


def config_diff(runs: list[Run], names: list[str]) -> pd.DataFrame:
    """Only the config keys whose values differ between the runs (``name`` aside)."""
    flats = [flatten(r.config) for r in runs]
    keys = sorted(set().union(*flats) - {"name"})
    rows = []
    for k in keys:
        values = [f.get(k, "(unset)") for f in flats]
        if any(v != values[0] for v in values[1:]):
            rows.append({"key": k, **{n: str(v) for n, v in zip(names, values)}})
    return pd.DataFrame(rows, columns=["key", *names])


def headline(runs: list[Run], names: list[str]) -> pd.DataFrame:
    """Per run: members, member accuracy, soft vote, with the stored intervals when present."""
    rows = []
    for run, name in zip(runs, names):
        s = run.json(Ensemble.DIR, SUMMARY)
        if not s:
            rows.append({"run": name, "members": "-", "member test accuracy": "no ensemble yet"})
            continue
        iv = s.get("intervals") or {}
        tag = " (selected on test)" if s.get("selected_on_test") else ""
        rows.append(
            {
                "run": name,
                "members": s["members"],
                "member test accuracy": f"{pct(s['test_acc_mean'])} ± {pct(s['test_acc_std'])}"
                + tag,
                "member mean [95 %]": u.accuracy_of(iv["member_mean"]) if iv else "-",
                "soft vote": pct(s["vote_acc"]),
                "soft vote [95 %]": u.accuracy_of(iv["vote"]) if iv else "-",
                "test images": s.get("n_test", "-"),
                "groups": iv.get("n_groups", "-") if iv else "-",
                "chance (uniform)": pct(s["chance_uniform"]),
            }
        )
    return pd.DataFrame(rows)


def table2(runs: list[Run], names: list[str]) -> pd.DataFrame | None:
    """Each run's Table 2 (mean ± std validation accuracy per lr × hidden), one column per run."""
    merged = None
    for run, name in zip(runs, names):
        t = run.csv(Grid.DIR, Grid.TABLE2)
        if t is None or not {"lr", "hidden", "mean", "std"} <= set(t.columns):
            continue
        col = t[["lr", "hidden"]].copy()
        col[name] = [f"{pct(m)} ± {pct(s)}" for m, s in zip(t["mean"], t["std"].fillna(0.0))]
        merged = col if merged is None else merged.merge(col, on=["lr", "hidden"], how="outer")
    if merged is None:
        return None
    return merged.sort_values(["lr", "hidden"], ascending=[False, True]).fillna("-")


def test_set(run: Run) -> TestSet | None:
    """The run's test holdout with its vote and members' predictions, or None without them."""
    members = sorted(run.path(Ensemble.DIR, Ensemble.MEMBERS_DIR).glob("member_*/member.npz"))
    vote = run.path(Ensemble.DIR, Ensemble.VOTE)
    splits = run.csv(Grid.DIR, Grid.SPLITS)
    manifest = run.csv(Prepare.DIR, Prepare.MANIFEST)
    if not members or not vote.is_file() or splits is None:
        return None
    correct = []
    for path in members:
        z = files.load_npz(path, ("test_idx", "test_labels", "test_probs"))
        idx, labels = z["test_idx"], z["test_labels"]
        correct.append((z["test_probs"].argmax(1) == labels).astype(float))
    z = files.load_npz(vote, ("probs", "labels"))
    voted, vote_labels = z["probs"].argmax(1), z["labels"]
    if not np.array_equal(vote_labels, labels):
        raise ReportError(f"{vote} and {members[-1]} disagree on the test labels")
    items = manifest["item"].to_numpy()[idx] if manifest is not None else idx
    groups = splits.set_index("item")["group"].reindex(idx).astype(str).to_numpy()
    return TestSet(np.asarray(items).astype(str), labels, groups, voted, np.stack(correct))


def _same_data(a: Run, b: Run) -> bool:
    """Same images: the same ``data`` settings and, where stored, the same files."""
    if a.config.get("data") != b.config.get("data"):
        return False
    fa = (a.json(Prepare.DIR, STARTED) or {}).get("keys", {}).get("files")
    fb = (b.json(Prepare.DIR, STARTED) or {}).get("keys", {}).get("files")
    return fa is None or fb is None or fa == fb


def paired(
    runs: list[Run], names: list[str], seed: int = 0, method: str = DEFAULT_METHOD
) -> pd.DataFrame:
    """Every pair of runs: the soft votes' and the member means' paired differences (a - b)
    on the shared test items, with ``method``'s interval over the items' groups (the
    default: the cluster t-interval), and McNemar's test; or
    why a pair is not paired."""
    sets = [test_set(r) for r in runs]
    rows = []
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            a, b = sets[i], sets[j]
            row: dict[str, Any] = {"a": names[i], "b": names[j]}
            why = None
            if a is None or b is None:
                why = "no stored ensemble test predictions"
            elif not _same_data(runs[i], runs[j]):
                why = "other data (the data settings or files differ)"
            elif not (np.array_equal(a.items, b.items) and np.array_equal(a.labels, b.labels)):
                shared = len(set(a.items) & set(b.items))
                why = f"other test items ({len(a.items)} and {len(b.items)}, {shared} shared)"
            if why is not None:
                rows.append({**row, "paired on": "-", "vote a - b [95 %]": f"not paired: {why}"})
                continue
            ca, cb = (a.vote == a.labels).astype(float), (b.vote == b.labels).astype(float)
            vote = paired_difference(ca, cb, a.groups, seed=seed, method=method)
            members = mean_interval(
                a.member_correct.mean(0) - b.member_correct.mean(0),
                a.groups,
                seed=seed,
                method=method,
            )
            mc = mcnemar(ca, cb)
            rows.append(
                {
                    **row,
                    "paired on": f"{vote.n_items} images of {vote.n_groups} groups",
                    "vote a": pct(ca.mean()),
                    "vote b": pct(cb.mean()),
                    "vote a - b [95 %]": u.difference(vote.estimate, vote.low, vote.high),
                    "verdict": u.verdict(vote.low, vote.high),
                    "McNemar p": f"{mc['p_value']:.3g} ({mc['b']} vs {mc['c']} discordant)",
                    "member mean a - b [95 %]": u.difference(
                        members.estimate, members.low, members.high
                    ),
                }
            )
    return pd.DataFrame(rows)


def _colors(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def learning_curves(runs: list[Run], names: list[str], path: Path) -> bool:
    """Grid (mean over trials per epoch) and ensemble (mean over members per step)
    validation accuracy, one line per run."""
    grid = [r.csv(Grid.DIR, Grid.CURVES) for r in runs]
    ens = [r.csv(Ensemble.DIR, Ensemble.CURVES) for r in runs]
    if all(g is None for g in grid) and all(e is None for e in ens):
        return False
    fig, (ax1, ax2) = figures.subplots(1, 2, figsize=(10, 3.8))
    for name, g, e, c in zip(names, grid, ens, _colors(len(runs))):
        if g is not None and "val_acc" in g:
            m = g.groupby("epoch")["val_acc"].mean()
            ax1.plot(m.index, m.values, color=c, marker="o", ms=3, label=name)
        if e is not None and "val_acc" in e:
            m = e.groupby("step")["val_acc"].mean()
            ax2.plot(m.index, m.values, color=c, marker="o", ms=3, label=f"{name} validation")
            m = e.groupby("step")["train_acc"].mean()
            ax2.plot(m.index, m.values, color=c, ls="--", lw=1, label=f"{name} train")
    ax1.set(title="grid: mean over trials", xlabel="epoch", ylabel="validation accuracy")
    ax2.set(title="ensemble: mean over members", xlabel="step (phase 1, then 2)", ylabel="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    # one legend, right of the last panel: a run's colour is the same in both
    figures.legend_outside(ax2, handles=(ax2 if ax2.get_lines() else ax1).get_lines())
    figures.save(fig, path)
    return True


def _per_run_axes(
    frames: list[pd.DataFrame | None], names: list[str], path: Path, draw: Any, **labels: str
) -> bool:
    """One axes, ``draw(ax, name, frame, color)`` for each run that has its table; False (no
    figure) when none has."""
    if all(f is None for f in frames):
        return False
    fig, ax = figures.subplots(figsize=(6, 3.8))
    for name, f, color in zip(names, frames, _colors(len(frames))):
        if f is not None:
            draw(ax, name, f, color)
    ax.set(**labels)
    ax.grid(alpha=0.3)
    figures.legend_outside(ax)
    figures.save(fig, path)
    return True


def size_curves(runs: list[Run], names: list[str], path: Path) -> bool:
    """Soft-vote accuracy against the number of members (mean ± std over subsets), per run."""

    def draw(ax: Any, name: str, c: pd.DataFrame, color: Any) -> None:
        ax.errorbar(c["k"], c["accuracy"], yerr=c.get("accuracy_std"), color=color, marker="o",
                    ms=3, capsize=2, label=name)  # fmt: skip

    curves = [r.csv(Ensemble.DIR, Ensemble.SIZE_CURVE) for r in runs]
    return _per_run_axes(curves, names, path, draw, xlabel="members in the soft vote",
                         ylabel="test accuracy", title="ensemble size")  # fmt: skip


def pruning_sweeps(runs: list[Run], names: list[str], path: Path) -> bool:
    """Test accuracy against the share of features pruned, mean over members and draws, per
    run and pruning order (runs may have other feature counts: the share lines them up)."""
    styles = ["-", "--", ":", "-."]

    def draw(ax: Any, name: str, s: pd.DataFrame, color: Any) -> None:
        for k, (order, d) in enumerate(s.groupby("order")):
            m = d.groupby("ratio")["accuracy"].mean()
            ax.plot(m.index, m.values, color=color, ls=styles[k % 4], label=f"{name}: {order}")

    sweeps = [r.csv(Analyse.DIR, Analyse.SWEEP) for r in runs]
    return _per_run_axes(sweeps, names, path, draw, xlabel="share of features pruned",
                         ylabel="test accuracy", title="pruning sweep")  # fmt: skip


def _states(run: Run) -> str:
    states, planned = stage_states(run)
    text = ", ".join(s.text() for s in states)
    return text + (" (partial)" if is_partial(states, planned) else "")


def compare_runs(run_dirs: list[str | Path], out_dir: str | Path) -> Path:
    """Write the comparison of ``run_dirs`` into ``out_dir``: report.md, report.html, CSVs
    and PNGs."""
    if len(run_dirs) < 2:
        raise ReportError("comparing runs needs at least two run directories")
    runs = [open_run(d) for d in run_dirs]
    names = names_of(runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    overview = pd.DataFrame(
        {"run": names, "directory": [str(r.root) for r in runs], "stages": map(_states, runs)}
    )
    diff, head, t2, pairs = (
        config_diff(runs, names),
        headline(runs, names),
        table2(runs, names),
        paired(runs, names),
    )
    tables = {"compare_runs": overview, "compare_config_diff": diff, "compare_headline": head,
              "compare_table2": t2, "compare_paired": pairs}  # fmt: skip
    for key, df in tables.items():
        if df is not None:
            df.to_csv(out / f"{key}.csv", index=False)
    sections: list[Shown] = [
        Shown("runs", [h2("Runs"), table(overview)]),
        Shown(
            "config",
            [
                h2("Configs: the keys that differ"),
                table(diff) if len(diff) else p("The configs are the same."),
            ],
        ),  # fmt: skip
        Shown("headline", [h2("Headline"), table(head), p(HEADLINE_NOTE)]),
    ]
    if t2 is not None:
        sections.append(Shown("table2", [h2("Table 2: validation accuracy per lr × hidden"),
                                          table(t2)]))  # fmt: skip
    sections.append(Shown("paired", [h2("Paired differences on shared test items"),
                                     table(pairs), p(PAIRED_NOTE)]))  # fmt: skip
    plots = [
        (learning_curves, CURVES_PNG, "Learning curves"),
        (size_curves, SIZE_PNG, "Soft-vote accuracy against ensemble size"),
        (pruning_sweeps, SWEEP_PNG, "Pruning sweeps"),
    ]
    shown_plots: list[Block] = []
    for draw, file, caption in plots:
        if draw(runs, names, out / file):
            shown_plots.append(img(file, caption))
    if shown_plots:
        sections.append(Shown("curves", [h2("Curves, overlaid"), *shown_plots]))
    title = "fer_ray comparison: " + " vs ".join(names)
    verdicts = [f"{r['a']} - {r['b']}: {r['vote a - b [95 %]']}" for _, r in pairs.iterrows()]
    header = Shown("header", [h1(title), ul(verdicts)], in_header=True,
                   glance=[("Runs", ", ".join(names)), ("Soft votes, paired", verdicts)])  # fmt: skip
    page = [header, *sections]
    (out / REPORT_MD).write_text(to_markdown([b for s in page for b in s.blocks]))
    (out / REPORT_HTML).write_text(to_page(page, title, out))
    return out


HEADLINE_NOTE = (
    "Brackets are the 95 % intervals each run stored (over the test set's groups, by the run's "
    "statistics.interval method); "
    "two runs' intervals overlapping says little about their difference: see the paired "
    "differences below for runs tested on the same images."
)
PAIRED_NOTE = (
    "For two runs tested on the same images (same data, same test items and labels), each "
    "image scores both runs, and the interval (the cluster t-interval over the test set's "
    "groups) is of the per-image difference itself. Runs with other test items (another split "
    "seed or test fraction, other data) are not paired: their test sets differ in difficulty."
)
