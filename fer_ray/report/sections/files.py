"""Links from the report to the files behind it: every CSV it wrote and read, each Tune
trial's folder (with a per-trial table) and the experiment tracker's output.

Why: a reader who doubts a number opens the table or the trial behind it. Every link is
relative to the report folder (``os.path.relpath``), so it opens from ``report.md`` and
``report.html`` alike, and keeps working when the runs and reports folders are moved
together; a file that is not on this machine (Tune storage on ``s3://``) is named, not linked.
The tracker's line gives the command that opens it, to be run in the report folder.

This part needs the report folder and what the other sections read and write, so ``build``
makes it (``collect``) once they have loaded; ``load`` has nothing to read on its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from fer_ray import files, trial_logs
from fer_ray.errors import StoredFileError
from fer_ray.layout import CONFIG, MLFLOW_DB, PLAN, RESULTS, RUN_INFO, WANDB_DIR, RunPaths
from fer_ray.report.page import Block, Glance, fold, h2, link, p, table, ul
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "files"
TRIALS = "tune_trials"  # the per-trial table: tune_trials.csv in the report folder
#: A longer per-trial table is folded away in the HTML.
FOLD_ROWS = 10
#: TensorBoard's event files in a trial's folder, from Tune's storage folder
TB_EVENTS = f"*/*/{trial_logs.EVENTS_PREFIX}*"
#: The last reported metrics a trial's row shows, where its stage reported them.
METRICS = ("phase", "epoch", "train_acc", "val_acc", "test_acc", "time_total_s", "node_ip")


def load(run: Run) -> None:
    """Nothing yet: ``collect`` builds this part once the other sections have read."""
    return None


def href(target: Path, out: Path) -> str:
    """``target`` relative to the report folder ``out``, with ``/`` separators (a ``file:``
    URI where no relative path exists, e.g. another drive)."""
    try:
        return Path(os.path.relpath(target.resolve(), out.resolve())).as_posix()
    except ValueError:
        return target.resolve().as_uri()


def collect(run: Run, out: Path, parts: dict[str, Part]) -> Part:
    """Links to the CSVs the sections in ``parts`` read (``run.read``) and write, to the
    Tune trials' folders and to the tracker's output, relative to ``out``."""
    trials = trial_table(run)
    tables = {TRIALS: trials.drop(columns="folder_href")} if len(trials) else {}
    written = [f"{key}.csv" for part in [*parts.values(), Part(tables)] for key in part.tables]
    stored = [run.root / f for f in (CONFIG, RUN_INFO) if (run.root / f).is_file()]
    stored += [*run.read, *stage_order(run, run.root.glob(f"*/{RESULTS}"))]
    read: dict[str, list[str]] = {}
    for f in stored:
        folder = f.parent.relative_to(run.root).as_posix()
        read.setdefault(folder, []).append(link(f.name, href(f, out)))
    facts: dict[str, Any] = {
        "written": sorted(written),
        "read": read,
        "run": href(run.root, out),
        "experiments": experiments(run, out, trials),
        "trackers": tracker_lines(run, out),
        "trials_shown": shown_trials(trials, out),
    }
    return Part(tables, facts)


def stage_order(run: Run, paths: Iterable[Path]) -> list[Path]:
    """``paths`` (one per stage folder) in the run's stage order (``plan.json``), the rest
    after them by name."""
    plan = run.json(PLAN)
    stages = [s.get("stage") for s in plan.get("stages", [])] if isinstance(plan, dict) else []
    rank = {s: i for i, s in enumerate(stages)}
    return sorted(paths, key=lambda q: (rank.get(q.parent.name, len(rank)), q.parent.name))


def _results(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as e:
        raise files.damaged(path, "Parquet file", e) from None


def trial_table(run: Run) -> pd.DataFrame:
    """One row per Tune trial of every stage with ``results.parquet``: its stage and
    experiment, trial id, searched config, the last reported metrics, and where its folder is
    (``folder``, as the run stores it; ``folder_href``: that path, absolute or a URI)."""
    rows = []
    for path in stage_order(run, run.root.glob(f"*/{RESULTS}")):
        try:
            df = _results(path)
        except StoredFileError:
            continue  # a damaged log table: its stage's trials are left out of the table
        if not {"experiment", "trial"} <= set(df.columns):
            continue
        for (experiment, trial), g in df.groupby(["experiment", "trial"], sort=False):
            last = g.iloc[-1]
            base = trial_logs.experiment_path(run.root, run.config, str(experiment))
            row = {"stage": path.parent.name, "experiment": experiment}
            row["trial"] = str(last.get("trial_id", trial))
            row |= {c[len("config/") :]: last[c] for c in g.columns if c.startswith("config/")}
            row |= {m: last[m] for m in METRICS if m in g.columns}
            if "epoch" not in row and "training_iteration" in g.columns:
                row["epoch"] = last["training_iteration"]
            row["folder"] = f"{Path(base).name}/{trial}"
            row["folder_href"] = f"{base.rstrip('/')}/{trial}"
            rows.append(row)
    df = pd.DataFrame(rows)
    if len(df) and (df["experiment"] == df["stage"]).all():
        df = df.drop(columns="experiment")
    return df


def _link_or_name(text: str, target: str, out: Path) -> str:
    """A link to ``target`` when it is on this machine, else its name in code."""
    if "://" not in target and Path(target).exists():
        return link(text, href(Path(target), out))
    return f"`{text}`"


def shown_trials(trials: pd.DataFrame, out: Path) -> dict[str, pd.DataFrame]:
    """The per-trial table as the page shows it, one per Tune experiment (its own config keys
    only): the trial id links to the trial's folder."""
    if not len(trials):
        return {}
    linked = trials.assign(
        trial=[_link_or_name(t, h, out) for t, h in zip(trials["trial"], trials["folder_href"])]
    )
    experiment = linked["folder"].str.split("/").str[0]
    drop = ["stage", "experiment", "folder", "folder_href"]
    out = {}
    for name, g in linked.groupby(experiment, sort=False):
        g = g.drop(columns=[c for c in drop if c in g]).dropna(axis=1, how="all")
        keys = [c for c in g.columns if c not in ("trial", *METRICS)]
        counts = [c for c in (*keys, "phase", "epoch") if c in g.columns]  # 3, not 3.0000
        g = g.assign(**{k: [_value(v) for v in g[k]] for k in counts})
        out[name] = g[["trial", *keys, *(m for m in METRICS if m in g.columns)]]
    return out


def _value(v: Any) -> Any:
    """A config value as the config writes it: ``50``, not ``50.0000``; ``5e-05``."""
    if isinstance(v, float) and v == v:
        return f"{v:g}"
    return "" if v is None or v != v else v


def experiments(run: Run, out: Path, trials: pd.DataFrame) -> list[str]:
    """One line per Tune experiment: its folder (linked where local) and its trial count."""
    names = trials["folder"].str.split("/").str[0] if len(trials) else pd.Series([], dtype=str)
    lines = []
    for experiment in dict.fromkeys(names):
        base = trial_logs.experiment_path(run.root, run.config, experiment)
        n = int((names == experiment).sum())
        lines.append(f"{_link_or_name(experiment, base, out)}: {n} trial folders")
    return lines


def tracker_lines(run: Run, out: Path) -> list[str]:
    """Where each tracker the run used wrote, and the command that opens it."""
    from fer_ray import tracking

    chosen = tracking.normalise(run.config.get("tracking", list(tracking.DEFAULT)))
    stored = (run.config.get("output") or {}).get("storage_path")
    storage = RunPaths(run.root, stored, run.config.get("name", run.root.name)).storage()
    lines = []
    local = "://" not in storage
    if "tensorboard" in chosen and (not local or any(Path(storage).glob(TB_EVENTS))):
        where = href(Path(storage), out) if local else storage
        shown = _link_or_name(Path(storage).name, storage, out)
        lines.append(
            f"TensorBoard: event files in each trial's folder under {shown}; open them with "
            f"`tensorboard --logdir {where}`"
        )
    if "mlflow" in chosen:
        lines.append(_mlflow_line(run, out, chosen["mlflow"]))
    if "wandb" in chosen:
        folder = run.root / WANDB_DIR
        lines.append(
            f"W&B: {_link_or_name(WANDB_DIR, str(folder), out)} (offline runs; upload them with"
            f" `wandb sync {href(folder, out)}/offline-run-*`)"
        )
    return lines


def _mlflow_line(run: Run, out: Path, options: dict[str, Any]) -> str:
    uri = options.get("tracking_uri")
    if uri:
        return (
            f"MLflow: one run per trial in `{uri}`, experiments `{run.config.get('name')}/<stage>`"
        )
    db = run.root / MLFLOW_DB
    return (
        f"MLflow: one run per trial in {_link_or_name(MLFLOW_DB, str(db), out)}; open it with "
        f"`mlflow ui --backend-store-uri sqlite:///{href(db, out)}`"
    )


def plots(part: Part, out: Path) -> None:
    """No plots."""


def glance(part: Part) -> list[Glance]:
    n = sum(len(t) for t in part.facts["trials_shown"].values())
    what = f"the {n} Tune trials' folders" if n else "the run's folder"
    tracker = ", the tracker" if part.facts["trackers"] else ""
    return [("Files", f"every table as CSV, {what}{tracker}: [files and links](#files)")]


def trial_blocks(shown: dict[str, pd.DataFrame], lines: list[str]) -> list[Block]:
    """Each Tune experiment's trials: a table, folded away when long."""
    out = [p("Tune's trial folders (each trial's config, every result it reported, its logs"
             " and checkpoints):"), ul(lines)]  # fmt: skip
    for experiment, df in shown.items():
        summary = f"The {len(df)} trials of `{experiment}`: the last result each reported"
        if len(df) > FOLD_ROWS:
            out.append(fold(summary, [table(df)]))
        else:
            out += [p(summary + "; the id opens the trial's folder."), table(df)]
    return out


def blocks(part: Part) -> list[Block]:
    f = part.facts
    out = [
        h2("Files, trials and tracker"),
        p(
            "Every link opens a file beside this report or in the run folder "
            f"{link(f['run'], f['run'])}; the commands run in this report's folder."
        ),
        p(
            "Tables of this report (CSV, in this folder): "
            + " · ".join(link(w, w) for w in f["written"])
        ),  # fmt: skip
    ]
    if f["read"]:
        out.append(p("Stored files the report read, per folder of the run:"))
        out.append(ul([f"`{d}/`: " + " · ".join(links) for d, links in f["read"].items()]))
    if f["trackers"]:
        out += [p("The experiment tracker (`tracking` in the config):"), ul(f["trackers"])]
    if f["trials_shown"]:
        out += trial_blocks(f["trials_shown"], f["experiments"])
    return out
