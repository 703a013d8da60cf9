"""``fer-ray``: one command for everything fer_ray does.

    fer-ray tune [-c NAME_OR_FILE] [--set KEY=VALUE ...]   run the pipeline
    fer-ray report runs/<name>                               rebuild a run's report
    fer-ray compare runs/a runs/b [...]                      compare runs side by side
    fer-ray predict --run runs/<name> IMAGE ...              classify faces with a run's ensemble
    fer-ray data NAME ROOT                                   check a data set's layout

Each subcommand is the module it names (``python -m fer_ray.tune`` and the others keep
working); ``fer-ray <command> --help`` shows its options. Each module is imported only when its
command runs, so ``fer-ray --version`` and ``fer-ray report`` never start Ray.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import fer_ray


def _tune(argv: list[str]) -> int:
    from fer_ray.tune import main

    return main(argv)


def _report(argv: list[str]) -> int:
    from fer_ray.report.__main__ import main

    return main(argv)


def _compare(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="fer-ray compare", description="Compare finished runs side by side (their reports)."
    )
    p.add_argument("run_dirs", nargs="+", metavar="run_dir", help="two or more run directories")
    p.add_argument("--out", default=None, help="output folder (default: reports/compare-<a>-<b>)")
    args = p.parse_args(argv)
    if len(args.run_dirs) < 2:
        p.error("compare needs two or more run directories (one run: fer-ray report)")
    return _report([*args.run_dirs, *(["--out", args.out] if args.out else [])])


def _predict(argv: list[str]) -> int:
    from fer_ray.predict import main

    return main(argv)


def _data(argv: list[str]) -> int:
    from fer_ray.data.__main__ import main

    return main(argv)


COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "tune": (_tune, "run the pipeline on a config (a file or a shipped config's name)"),
    "report": (_report, "rebuild a run's report from its stored files"),
    "compare": (_compare, "compare two or more runs side by side"),
    "predict": (_predict, "classify the faces in images with a finished run's ensemble"),
    "data": (_data, "check a data set's layout: classes, splits, groups, unreadable files"),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fer-ray",
        description="Distributed hyperparameter and ensemble runner for facial-expression"
        " recognition on Ray Tune.",
        epilog="commands:\n"
        + "\n".join(f"  {name:<9} {text}" for name, (_, text) in COMMANDS.items())
        + "\n\n'fer-ray COMMAND --help' shows a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"fer-ray {fer_ray.__version__}")
    p.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="see below")
    return p


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``fer-ray COMMAND ARGS...`` to the command's own ``main(ARGS)``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv[:1])  # --help, --version, or the command's name
    run, _ = COMMANDS[args.command]
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
