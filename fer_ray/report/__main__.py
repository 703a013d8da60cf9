"""``python -m fer_ray.report runs/<name>``: rebuild the report from stored results alone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_ray.errors import ReportError
from fer_ray.report.build import REPORT_MD, build_report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_ray.report", description=__doc__)
    p.add_argument("run_dir", help="a run directory, e.g. runs/default")
    p.add_argument("--out", default=None, help="output folder (default: reports/<run name>)")
    args = p.parse_args(argv)
    run_dir = Path(args.run_dir)
    out = Path(args.out) if args.out else Path("reports") / run_dir.name
    try:
        path = build_report(run_dir, out)
    except ReportError as e:
        print(f"{e.kind}: {e}", file=sys.stderr)
        return e.exit_code
    print(f"report written to {path / REPORT_MD} (and report.html, *.csv, *.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
