"""``python -m fer_ray.tune``: parse the command line, run the pipeline, print errors as one
line each (the pipeline itself is ``fer_ray.pipeline``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_ray import config as config_mod
from fer_ray import shipped_configs, signals, tracking
from fer_ray.errors import unwrap


def _resume_mode(value: str) -> str:
    if value != "auto":
        raise argparse.ArgumentTypeError(f"--resume takes no value or 'auto', not {value!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="fer-ray tune",
        description="Run the fer_ray pipeline (prepare, grid, ensemble, analyse, report)."
        " Also: python -m fer_ray.tune.",
    )
    p.add_argument(
        "--config",
        "-c",
        default=None,
        metavar="FILE_OR_NAME",
        help="a YAML file, or the name of a shipped config (default, smoke, sfew_paper, ...;"
        " an unknown name lists them); default: default (embedded synthetic data)",
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
        "--resume",
        nargs="?",
        const=True,
        type=_resume_mode,
        default=None,
        metavar="auto",
        help="continue an interrupted run from its checkpoints; '--resume auto' starts the run"
        " when there is none and resumes it otherwise (one command for job retries)",
    )
    g.add_argument("--fresh", action="store_true", help="delete the run directory and start over")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the stages that would run or be skipped (and why), the work, the resources"
        " and an estimate of the wall time per stage (a short probe, calibrated by earlier runs"
        " on this machine: runs/<name>/timing.json); run nothing, write nothing",
    )
    return p.parse_args(argv)


def default_config_path() -> Path:
    """The shipped default config (``fer_ray.configs``)."""
    return shipped_configs.find(None)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = config_mod.load(shipped_configs.find(args.config), args.overrides)
        if args.print_config:
            print(cfg.to_yaml(), end="")
            return 0
        if args.dry_run:
            from fer_ray.plan import dry_run

            dry_run(cfg, resume=resume_wanted(cfg, args.resume), fresh=args.fresh)
            return 0
        from fer_ray.pipeline import run_pipeline

        tracking.check_installed(cfg.tracking)  # before any stage: a tracker's package
        signals.install()
        run_pipeline(cfg, resume=resume_wanted(cfg, args.resume), fresh=args.fresh)
    except Exception as e:
        err = unwrap(e)  # also inside a Ray task or trial error
        if signals.terminated():  # Tune stopped on SIGTERM: whatever it raised, say so
            return _interrupted(err)
        if err is None:
            from fer_ray.files import as_storage_error

            err = as_storage_error(e)  # a full disk or a read-only folder: the user's to fix
        if err is None:
            raise  # a bug, not the user's input: keep the traceback
        message = " ".join(str(err).split())  # one line, whatever the message held
        print(f"{err.kind}: {message}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return _interrupted(None)
    return 0


def resume_wanted(cfg: config_mod.Config, resume: str | bool | None) -> bool:
    """``--resume`` resumes; ``--resume auto`` resumes a run that exists, else starts it."""
    if resume == "auto":
        from fer_ray import layout

        return (layout.RunPaths.of(cfg).root / layout.CONFIG).is_file()
    return resume is not None


def _interrupted(err: BaseException | None) -> int:
    """Ctrl-C (130) or SIGTERM (143): nothing finished is lost; say how to go on."""
    how = "terminated (SIGTERM)" if signals.terminated() else "interrupted"
    detail = f" ({' '.join(str(err).split())})" if err is not None else ""
    print(
        f"\n{how}{detail}: rerun with --resume (or --resume auto) to continue from the last"
        " checkpoints",
        file=sys.stderr,
    )
    return 143 if signals.terminated() else 130


if __name__ == "__main__":
    sys.exit(main())
