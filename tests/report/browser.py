"""Headless Chromium for the report page's tests: Selenium driving Debian's chromium through
Debian's chromedriver, offline.

Why Selenium + chromedriver: Debian builds ``chromium`` and ``chromium-driver`` from one
source at one version, so the driver always matches the browser; WebDriver is a W3C standard
(clicks, script, screenshots) and chromedriver's browser log carries every console message,
uncaught JavaScript error and failed load. Nothing is downloaded: both paths are given, so
Selenium Manager never runs. (Playwright's Python package pins its own Chromium build and
ships a Node driver; a raw DevTools client would be ours to maintain.)

``python -m tests.report.browser PAGE.html OUT.png`` writes a full-page screenshot of a page.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

APT = "apt-get install chromium chromium-driver"
#: How Chromium must start here (the machine notes): no sandbox as root, no GPU, and none of
#: its background connections, which this machine's closed network refuses.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)
WIDTH, HEIGHT = 1200, 900


def missing() -> str | None:
    """Why the browser cannot run here (a reason naming the fix), or ``None`` when it can."""
    tools = [t for t in ("chromium", "chromedriver") if shutil.which(t) is None]
    if tools:
        return f"{' and '.join(tools)} not installed: run `{APT}` as root (.ci/run does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return 'selenium not installed: pip install -e ".[dev]"'
    return None


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A headless Chromium with a fresh profile in ``profile``; closed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    """Console errors since the last call: console.error, uncaught exceptions, failed loads
    and Content-Security-Policy refusals all arrive as SEVERE entries."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def broken_images(driver: Any) -> list[str]:
    """Each image that did not load (``naturalWidth`` 0), by its alt text."""
    return driver.execute_script(
        "return Array.from(document.images)"
        ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt || i.src.slice(0, 60))"
    )


def screenshot(driver: Any, path: Path) -> Path:
    """The whole page as a PNG: the window grows to the page's height first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(int(height) + 100, 16000))
    driver.save_screenshot(str(path))
    driver.set_window_size(WIDTH, HEIGHT)
    return path


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tests.report.browser PAGE.html OUT.png", file=sys.stderr)
        return 2
    reason = missing()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    page, out = Path(argv[0]).resolve(), Path(argv[1])
    with tempfile.TemporaryDirectory() as profile, chromium(Path(profile)) as driver:
        driver.get(page.as_uri())
        errors, broken = console_errors(driver), broken_images(driver)
        screenshot(driver, out)
    for e in errors:
        print(f"console error: {e}", file=sys.stderr)
    for b in broken:
        print(f"image did not load: {b}", file=sys.stderr)
    print(f"screenshot written to {out}")
    return 1 if errors or broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
