"""A searcher's run (search.algorithm other than grid): which searcher and scheduler, the trial
history, best proposal with its interval, parameter importances, and the grid beside it when
both ran on the same data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_ray.analysis.search import METRIC, params
from fer_ray.layout import Grid
from fer_ray.report import search_figures
from fer_ray.report import uncertainty as u
from fer_ray.report.figures import legend_outside, save, subplots
from fer_ray.report.page import Block, h2, img, p, table
from fer_ray.report.run import Run
from fer_ray.report.section import Part

name = "search"
HISTORY = "search_history.png"
PARALLEL = "search_parallel.png"
HEAT = "search_heatmap.png"
PARETO = "search_pareto.png"


def load(run: Run) -> Part | None:
    trials = run.csv(Grid.DIR, Grid.SEARCH_TRIALS)
    summary = run.json(Grid.DIR, Grid.SEARCH_SUMMARY)
    if trials is None or summary is None:
        return None
    tables = {
        "search_trials": trials,
        "search_history": run.need_csv(Grid.DIR, Grid.SEARCH_HISTORY),
    }
    imp = run.csv(Grid.DIR, Grid.SEARCH_IMPORTANCE)
    if imp is not None and len(imp):
        tables["search_importance"] = imp
    chosen = run.json(Grid.DIR, Grid.CHOSEN) or {}
    return Part(
        tables=tables,
        facts={
            "summary": summary,
            "chosen": chosen,
            "noun": u.group_noun(run),
            "method": u.run_method(run),
        },  # fmt: skip
    )


def plots(part: Part, out: Path) -> None:
    h = part.tables["search_history"]
    fig, ax = subplots(figsize=(6, 3.4))
    done = h[h["complete"]]
    ax.plot(done["order"], 100 * done["fold_mean_val_acc"], "o", label="proposal (all folds)")
    stopped = h[~h["complete"]]
    if len(stopped):
        ax.plot(stopped["order"], 100 * stopped["fold_mean_val_acc"], "x", color="grey",
                label="stopped early (partial folds)")  # fmt: skip
    ax.step(h["order"], 100 * h["best_so_far"], where="post", color="k", label="best so far")
    grid = part.facts["chosen"].get("other", {}).get("grid") if part.facts["chosen"] else None
    if part.facts["chosen"].get("algorithm") == "grid":
        grid = part.facts["chosen"]
    if grid:
        ax.axhline(100 * grid["mean_val_acc"], color="tab:red", ls="--", label="grid's best cell")
    ax.set_xlabel("proposal")
    ax.set_ylabel("fold-mean val accuracy (%)")
    legend_outside(ax)
    save(fig, out / HISTORY)
    trials = part.tables["search_trials"]
    done = trials[trials["complete"]] if "complete" in trials else trials
    keys = params(trials)
    if len(done) >= 2:
        search_figures.parallel(done, keys, METRIC, out / PARALLEL)
        a, b = search_figures.top_two(part.tables.get("search_importance"), keys)
        search_figures.heat(done, a, b, METRIC, out / HEAT)
    goals = part.facts["summary"].get("objectives")
    if goals and "pareto" in trials:
        pareto_plot(trials, goals, part.facts["summary"]["best"], out / PARETO)


def pareto_plot(trials: Any, goals: dict[str, str], best: dict[str, Any], path: Path) -> None:
    """The complete proposals on the primary objective against the second, the front joined,
    the one the ensemble trains starred."""
    (y, _), (x, x_mode) = list(goals.items())[:2]
    done = trials[trials["complete"]]
    front = done[done["pareto"].astype(bool)].sort_values(x)
    fig, ax = subplots(figsize=(6, 3.8))
    ax.plot(done[x], 100 * done[y], "o", color="0.6", label="proposal")
    ax.plot(front[x], 100 * front[y], "o-", color="tab:blue", label="Pareto front")
    hit = done[done["trial"] == best.get("trial")]
    ax.plot(hit[x], 100 * hit[y], "*", ms=16, color="tab:red", label="the ensemble trains")
    ax.set_xlabel(f"{x} ({'higher' if x_mode == 'max' else 'lower'} is better)")
    ax.set_ylabel("fold-mean val accuracy (%)")
    legend_outside(ax)
    save(fig, path)


IMPORTANCE = {
    "fanova": "fANOVA over the complete proposals, Optuna's evaluator",
    "variance": "share of the objective's variance between each parameter's value bins, over "
    "the complete proposals",
}


def _settings(name: str, options: dict | None) -> str:
    opts = ", ".join(f"{k}={v}" for k, v in (options or {}).items())
    return f"{name} ({opts})" if opts else name


def space_text(space: dict[str, Any]) -> str:
    """``lr loguniform [0.0005, 0.005], hidden randint [100, 300], ...`` (a run stored before
    ``search.space`` lists lr's log-uniform range and hidden's range or choices)."""
    return ", ".join(
        f"{k} {v}" if isinstance(v, str) else f"{k} {'log-uniform ' * (k == 'lr')}{v}"
        for k, v in space.items()
    )


def _intro(s: dict[str, Any]) -> str:
    """Which searcher and scheduler, over what, and whether it is reproducible."""
    algo, sched = s.get("algorithm", "optuna"), s["scheduler"]
    stops = (
        "no scheduler (every proposal runs every fold)"
        if sched in ("none", "fifo")
        else f"scheduler {_settings(sched, s.get('scheduler_options'))} on the fold count, "
        "which may stop a poor proposal after its first folds"
    )
    return (
        f"Ray Tune searcher {_settings(algo, s.get('options'))}, {stops}. "
        f"{s['trials']} proposals over {space_text(s['space'])}, each scored as the grid scores"
        " a cell (mean over the grouped folds of the last epoch's validation accuracy, the"
        " folds run inside one trial). "
        + (
            "One proposal at a time, so the search is reproducible."
            if s["reproducible"]
            else "Several proposals ran at once, so a model-based searcher's choices depend "
            "on timing: rerun with resources.max_concurrent_trials=1 for a reproducible "
            "search."
        )
        + (
            f" The Optuna study is stored in grid/{s['study']} (optuna-dashboard opens it)."
            if s.get("study")
            else ""
        )
    )


def _best(best: dict[str, Any], noun: str, method: str | None) -> str:
    more = "".join(
        f", {k} {v:.3g}" if isinstance(v, float) else f", {k} {v}"
        for k, v in best.items()
        if "." in k
    )
    return (
        f"Best proposal: lr {best['lr']:.3g}, hidden {best['hidden']}{more}: fold mean "
        f"{100 * best['mean_val_acc']:.2f} ± {100 * best['std_val_acc']:.2f} %; pooled "
        f"out-of-fold {u.accuracy(best['pooled'], best['low'], best['high'])} (95 % "
        f"{u.method_short(method, noun)})."
    )


def _runner_up(pair: dict[str, Any] | None, noun: str) -> str:
    """The best proposal against the next, paired on the same out-of-fold images."""
    if not pair:
        return ""
    d, mc, r = pair["difference"], pair["mcnemar"], pair["runner_up"]
    return (
        f" Against the runner-up (lr {r['lr']:.3g}, hidden {r['hidden']}), paired on the same "
        f"{u.sample(d['n_items'], d['n_groups'], noun, 'out-of-fold images')}: "
        f"{u.difference(d['estimate'], d['low'], d['high'])}, {u.verdict(d['low'], d['high'])}"
        f"; they disagree on {mc['n_discordant']} images. The best proposal's pooled interval is"
        " computed after picking it on these images, so it is optimistic."
    )


def _trials(part: Part) -> list[Block]:
    """The Pareto front (several objectives), the figures and every proposal's row."""
    out: list[Block] = []
    trials, goals = part.tables["search_trials"], part.facts["summary"].get("objectives")
    if goals and "pareto" in trials:
        names = ", ".join(f"{k} ({m})" for k, m in goals.items())
        out.append(p(
            f"Several objectives: {names}. {int(trials['pareto'].sum())} of "
            f"{int(trials['complete'].sum())} complete proposals are on the Pareto front (no "
            "other is as good on every objective and better on one); the ensemble trains the "
            "front's most accurate."
        ))  # fmt: skip
        out.append(img(PARETO, "The Pareto front of the objectives"))
    if int(trials.get("complete", trials[METRIC].notna()).sum()) >= 2:
        out.append(img(PARALLEL, "Every complete proposal across the searched keys"))
        out.append(img(HEAT, "The objective over the two most important keys"))
    shown = ["order", *params(trials), METRIC, "trainable_params", "ms_per_image", "pareto",
             "folds_done", "complete", "pooled", "low", "high"]  # fmt: skip
    out.append(p("Every proposal (click a column heading to sort):"))
    out.append(table(trials[[c for c in shown if c in trials.columns]]))
    return out


def blocks(part: Part) -> list[Block]:
    s, chosen = part.facts["summary"], part.facts["chosen"]
    best, algo = s["best"], s.get("algorithm", "optuna")
    out = [
        h2(f"Search: {algo}"),
        p(_intro(s)),
        p(
            _best(best, part.facts["noun"], part.facts.get("method"))
            + _runner_up(s.get("runner_up"), part.facts["noun"])
        ),
        img(HISTORY, "Objective per proposal and the best so far"),
        *_trials(part),
    ]
    if "search_importance" in part.tables:
        imp = part.tables["search_importance"]
        method = imp["method"].iloc[0] if "method" in imp else "fanova"
        out.append(p(f"Parameter importance ({IMPORTANCE.get(method, method)}):"))
        out.append(table(imp[["parameter", "importance"]]))
    grid = chosen.get("other", {}).get("grid") if chosen.get("algorithm") != "grid" else None
    if grid:
        diff = 100 * (best["mean_val_acc"] - grid["mean_val_acc"])
        out.append(
            p(
                f"The grid on the same data and budget: its best cell lr {grid['lr']:g}, hidden "
                f"{grid['hidden']} at {100 * grid['mean_val_acc']:.2f} % (pooled "
                f"{u.accuracy(grid['pooled'], grid['low'], grid['high'])}); {algo}'s best is "
                f"{diff:+.2f} points from it. Both are selected on the same folds, so the "
                "difference is optimistic for whichever searched more configurations."
            )
        )
    who = "the grid's" if chosen.get("algorithm") == "grid" else f"{algo}'s"
    out.append(p(f"The ensemble trains with {who} choice."))
    return out
