"""The pipeline runner: every registered stage (``fer_ray.protocol``), in the order of what
they read, then the report. The runner names no stage: what runs, in which order, what each
checks first and what its fingerprint covers all come from the stages' declarations.

A stage whose results exist for the same inputs is skipped; a stage whose inputs changed
reruns with everything after it; an interrupted stage continues from its Tune checkpoints
with ``resume`` (``fresh`` deletes the run and starts over). Preflight checks run in the
driver before Ray starts, so bad input fails in seconds with one line.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from fer_ray import config as config_mod
from fer_ray import files, layout, protocol, runlock, signals, testhooks, timing
from fer_ray.config import Config
from fer_ray.config_diff import flatten
from fer_ray.errors import StageError
from fer_ray.layout import RunPaths
from fer_ray.registry import resolve

STAGES = protocol.STAGES  # every stage, declared by its recipe (fer_ray.recipes.*)


def input_identity(cfg: Config) -> dict[str, Any]:
    """What the config cannot see but the results depend on: the data set's files (names,
    sizes, mtimes) and each running stage's ``identity`` hook (e.g. a sheet's bytes). Changing
    either reruns the stages that read them instead of skipping them as done."""
    from fer_ray.data.datasets import create_source, read_manifest

    source = create_source(cfg.data)
    manifest, _ = read_manifest(cfg.data, source)  # a bad layout fails here, before any stage
    out: dict[str, Any] = {"data": source.identity(), "manifest": manifest}
    for name in protocol.stages():
        spec = STAGES.get(name)
        if spec.identity and spec.enabled(cfg):
            out[f"identity:{name}"] = protocol.hook(spec, "identity")(cfg)
    return out


def stage_inputs(cfg: Config, inputs: dict[str, Any] | None = None) -> dict[str, dict]:
    """Per stage, the config values and file identities its fingerprint covers itself."""
    return protocol.stage_inputs(cfg, inputs)


def stage_fingerprints(cfg: Config, inputs: dict[str, Any] | None = None) -> dict[str, str]:
    """Per stage, a hash of its inputs and of every upstream stage's fingerprint."""
    return protocol.fingerprints(cfg, inputs)


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old → new`` for every config value that differs between two stage inputs."""
    a, b = flatten(old), flatten(new)
    unset = object()  # a key new to the config (None by default) differs from an absent one
    return [
        f"{k}: {a.get(k, '(unset)')!r} → {b.get(k, '(unset)')!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k, unset) != b.get(k, unset)
    ]


def read_marker(path: Path) -> dict[str, Any] | None:
    """A stage marker, or None when absent or damaged (torn, not JSON, no fingerprint): a
    damaged ``done.json`` means "not done", so the stage reruns instead of failing forever."""
    try:
        marker = files.read_json(path)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and "fingerprint" in marker else None


def plan(
    cfg: Config,
    root: Path,
    resume: bool,
    inputs: dict[str, Any] | None = None,
    fresh: bool = False,
    quiet: bool = False,
) -> dict[str, str]:
    """Per stage: 'skip' (done, same inputs), 'resume', or 'run' (fresh). With ``fresh`` the
    stored markers are ignored: the run will be deleted once every check has passed.
    ``quiet``: the same plan again, without its notes."""
    fps = stage_fingerprints(cfg, inputs)
    names = protocol.stages()
    specs = {n: STAGES.get(n) for n in names}
    on, ups = protocol.active(cfg, specs), protocol.parents(specs)
    actions: dict[str, str] = {}
    for stage in names:
        rerun_upstream = any(actions[p] in ("run", "resume") for p in ups[stage])
        d = root / stage
        done = None if fresh else read_marker(d / layout.DONE)
        started = None if fresh else read_marker(d / layout.STARTED)
        if not on[stage]:
            actions[stage] = "off"
        elif not rerun_upstream and done and done["fingerprint"] == fps[stage]:
            actions[stage] = "skip"
        elif not rerun_upstream and started and started["fingerprint"] == fps[stage]:
            if not resume:
                raise StageError(
                    f"stage '{stage}' of run {root} was interrupted. Rerun with --resume to finish"
                    " it from its checkpoints, or --fresh to start the run over."
                )
            actions[stage] = "resume"
        else:
            if resume and started and not done and started.get("keys") and not quiet:
                what = changed_keys(started["keys"], stage_inputs(cfg, inputs)[stage])
                why = "; ".join(what) if what else "a stage before it reruns"
                print(
                    f"[plan] {stage}: interrupted with other inputs ({why}); it reruns from the"
                    " start (--fresh starts the whole run over)",
                    flush=True,
                )
            actions[stage] = "run"
    return actions


def preflight(cfg: Config, actions: dict[str, str], inputs: dict[str, Any]) -> None:
    """Each stage that will run checks its inputs now, in the driver, before Ray starts:
    bad input fails in seconds with one line. A check shared by stages runs once."""
    seen: set[str] = set()
    for stage, action in actions.items():
        spec = STAGES.get(stage)
        if action in ("run", "resume") and spec.preflight and spec.preflight not in seen:
            seen.add(spec.preflight)
            protocol.hook(spec, "preflight")(cfg, inputs)


def disk_usage(paths: RunPaths) -> dict[str, int]:
    """Bytes written for this run: its directory (stage results, Tune storage when local)
    and, when output.storage_path is a separate local folder, this run's experiments there."""

    def size(p: Path) -> int:
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.exists() else 0

    out = {"run directory": size(paths.root)}
    if paths.storage_path and "://" not in paths.storage():
        out["tune storage"] = sum(size(Path(paths.experiment(s))) for s in protocol.stages())
    return out


def _clear_stage(cfg: Config, root: Path, stage: str) -> None:
    shutil.rmtree(root / stage, ignore_errors=True)
    for name in (stage, *STAGES.get(stage).experiments):
        exp = RunPaths.of(cfg).experiment(name)
        if "://" not in exp:
            shutil.rmtree(exp, ignore_errors=True)


def check_resumable(paths: RunPaths) -> None:
    """``--resume`` needs a run to continue."""
    if not (paths.root / layout.CONFIG).is_file():
        raise StageError(
            f"--resume: there is no run to resume at {paths.root}; run without --resume to start"
            " it (or use --resume auto, which starts it when there is none)"
        )


def delete_run(cfg: Config, paths: RunPaths) -> None:
    """``--fresh``: delete the run folder, but only one that fer_ray made (its marker), and the
    run's Tune experiments on a separate local storage folder."""
    if paths.root.exists():
        if not paths.root.is_dir() or not layout.made_by_fer_ray(paths.root):
            raise StageError(
                f"--fresh: {paths.root} exists but is not a fer_ray run folder (no"
                f" {layout.MARKER}); it is left as it is: move it away or choose another name"
            )
        shutil.rmtree(paths.root)
    if cfg.output.storage_path and "://" not in paths.storage():
        for s in protocol.stages():
            for name in (s, *STAGES.get(s).experiments):
                shutil.rmtree(paths.experiment(name), ignore_errors=True)


def start_run(cfg: Config, paths: RunPaths, actions: dict[str, str]) -> dict[str, Any]:
    """The run folder with fer_ray's marker, the config, provenance, departures and this
    invocation's plan (which the live report reads); returns the run record."""
    from fer_ray.runinfo import provenance

    files.mkdir(paths.root)
    files.write_text(paths.root / layout.MARKER, "a fer_ray run folder: --fresh may delete it\n")
    config_mod.save(cfg, paths.root / layout.CONFIG)
    run_info = {**provenance(), "started": time.strftime("%F %T")}
    files.write_json(paths.root / layout.RUN_INFO, run_info)
    (paths.root / layout.DEPARTURES).unlink(missing_ok=True)
    if cfg.departures:
        files.write_json(paths.root / layout.DEPARTURES, list(cfg.departures))
    print(f"run {paths.root} · " + " · ".join(f"{s}: {a}" for s, a in actions.items()), flush=True)
    files.write_json(
        paths.root / layout.PLAN,
        {"stages": [
            {"stage": s, "action": a, "experiments": [s, *STAGES.get(s).experiments]}
            for s, a in actions.items()
        ]},
    )  # fmt: skip
    return run_info


def run_stage(ctx: Any, stage: str, action: str, fingerprint: str, keys: dict) -> None:
    """One stage: marked started, run, marked done (last, so a torn run is never "done"). A
    stage after a search runs with the searched keys it chose (``protocol.choices``)."""
    paths = ctx.paths
    files.write_json(
        paths.stage(stage) / layout.STARTED, {"fingerprint": fingerprint, "keys": keys}
    )
    t0 = time.time()
    testhooks.reached(f"stage:{stage}")
    choice = protocol.choices({n: STAGES.get(n) for n in protocol.stages()}).get(stage)
    resolve(STAGES.get(stage).run)(ctx.for_stage(action == "resume", choice))
    seconds = round(time.time() - t0, 2)
    files.write_json(
        paths.stage(stage) / layout.DONE, {"fingerprint": fingerprint, "seconds": seconds}
    )
    timing.measured(paths.root, stage, seconds)  # beside the estimate (fer_ray.timing)


def run_pipeline(cfg: Config, resume: bool = False, fresh: bool = False) -> Path:
    """Run every stage that needs running; returns the report directory."""
    paths = RunPaths.of(cfg)  # both folders are checked to stay inside their parents
    layout.report_dir(cfg)
    if resume:
        check_resumable(paths)
    inputs = input_identity(cfg)
    # the plan and the checks write nothing; the lock is taken once they passed (a run stopped
    # by its inputs leaves no trace) and before anything is written, and the plan is made
    # again under it: another driver may have moved the run on meanwhile
    actions = plan(cfg, paths.root, resume, inputs, fresh=fresh)
    preflight(cfg, actions, inputs)
    with runlock.held(paths.root.parent, cfg.name):  # one driver per run folder
        again = plan(cfg, paths.root, resume, inputs, fresh=fresh, quiet=True)
        if again != actions:
            preflight(cfg, again, inputs)
        return _run_pipeline(cfg, paths, again, inputs, fresh)


def _run_pipeline(
    cfg: Config, paths: RunPaths, actions: dict[str, str], inputs: dict[str, Any], fresh: bool
) -> Path:
    from fer_ray.estimate import record_estimate
    from fer_ray.report.build import build_report
    from fer_ray.stages import cluster, live
    from fer_ray.stages.context import StageContext

    if fresh:  # only now: every input check has passed
        delete_run(cfg, paths)
    run_info = start_run(cfg, paths, actions)
    record_estimate(cfg, actions, inputs, paths.root)  # what the dry run would say, stored
    fps = stage_fingerprints(cfg, inputs)
    t_start = time.time()
    needs_ray = any(a in ("run", "resume") for a in actions.values())
    started_ray = cluster.connect(cfg) if needs_ray else False
    signals.install()  # again: Ray's start replaced the handler with its own, which aborts
    try:
        if needs_ray:
            cfg = cluster.preflight(cfg, paths.storage())  # defaults shrunk to the cluster
        # every stage that reruns loses its old results now, not when its turn comes: a
        # report written meanwhile must not show them beside the new ones
        for stage in actions:
            if actions[stage] == "run":
                _clear_stage(cfg, paths.root, stage)
        if needs_ray:
            live.write_report(cfg, force=True)  # partial: what is done, what is pending
            timing.measured(paths.root, timing.RAY_START, time.time() - t_start)
        ctx = StageContext(cfg, paths)
        keys = stage_inputs(cfg, inputs)
        running = [s for s in actions if actions[s] in ("run", "resume")]  # in run order
        for stage in running:
            run_stage(ctx, stage, actions[stage], fps[stage], keys[stage])
            # the report after the last stage is the final one, written below
            experiments = (stage, *STAGES.get(stage).experiments)
            live.after_stage(cfg, stage, experiments, report=stage != running[-1])
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    disk = disk_usage(paths)
    files.write_json(
        paths.root / layout.RUN_INFO,
        {**run_info, "finished": time.strftime("%F %T"), "disk_bytes": disk},
    )
    print(
        "disk: " + ", ".join(f"{k} {v / 2**20:.1f} MB" for k, v in disk.items()),
        flush=True,
    )
    t_report = time.time()
    report_dir = build_report(paths.root, layout.report_dir(cfg))
    if needs_ray:
        timing.measured(paths.root, timing.REPORT, time.time() - t_report)
        timing.measured(paths.root, "total", time.time() - t_start)
        print("time, estimated and measured (runs/<name>/timing.json):", flush=True)
        for line in timing.comparison_lines(timing.read(paths.root)[-1]):
            print(line, flush=True)
    print(f"report {report_dir / 'report.md'} · total {time.time() - t_start:.0f}s", flush=True)
    return report_dir
