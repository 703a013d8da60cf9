"""The pipeline runner: prepare → grid → ensemble → analyse → report (plus seed 000's
descriptor baseline when ``descriptors.enabled``).

A stage whose results exist for the same inputs is skipped; a stage whose inputs changed
reruns with everything after it; an interrupted stage continues from its Tune checkpoints
with ``resume`` (``fresh`` deletes the run and starts over). Preflight checks run in the
driver before Ray starts, so bad input fails in seconds with one line.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_ray import config as config_mod
from fer_ray import files, layout
from fer_ray.config import Config
from fer_ray.errors import StageError
from fer_ray.layout import RunPaths
from fer_ray.registry import Registry, resolve


@dataclass(frozen=True)
class StageSpec:
    """One stage: the config keys it reads, the stage whose results it reads (``after``; None
    for a stage that reads no other stage's results), whether the config turns it on, and
    its entry point ``run(ctx: StageContext)`` as a lazy "module:function" string."""

    keys: tuple[str, ...]
    after: str | None
    run: str
    enabled: Callable[[Config], bool] = lambda cfg: True


# Registration order is run order. Adding a stage is one module with run(ctx) plus one line;
# its fingerprint covers its keys and its upstream stage's fingerprint, so a change reruns
# exactly the stages that read it.
STAGES: Registry[StageSpec] = Registry("stage", "pipeline stage")
STAGES.register("prepare", StageSpec(("data", "faces"), None, "fer_ray.stages.prepare:stage"))
STAGES.register(
    "grid",
    StageSpec(
        ("seed", "model", "train", "grid", "ensemble.test_fraction"),
        "prepare",
        "fer_ray.stages.grid:stage",
    ),
)
STAGES.register("ensemble", StageSpec(("ensemble",), "grid", "fer_ray.stages.ensemble:stage"))
STAGES.register(
    "analyse",
    StageSpec(
        ("analyse",), "ensemble", "fer_ray.stages.analyse:stage", lambda c: c.analyse.enabled
    ),
)
# Seed 000's descriptor baseline reads no other stage's results: a new grid does not retrain it.
STAGES.register(
    "descriptors",
    StageSpec(
        ("seed", "data", "descriptors", "analyse.absolute_angles"),
        None,
        "fer_ray.stages.descriptors:stage",
        lambda c: c.descriptors.enabled,
    ),
)


def _pick(d: dict[str, Any], dotted: str) -> Any:
    for k in dotted.split("."):
        d = d[k]
    return d


def input_identity(cfg: Config) -> dict[str, Any]:
    """What the config cannot see but the results depend on: the data set's files
    (names, sizes, mtimes) and the descriptor sheet's bytes. Changing either reruns the
    stages that read them instead of skipping them as done."""
    from fer_ray.data.datasets import create_source, read_manifest

    source = create_source(cfg.data)
    manifest, _ = read_manifest(cfg.data, source)  # a bad layout fails here, before any stage
    out: dict[str, Any] = {"data": source.identity(), "manifest": manifest}
    if cfg.descriptors.enabled:
        from fer_ray.data.descriptors import sheet_path

        sheet = sheet_path(cfg.descriptors.path, cfg.data.root)
        out["sheet"] = hashlib.sha256(sheet.read_bytes()).hexdigest() if sheet.is_file() else None
    return out


def stage_inputs(cfg: Config, inputs: dict[str, Any] | None = None) -> dict[str, dict]:
    """Per stage, the config values (and file identities) it reads itself; a stage that reads
    no other stage's results also covers the data files and the descriptor sheet."""
    d, out = cfg.to_dict(), {}
    inputs = {k: v for k, v in (inputs or {}).items() if k != "manifest"}
    for stage in STAGES:
        spec = STAGES.get(stage)
        picked = {k: _pick(d, k) for k in spec.keys}
        if stage == "prepare":
            picked["files"] = inputs.get("data")
        elif spec.after is None:
            picked["files"] = [inputs.get("data"), inputs.get("sheet")]
        out[stage] = json.loads(json.dumps(picked, sort_keys=True, default=str))
    return out


def stage_fingerprints(cfg: Config, inputs: dict[str, Any] | None = None) -> dict[str, str]:
    """Chained hashes: a stage's fingerprint covers its keys and all upstream stages'.

    ``inputs`` (from ``input_identity``) adds the data files to prepare (and so to every
    stage after it) and the sheet to the descriptors stage.
    """
    picked, out = stage_inputs(cfg, inputs), {}
    for stage in STAGES:
        after = STAGES.get(stage).after
        blob = json.dumps(picked[stage], sort_keys=True, default=str)
        out[stage] = hashlib.sha256((out.get(after, "") + blob).encode()).hexdigest()[:16]
    return out


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old → new`` for every config value that differs between two stage inputs."""
    a, b = _flat(old), _flat(new)
    return [
        f"{k}: {a.get(k, '(unset)')!r} → {b.get(k, '(unset)')!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


def plan(
    cfg: Config, root: Path, resume: bool, inputs: dict[str, Any] | None = None
) -> dict[str, str]:
    """Per stage: 'skip' (done, same inputs), 'resume', or 'run' (fresh)."""
    fps = stage_fingerprints(cfg, inputs)
    actions: dict[str, str] = {}
    for stage in STAGES:
        spec = STAGES.get(stage)
        upstream = actions.get(spec.after) if spec.after else None
        rerun_upstream = upstream in ("run", "resume")
        d = root / stage
        done = files.read_json(d / layout.DONE) if (d / layout.DONE).is_file() else None
        started = files.read_json(d / layout.STARTED) if (d / layout.STARTED).is_file() else None
        if not spec.enabled(cfg) or upstream == "off":
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
            if resume and started and not done and started.get("keys"):
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
    """Fail now, in the driver, on what would otherwise fail inside a Ray task or hours in:
    the detector's library, the splits (enough groups for the folds), the model (backbone,
    freeze policy, weights file) and the descriptor sheet (``input_identity`` checked the
    data's layout)."""
    if actions["prepare"] != "skip":  # the data layout was checked by input_identity
        from fer_ray.faces import detectors

        detectors.get(cfg.faces.detector).factory()
    if any(actions[s] in ("run", "resume") for s in ("grid", "ensemble")):
        from fer_ray.data.splits import holdout_and_folds
        from fer_ray.models.factory import check_model

        m = inputs["manifest"]
        holdout_and_folds(
            m["label"].to_numpy(),
            m["group"].astype(str).to_numpy(),
            folds=cfg.grid.folds,
            seed=cfg.seed,
            test_fraction=cfg.ensemble.test_fraction,
            test_split=cfg.data.test_split,
            own_split=m["split"].fillna("").to_numpy(),
        )
        check_model(cfg.model)
    if actions["descriptors"] in ("run", "resume"):
        from fer_ray.data.descriptors import read_sheet, sheet_path

        read_sheet(sheet_path(cfg.descriptors.path, cfg.data.root))


def disk_usage(paths: RunPaths) -> dict[str, int]:
    """Bytes written for this run: its directory (stage results, Tune storage when local)
    and, when output.storage_path is a separate local folder, this run's experiments there."""

    def size(p: Path) -> int:
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.exists() else 0

    out = {"run directory": size(paths.root)}
    if paths.storage_path and "://" not in paths.storage():
        out["tune storage"] = sum(size(Path(paths.experiment(s))) for s in STAGES)
    return out


def _clear_stage(cfg: Config, root: Path, stage: str) -> None:
    shutil.rmtree(root / stage, ignore_errors=True)
    exp = RunPaths.of(cfg).experiment(stage)
    if "://" not in exp:
        shutil.rmtree(exp, ignore_errors=True)


def run_pipeline(cfg: Config, resume: bool = False, fresh: bool = False) -> Path:
    """Run every stage that needs running; returns the report directory."""
    from fer_ray.report.build import build_report
    from fer_ray.runinfo import provenance
    from fer_ray.stages import cluster
    from fer_ray.stages.context import StageContext

    paths = RunPaths.of(cfg)
    if fresh and paths.root.exists():
        shutil.rmtree(paths.root)
        exp = paths.storage()
        if cfg.output.storage_path and "://" not in exp:
            for s in STAGES:
                shutil.rmtree(paths.experiment(s), ignore_errors=True)
    if resume and not (paths.root / layout.CONFIG).is_file():
        raise StageError(
            f"--resume: there is no run to resume at {paths.root}; run without --resume to start it"
        )
    inputs = input_identity(cfg)
    actions = plan(cfg, paths.root, resume, inputs)
    preflight(cfg, actions, inputs)
    paths.root.mkdir(parents=True, exist_ok=True)
    config_mod.save(cfg, paths.root / layout.CONFIG)
    run_info = {**provenance(), "started": time.strftime("%F %T")}
    files.write_json(paths.root / layout.RUN_INFO, run_info)
    (paths.root / layout.DEPARTURES).unlink(missing_ok=True)
    if cfg.departures:
        files.write_json(paths.root / layout.DEPARTURES, list(cfg.departures))
    print(f"run {paths.root} · " + " · ".join(f"{s}: {a}" for s, a in actions.items()), flush=True)
    fps = stage_fingerprints(cfg, inputs)
    t_start = time.time()
    needs_ray = any(a in ("run", "resume") for a in actions.values())
    started_ray = cluster.connect(cfg) if needs_ray else False
    try:
        if needs_ray:
            cluster.preflight(cfg, paths.storage())
        ctx = StageContext(cfg, paths)
        for stage in STAGES:
            if actions[stage] not in ("run", "resume"):
                continue
            if actions[stage] == "run":
                _clear_stage(cfg, paths.root, stage)
            files.write_json(
                paths.stage(stage) / layout.STARTED,
                {"fingerprint": fps[stage], "keys": stage_inputs(cfg, inputs)[stage]},
            )
            t0 = time.time()
            resolve(STAGES.get(stage).run)(ctx.for_stage(actions[stage] == "resume"))
            files.write_json(
                paths.stage(stage) / layout.DONE,
                {"fingerprint": fps[stage], "seconds": round(time.time() - t0, 2)},
            )
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
    report_dir = build_report(paths.root, Path(cfg.output.reports_dir) / cfg.name)
    print(f"report {report_dir / 'report.md'} · total {time.time() - t_start:.0f}s", flush=True)
    return report_dir
