"""``python -m fer_ray.tune``: parse the command line, run the pipeline, print errors as one
line each (the pipeline itself is ``fer_ray.pipeline``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_ray import config as config_mod
from fer_ray.errors import unwrap


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
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the stages that would run or be skipped (and why), the work, the resources"
        " and an estimate of the wall time from a short probe; run nothing, write nothing",
    )
    return p.parse_args(argv)


def default_config_path() -> Path | None:
    here = Path.cwd() / "tune_configs" / "default.yaml"
    if here.is_file():
        return here
    packaged = Path(__file__).resolve().parent.parent / "tune_configs" / "default.yaml"
    return packaged if packaged.is_file() else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        path = args.config if args.config is not None else default_config_path()
        cfg = config_mod.load(path, args.overrides)
        if args.print_config:
            print(cfg.to_yaml(), end="")
            return 0
        if args.dry_run:
            from fer_ray.plan import dry_run

            dry_run(cfg, resume=args.resume, fresh=args.fresh)
            return 0
        from fer_ray.pipeline import run_pipeline

        run_pipeline(cfg, resume=args.resume, fresh=args.fresh)
    except Exception as e:
        err = unwrap(e)  # also inside a Ray task or trial error
        if err is None:
            raise  # a bug, not the user's input: keep the traceback
        message = " ".join(str(err).split())  # one line, whatever the message held
        print(f"{err.kind}: {message}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(
            "\ninterrupted: rerun with --resume to continue from the last checkpoints",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
