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
    experiments: tuple[str, ...] = ()  # Tune experiments besides one named like the stage


# Registration order is run order. Adding a stage is one module with run(ctx) plus one line;
# its fingerprint covers its keys and its upstream stage's fingerprint, so a change reruns
# exactly the stages that read it.
STAGES: Registry[StageSpec] = Registry("stage", "pipeline stage")
STAGES.register("prepare", StageSpec(("data", "faces"), None, "fer_ray.stages.prepare:stage"))
STAGES.register(
    "grid",
    StageSpec(
        ("seed", "model", "train", "grid", "search", "ensemble.test_fraction"),
        "prepare",
        "fer_ray.stages.grid:stage",
        experiments=("search",),
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
# Seed 001: members' pooled features of every image, then rules read off trees fitted to them.
STAGES.register(
    "export",
    StageSpec(
        ("export.format",),
        "ensemble",
        "fer_ray.stages.export:stage",
        lambda c: c.export.enabled or c.rules.enabled,
    ),
)
STAGES.register(
    "rules",
    StageSpec(("rules",), "export", "fer_ray.stages.rules:stage", lambda c: c.rules.enabled),
)
# Seed 004: top-loss cleaning. Reads the grid's choice, not the ensemble, so its own members are
# trained here (same seeds, with and without the flagged items).
STAGES.register(
    "clean",
    StageSpec(
        ("clean", "ensemble.phase2_lr", "ensemble.phase2_epochs", "ensemble.val_fraction",
         "ensemble.selection"),
        "grid",
        "fer_ray.stages.clean:stage",
        lambda c: c.clean.enabled,
    ),
)  # fmt: skip
# Seed 002: train on data set A or B, test on both (new faces). Reads the grid's choice.
STAGES.register(
    "newfaces",
    StageSpec(
        ("newfaces", "ensemble.test_fraction", "ensemble.val_fraction", "ensemble.phase2_lr",
         "ensemble.phase2_epochs"),
        "grid",
        "fer_ray.stages.newfaces:stage",
        lambda c: c.newfaces.enabled,
    ),
)  # fmt: skip
# Seed 003: deconvolution panels and Action Unit ↔ map distances of the ensemble's members.
STAGES.register(
    "aumaps",
    StageSpec(("aumaps",), "ensemble", "fer_ray.stages.aumaps:stage", lambda c: c.aumaps.enabled),
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
) -> dict[str, str]:
    """Per stage: 'skip' (done, same inputs), 'resume', or 'run' (fresh). With ``fresh`` the
    stored markers are ignored: the run will be deleted once every check has passed."""
    fps = stage_fingerprints(cfg, inputs)
    actions: dict[str, str] = {}
    for stage in STAGES:
        spec = STAGES.get(stage)
        upstream = actions.get(spec.after) if spec.after else None
        rerun_upstream = upstream in ("run", "resume")
        d = root / stage
        done = None if fresh else read_marker(d / layout.DONE)
        started = None if fresh else read_marker(d / layout.STARTED)
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
        from fer_ray.models.backbones import check_input_size

        check_input_size(cfg.model.backbone, cfg.faces.size)
        check_model(cfg.model)
        if cfg.ensemble.backbones or cfg.grid.backbones:
            _check_backbone_comparison(cfg)
    if actions["descriptors"] in ("run", "resume"):
        from fer_ray.data.descriptors import read_sheet, sheet_path

        read_sheet(sheet_path(cfg.descriptors.path, cfg.data.root))


def _check_backbone_comparison(cfg: Config) -> None:
    """Members of several backbones share one data bundle, so it must hold pixels (trunk
    features and a stand-in's pretrained state are per backbone)."""
    import dataclasses

    from fer_ray.errors import ConfigError
    from fer_ray.models import weights as weight_sources
    from fer_ray.models.factory import check_model
    from fer_ray.train.features import cache_applicable

    src = weight_sources.source(cfg.model.weights)
    if cache_applicable(cfg.model, cfg.train)[0] or (src is not None and src.stand_in):
        raise ConfigError(
            "grid.backbones / ensemble.backbones compare backbones on pixels: set"
            " model.feature_cache=off (or a"
            " random train.recipe, or model.train_last_convs=-1) and model.weights to imagenet,"
            " none or a path"
        )
    from fer_ray.models.backbones import check_input_size

    for b in (cfg.ensemble.backbones or []) + (cfg.grid.backbones or []):
        check_input_size(b, cfg.faces.size)
        check_model(dataclasses.replace(cfg.model, backbone=b))


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
    for name in (stage, *STAGES.get(stage).experiments):
        exp = RunPaths.of(cfg).experiment(name)
        if "://" not in exp:
            shutil.rmtree(exp, ignore_errors=True)


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
        for s in STAGES:
            for name in (s, *STAGES.get(s).experiments):
                shutil.rmtree(paths.experiment(name), ignore_errors=True)


def run_pipeline(cfg: Config, resume: bool = False, fresh: bool = False) -> Path:
    """Run every stage that needs running; returns the report directory."""
    from fer_ray.report.build import build_report
    from fer_ray.runinfo import provenance
    from fer_ray.stages import cluster, live
    from fer_ray.stages.context import StageContext

    paths = RunPaths.of(cfg)  # both folders are checked to stay inside their parents
    layout.report_dir(cfg)
    if resume and not (paths.root / layout.CONFIG).is_file():
        raise StageError(
            f"--resume: there is no run to resume at {paths.root}; run without --resume to start it"
        )
    inputs = input_identity(cfg)
    actions = plan(cfg, paths.root, resume, inputs, fresh=fresh)
    preflight(cfg, actions, inputs)
    if fresh:  # only now: every input check has passed
        delete_run(cfg, paths)
    paths.root.mkdir(parents=True, exist_ok=True)
    (paths.root / layout.MARKER).touch()
    config_mod.save(cfg, paths.root / layout.CONFIG)
    run_info = {**provenance(), "started": time.strftime("%F %T")}
    files.write_json(paths.root / layout.RUN_INFO, run_info)
    (paths.root / layout.DEPARTURES).unlink(missing_ok=True)
    if cfg.departures:
        files.write_json(paths.root / layout.DEPARTURES, list(cfg.departures))
    print(f"run {paths.root} · " + " · ".join(f"{s}: {a}" for s, a in actions.items()), flush=True)
    # the live report reads which stages this invocation runs, in order, and their experiments
    files.write_json(
        paths.root / layout.PLAN,
        {"stages": [
            {"stage": s, "action": a, "experiments": [s, *STAGES.get(s).experiments]}
            for s, a in actions.items()
        ]},
    )  # fmt: skip
    fps = stage_fingerprints(cfg, inputs)
    t_start = time.time()
    needs_ray = any(a in ("run", "resume") for a in actions.values())
    started_ray = cluster.connect(cfg) if needs_ray else False
    try:
        if needs_ray:
            cluster.preflight(cfg, paths.storage())
        # every stage that reruns loses its old results now, not when its turn comes: a
        # report written meanwhile must not show them beside the new ones
        for stage in STAGES:
            if actions[stage] == "run":
                _clear_stage(cfg, paths.root, stage)
        if needs_ray:
            live.write_report(cfg, force=True)  # partial: what is done, what is pending
        ctx = StageContext(cfg, paths)
        for stage in STAGES:
            if actions[stage] not in ("run", "resume"):
                continue
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
            last = stage == [s for s in STAGES if actions[s] in ("run", "resume")][-1]
            # the report after the last stage is the final one, written below
            live.after_stage(cfg, stage, (stage, *STAGES.get(stage).experiments), report=not last)
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
    report_dir = build_report(paths.root, layout.report_dir(cfg))
    print(f"report {report_dir / 'report.md'} · total {time.time() - t_start:.0f}s", flush=True)
    return report_dir
