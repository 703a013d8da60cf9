"""The report: a run directory's stored files → ``reports/<name>/`` (Markdown, HTML, CSV, PNG).

It reads files only (never Ray, never a trial's memory), so ``python -m fer_ray.report
runs/<name>`` rebuilds a report anywhere the run directory is readable. ``build`` builds the
page from the ``sections`` registry; ``render`` writes it in both formats.

This package imports nothing at import time, so a submodule can import a sibling without
running the whole report first.
"""
