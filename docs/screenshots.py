"""Regenerate the documentation's screenshots at 1400 x 900 in headless Chromium.

* ``docs/img/report_first_screen.png``: the first screen of a run's ``report.html``;
* ``docs/img/docs_home.png``: the documentation site's home page, built with
  ``mkdocs build`` into a temporary folder.

Usage (from the repository root, after a default run)::

    fer-ray tune
    python docs/screenshots.py --report reports/default/report.html

Needs Chromium and its driver (``apt-get install chromium chromium-driver``), Selenium
(``pip install -e ".[dev]"``) and MkDocs (``pip install -e ".[docs]"``). Each PNG is reduced
to a 256-colour palette so that it stays small in the repository.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.report import browser  # noqa: E402 - the report tests' headless Chromium

WIDTH, HEIGHT = 1400, 900
IMG = ROOT / "docs" / "img"
REPORT_PNG = IMG / "report_first_screen.png"
SITE_PNG = IMG / "docs_home.png"


def shoot(page: Path, out: Path) -> Path:
    """The first ``WIDTH`` x ``HEIGHT`` CSS pixels of ``page``, as a palette PNG."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as profile, browser.chromium(Path(profile)) as driver:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )
        driver.get(page.resolve().as_uri())
        errors = browser.console_errors(driver)
        broken = browser.broken_images(driver)
        driver.save_screenshot(str(out))
    if errors or broken:
        raise SystemExit(f"{page}: console errors {errors}, images not drawn {broken}")
    image = Image.open(out).convert("RGB")
    assert image.size == (WIDTH, HEIGHT), image.size
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    return out


def site_home(site: Path) -> Path:
    """The site built strictly into ``site``; its home page."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return site / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--report",
        type=Path,
        default=ROOT / "reports" / "smoke" / "report.html",
        help="the report page to show (default: reports/smoke/report.html)",
    )
    parser.add_argument("--no-site", action="store_true", help="skip the site's home page")
    args = parser.parse_args(argv)
    reason = browser.missing()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    if not args.report.is_file():
        print(f"{args.report} not found: make it with `fer-ray tune -c smoke`", file=sys.stderr)
        return 1
    IMG.mkdir(parents=True, exist_ok=True)
    done = [shoot(args.report, REPORT_PNG)]
    if not args.no_site:
        with tempfile.TemporaryDirectory() as tmp:
            done.append(shoot(site_home(Path(tmp) / "site"), SITE_PNG))
    for path in done:
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
