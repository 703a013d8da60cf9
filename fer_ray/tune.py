"""``python -m fer_ray.tune``: load a config and run prepare → grid → ensemble → analyse → report
(plus seed 000's descriptor baseline when ``descriptors.enabled``).

A stage whose results exist for the same inputs is skipped; a stage whose inputs
changed reruns with everything after it; an interrupted stage continues from
its Tune checkpoints with ``--resume`` (``--fresh`` deletes the run and starts over).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from fer_ray import config as config_mod
from fer_ray.config import Config, ConfigError

# The config keys each stage reads (besides everything upstream of it).
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "prepare": ("data", "faces"),
    "grid": ("seed", "model", "train", "grid", "ensemble.test_fraction"),
    "ensemble": ("ensemble",),
    "analyse": ("analyse",),
}
# Stages that read none of the chain's results: their fingerprint covers only their own keys,
# so e.g. a new grid does not retrain the descriptor baseline (seed 000's LPQ/PHOG net).
SIDE_STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "descriptors": ("seed", "data", "descriptors", "analyse.absolute_angles"),
}
STAGES = (*STAGE_KEYS, *SIDE_STAGE_KEYS)


def _pick(d: dict[str, Any], dotted: str) -> Any:
    for k in dotted.split("."):
        d = d[k]
    return d


def input_identity(cfg: Config) -> dict[str, Any]:
    """What the config cannot see but the results depend on: the data set's files
    (names, sizes, mtimes) and the descriptor sheet's bytes. Changing either reruns the
    stages that read them instead of skipping them as done."""
    from fer_ray.data.datasets import create_source, load_manifest

    source = create_source(cfg.data)
    load_manifest(cfg.data, source)  # a bad layout fails here, before any stage
    out: dict[str, Any] = {"data": source.identity()}
    if cfg.descriptors.enabled:
        from fer_ray.stages.descriptors import sheet_path

        sheet = sheet_path(cfg)
        out["sheet"] = hashlib.sha256(sheet.read_bytes()).hexdigest() if sheet.is_file() else None
    return out


def stage_fingerprints(cfg: Config, inputs: dict[str, Any] | None = None) -> dict[str, str]:
    """Chained hashes: a stage's fingerprint covers its keys and all upstream stages'.

    ``inputs`` (from ``input_identity``) adds the data files to prepare (and so to every
    stage after it) and the sheet to the descriptors stage.
    """
    d, prev, out = cfg.to_dict(), "", {}
    inputs = inputs or {}
    for stage, keys in STAGE_KEYS.items():
        picked = {k: _pick(d, k) for k in keys}
        if stage == "prepare":
            picked["files"] = inputs.get("data")
        blob = json.dumps(picked, sort_keys=True, default=str)
        prev = hashlib.sha256((prev + blob).encode()).hexdigest()[:16]
        out[stage] = prev
    for stage, keys in SIDE_STAGE_KEYS.items():
        picked = {k: _pick(d, k) for k in keys}
        picked["files"] = [inputs.get("data"), inputs.get("sheet")]
        blob = json.dumps(picked, sort_keys=True, default=str)
        out[stage] = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return out


def plan(
    cfg: Config, root: Path, resume: bool, inputs: dict[str, Any] | None = None
) -> dict[str, str]:
    """Per stage: 'skip' (done, same inputs), 'resume', or 'run' (fresh)."""
    from fer_ray.stages.common import StageError, read_json

    fps = stage_fingerprints(cfg, inputs)
    actions, rerun_upstream = {}, False
    for stage in STAGES:
        if stage in SIDE_STAGE_KEYS:
            rerun_upstream = False  # side stages depend on no other stage
        d = root / stage
        done = read_json(d / "done.json") if (d / "done.json").is_file() else None
        started = read_json(d / "started.json") if (d / "started.json").is_file() else None
        if (stage == "analyse" and not cfg.analyse.enabled) or (
            stage == "descriptors" and not cfg.descriptors.enabled
        ):
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
            rerun_upstream = True
        else:
            actions[stage] = "run"
            rerun_upstream = True
    return actions


def preflight(cfg: Config, actions: dict[str, str]) -> None:
    """Fail now, in the driver, on what would otherwise fail inside a Ray task or hours in:
    the detector's library and the descriptor sheet (``input_identity`` checked the data)."""
    if actions["prepare"] != "skip":  # the data layout was checked by input_identity
        from fer_ray.faces import detectors

        detectors.get(cfg.faces.detector).factory()
    if actions["descriptors"] in ("run", "resume"):
        from fer_ray.data.descriptors import read_sheet
        from fer_ray.stages.descriptors import sheet_path

        read_sheet(sheet_path(cfg))


def _clear_stage(cfg: Config, root: Path, stage: str) -> None:
    from fer_ray.stages.common import RunPaths

    shutil.rmtree(root / stage, ignore_errors=True)
    exp = RunPaths.of(cfg).experiment(cfg, stage)
    if "://" not in exp:
        shutil.rmtree(exp, ignore_errors=True)


def run_pipeline(cfg: Config, resume: bool = False, fresh: bool = False) -> Path:
    """Run every stage that needs running; returns the report directory."""
    from fer_ray.report.aggregate import build_report
    from fer_ray.runinfo import provenance
    from fer_ray.stages import ensemble, grid, prepare, trialdata
    from fer_ray.stages.common import RunPaths, init_ray, read_json, write_json

    paths = RunPaths.of(cfg)
    if fresh and paths.root.exists():
        shutil.rmtree(paths.root)
        exp = paths.storage(cfg)
        if cfg.output.storage_path and "://" not in exp:
            for s in STAGES:
                shutil.rmtree(paths.experiment(cfg, s), ignore_errors=True)
    inputs = input_identity(cfg)
    actions = plan(cfg, paths.root, resume, inputs)
    preflight(cfg, actions)
    paths.root.mkdir(parents=True, exist_ok=True)
    config_mod.save(cfg, paths.root / "config.yaml")
    write_json(paths.root / "run.json", {**provenance(), "started": time.strftime("%F %T")})
    print(f"run {paths.root} · " + " · ".join(f"{s}: {a}" for s, a in actions.items()), flush=True)
    fps = stage_fingerprints(cfg, inputs)
    t_start = time.time()
    needs_ray = any(a in ("run", "resume") for a in actions.values())
    started_ray = init_ray(cfg) if needs_ray else False
    try:
        prepared, data_ref, chosen = None, None, None

        def begin(stage: str) -> float:
            if actions[stage] == "run":
                _clear_stage(cfg, paths.root, stage)
            write_json(paths.stage(stage) / "started.json", {"fingerprint": fps[stage]})
            return time.time()

        def finish(stage: str, t0: float, extra: dict | None = None) -> None:
            write_json(
                paths.stage(stage) / "done.json",
                {"fingerprint": fps[stage], "seconds": round(time.time() - t0, 2), **(extra or {})},
            )

        if actions["prepare"] != "skip":
            t0 = begin("prepare")
            prepared = prepare.run(cfg, paths)
            finish("prepare", t0)
        for stage in ("grid", "ensemble"):
            if actions[stage] == "skip":
                continue
            if data_ref is None:
                prepared = prepared or prepare.load_prepared(cfg)
                data_ref, info = trialdata.build(cfg, prepared)
            t0 = begin(stage)
            resume_stage = actions[stage] == "resume"
            if stage == "grid":
                write_json(paths.stage("grid") / "features.json", info)
                grid.run(cfg, paths, data_ref, resume_stage)
            else:
                chosen = read_json(paths.stage("grid") / "chosen.json")
                ensemble.run(cfg, paths, data_ref, chosen, resume_stage)
            finish(stage, t0)
        if actions["analyse"] in ("run", "resume"):
            from fer_ray.stages import analyse

            t0 = begin("analyse")
            analyse.run(cfg, paths, resume=actions["analyse"] == "resume")
            finish("analyse", t0)
        if actions["descriptors"] in ("run", "resume"):
            from fer_ray.stages import descriptors

            t0 = begin("descriptors")
            descriptors.run(cfg, paths, resume=actions["descriptors"] == "resume")
            finish("descriptors", t0)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    report_dir = build_report(paths.root, Path(cfg.output.reports_dir) / cfg.name)
    print(f"report {report_dir / 'report.md'} · total {time.time() - t_start:.0f}s", flush=True)
    return report_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m fer_ray.tune",
        description="Run the fer_ray pipeline (prepare, grid, ensemble, analyse, report).",
    )
    p.add_argument(
        "--config",
        "-c",
        default=None,
        help="YAML config (default: tune_configs/default.yaml, embedded synthetic data)",
    )
    p.add_argument(
        "--set",
        "-s",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set grid.folds=3",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its checkpoints"
    )
    g.add_argument("--fresh", action="store_true", help="delete the run directory and start over")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return p.parse_args(argv)


def default_config_path() -> Path | None:
    here = Path.cwd() / "tune_configs" / "default.yaml"
    if here.is_file():
        return here
    packaged = Path(__file__).resolve().parent.parent / "tune_configs" / "default.yaml"
    return packaged if packaged.is_file() else None


def main(argv: list[str] | None = None) -> int:
    from fer_ray.data.datasets import DataError
    from fer_ray.data.splits import SplitError
    from fer_ray.stages.common import StageError

    args = parse_args(argv)
    try:
        path = args.config if args.config is not None else default_config_path()
        cfg = config_mod.load(path, args.overrides)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    try:
        run_pipeline(cfg, resume=args.resume, fresh=args.fresh)
    except StageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ConfigError as e:  # a registry name (detector, recipe) the config loader cannot know
        print(f"config error: {e}", file=sys.stderr)
        return 2
    except (DataError, SplitError) as e:
        print(f"data error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:  # an optional detector library; the message says what to install
        print(f"missing dependency: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\ninterrupted: rerun with --resume to continue from the last checkpoints",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
