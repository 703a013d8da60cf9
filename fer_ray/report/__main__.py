"""``python -m fer_ray.report runs/<name>``: rebuild the report from stored results alone.

``python -m fer_ray.report runs/a runs/b [...] --out reports/compare-a-b`` compares runs side by
side instead (``fer_ray.report.compare``). Neither needs Ray.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_ray.errors import ReportError, StoredFileError
from fer_ray.report.build import REPORT_MD, build_report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="fer-ray report",
        description="Rebuild a run's report (Markdown, HTML, CSV, PNG) from its stored results"
        " alone; with two or more runs, compare them side by side (also: fer-ray compare)."
        " Needs no Ray. Also: python -m fer_ray.report.",
    )
    p.add_argument(
        "run_dirs", nargs="+", metavar="run_dir", help="a run directory, e.g. runs/default;"
        " two or more: a comparison of the runs side by side"
    )  # fmt: skip
    p.add_argument(
        "--out",
        default=None,
        help="output folder (default: reports/<run name>, or reports/compare-<a>-<b>...)",
    )
    args = p.parse_args(argv)
    dirs = [Path(d) for d in args.run_dirs]
    try:
        if len(dirs) == 1:
            out = Path(args.out) if args.out else Path("reports") / dirs[0].name
            path = build_report(dirs[0], out)
        else:
            from fer_ray.report.compare import compare_runs

            default = Path("reports") / ("compare-" + "-".join(d.name for d in dirs))
            path = compare_runs(dirs, Path(args.out) if args.out else default)
    except (ReportError, StoredFileError) as e:
        print(f"{e.kind}: {' '.join(str(e).split())}", file=sys.stderr)
        return e.exit_code
    what = "comparison" if len(dirs) > 1 else "report"
    print(f"{what} written to {path / REPORT_MD} (and report.html, *.csv, *.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
