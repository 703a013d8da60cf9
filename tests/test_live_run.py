"""A smoke run as a user starts it (``python -m fer_ray.tune``, dashboard on), looked at from
outside while it runs: the dry run before it, the dashboard's API during it (with the token
the terminal points to), the report rewritten as partial during it and final after it, the
TensorBoard event files and Parquet results it leaves, and a comparison with two more runs.
The run is met during it at named points (``fer_ray.testhooks``) and held there while the
test looks, never by sleeping and polling.

Set ``FER_RAY_DASHBOARD_SCREENSHOT=docs/dashboard.png`` to also save a screenshot of the
dashboard's job page (headless Chromium, the token typed into its dialog).
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fer_ray import tune as tune_cli
from fer_ray.pipeline import run_pipeline
from fer_ray.report.compare import compare_runs
from tests.conftest import ROOT, SMOKE, smoke_config
from tests.hookpipe import Meeting

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

TOKEN_FILE = Path("~/.ray/auth_token").expanduser()


def _get(url: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None
    except (urllib.error.URLError, OSError, json.JSONDecodeError):
        return 0, None


def _task_names(url: str, token: str | None) -> set[str]:
    status, body = _get(f"{url}/api/v0/tasks?limit=10000&detail=false", token)
    if status != 200 or not body:
        return set()
    return {
        t.get("func_or_class_name") or t.get("name", "") for t in body["data"]["result"]["result"]
    }


def _screenshot(url: str, token: str | None, path: Path) -> None:
    """The dashboard's page of the run's driver job, the token typed into its dialog. Taken
    while the run is held at a hook: the page waits for what it shows (WebDriverWait), never
    for the run."""
    from selenium.webdriver.common.by import By

    from tests.report import browser

    if browser.missing():
        return
    status, body = _get(f"{url}/api/jobs/", token)
    job = next((j.get("job_id") for j in (body or []) if j.get("job_id")), "01000000")
    import tempfile

    password = (By.CSS_SELECTOR, "input[type=password]")
    with tempfile.TemporaryDirectory() as profile, browser.chromium(Path(profile)) as d:
        d.set_window_size(1200, 760)
        d.get(url + "/")
        if token and _until(d, lambda d: d.find_elements(*password)):  # the token dialog
            for field in d.find_elements(*password):
                field.send_keys(token)
            for b in d.find_elements(By.TAG_NAME, "button"):
                if b.text.strip().upper() == "SUBMIT":
                    b.click()
            _until(d, lambda d: not d.find_elements(*password))  # the dialog has closed
        d.get(f"{url}/#/jobs/{job}")
        _until(d, lambda d: d.execute_script(RAY_CORE_SHOWN))
        height = "return document.body.scrollHeight"
        before = d.execute_script(height)
        d.execute_script(EXPAND_TASKS)  # one row per task function, with its count
        _until(d, lambda d: d.execute_script(height) > before)  # the list has opened
        path.parent.mkdir(parents=True, exist_ok=True)
        d.save_screenshot(str(path))


def _until(driver: Any, shown: Any, seconds: float = 30) -> bool:
    """Selenium's explicit wait for what the page shows; a page that never shows it still
    gets its screenshot (a picture for the docs, not a check)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, seconds).until(shown)
        return True
    except TimeoutException:
        return False


RAY_CORE_SHOWN = (
    "return [...document.querySelectorAll('h4')].some(e => e.textContent.includes('Ray Core'))"
)
#: The job page's "Ray Core Overview": scroll to it and open its list of task functions (the
#: chevron left of the progress bar, found by position: the page has no ids for it).
EXPAND_TASKS = """
const h = [...document.querySelectorAll('h4')].find(e => e.textContent.includes('Ray Core'));
if (h) {
  const top = h.getBoundingClientRect().top;
  const chevron = [...document.querySelectorAll('svg')].find(s => {
    const r = s.getBoundingClientRect();
    return r.left < 120 && r.top > top + 60 && r.top < top + 140;
  });
  if (chevron) chevron.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  window.scrollTo(0, window.scrollY + top - 110);
}
"""


#: Where the fixture meets the run, held there while it looks (fer_ray.testhooks): a live
#: rewrite of the report during the grid (the first one, on disk, none other written while
#: held), then the first stored analysis task (the dashboard lists the run's tasks by then).
POINTS = ["live_report:grid", "task_stored:analyse"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> dict[str, Any]:
    """The dry run, then the real run in a subprocess, held at ``POINTS`` to be looked at."""
    tmp = tmp_path_factory.mktemp("live")
    sets = [f"output.runs_dir={tmp / 'runs'}", f"output.reports_dir={tmp / 'reports'}",
            f"faces.cache_dir={shared_cache / 'crops'}", "resources.dashboard=true",
            "output.live_report_s=2"]  # fmt: skip
    argv = ["--config", str(SMOKE)] + [a for s in sets for a in ("--set", s)]
    from fer_ray.config import load
    from fer_ray.plan import dry_run

    lines: list[str] = []
    t0 = time.time()
    plan = dry_run(load(SMOKE, sets), out=lines.append)
    dry_s = time.time() - t0
    wrote_nothing = not (tmp / "runs").exists()
    meeting = Meeting(tmp / "hook", POINTS)
    # Ray's processes send the dashboard their task events every 100 ms (1 s by default), so
    # a task that ran before the hook is listed when the test asks, held there
    env = {**os.environ, **meeting.env, "RAY_task_events_report_interval_ms": "100"}
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fer_ray.tune", *argv],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    meeting.watch(proc)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    seen: dict[str, Any] = {"tasks": set(), "partial": [], "unauthenticated": None, "met": []}
    report = tmp / "reports" / "smoke" / "report.md"
    shot = os.environ.get("FER_RAY_DASHBOARD_SCREENSHOT")
    try:
        for _ in POINTS:
            point = meeting.wait()  # the run stands still at it until released
            if point is None:  # it ended first (the test below says so)
                break
            seen["met"].append(point)
            text = "".join(out)
            m = re.search(r"dashboard (http://\S+)", text)
            token = TOKEN_FILE.read_text().strip() if "get-auth-token" in text else None
            if m:
                url = m.group(1)
                if seen["unauthenticated"] is None and token:
                    seen["unauthenticated"] = _get(f"{url}/api/v0/tasks?limit=1", None)[0]
                seen["tasks"] |= _task_names(url, token)
                if shot and point == POINTS[0]:  # the grid runs
                    _screenshot(url, token, ROOT / shot)
            if report.is_file():
                md = report.read_text()
                if "(partial" in md:
                    seen["partial"].append(md)
            meeting.release()
        proc.wait(timeout=1200)  # a guard against a hung run, not a wait for a moment
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=10)
    return {"tmp": tmp, "argv": argv, "rc": proc.returncode, "out": "".join(out),
            "wall_s": time.time() - started, "plan": plan, "dry_lines": lines, "dry_s": dry_s,
            "dry_wrote_nothing": wrote_nothing, **seen}  # fmt: skip


def test_the_run_finished_and_the_dry_run_before_it_wrote_nothing(smoke: dict[str, Any]):
    assert smoke["rc"] == 0, smoke["out"][-3000:]
    assert smoke["met"] == POINTS, smoke["out"][-3000:]  # held where it was looked at
    assert smoke["dry_wrote_nothing"]
    assert [(p.stage, p.action) for p in smoke["plan"].stages][:4] == [
        ("prepare", "run"), ("grid", "run"), ("ensemble", "run"), ("analyse", "run"),
    ]  # fmt: skip
    print(
        f"\ndry-run estimate {smoke['plan'].total_s:.0f} s ({smoke['plan'].estimate}); "
        f"real wall time {smoke['wall_s']:.0f} s; dry run itself {smoke['dry_s']:.0f} s"
    )


def test_the_terminal_says_where_the_dashboard_token_comes_from(smoke: dict[str, Any]):
    out = smoke["out"]
    assert re.search(r"dashboard http://127\.0\.0\.1:\d+", out)
    if os.environ.get("RAY_AUTH_MODE", "token").lower() == "token":  # Ray 2.60's default
        assert "`ray get-auth-token`" in out and "Authorization: Bearer <token>" in out


def test_the_dashboard_api_lists_the_runs_tasks(smoke: dict[str, Any]):
    # analyse's tasks always run; prepare's crop tasks only where the shared crop cache (which
    # another test module may have filled first) missed
    expected = {"_task"} | ({"_crop_task"} if "cache written" in smoke["out"] else set())
    assert expected <= smoke["tasks"], smoke["tasks"]
    assert any(t.startswith("ImplicitFunc") for t in smoke["tasks"])  # the Tune trials' actors
    if smoke["unauthenticated"] is not None:  # token auth on: nothing without it
        assert smoke["unauthenticated"] == 401


def test_the_report_was_partial_while_it_ran_and_the_final_one_is_not(smoke: dict[str, Any]):
    assert smoke["partial"], "no partial report was seen during the run"
    assert any(
        re.search(r"running: grid \(\d+ of 6 trials finished", md) for md in smoke["partial"]
    )
    final = (smoke["tmp"] / "reports" / "smoke" / "report.md").read_text()
    assert "partial" not in final.lower() and "analyse done" in final


def _event_tags(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Scalars of a TensorBoard event file: TFRecord frames of ``Event`` protos."""
    from tensorboardX.proto import event_pb2

    data, pos, tags = path.read_bytes(), 0, {}
    while pos + 12 <= len(data):
        (n,) = struct.unpack("<Q", data[pos : pos + 8])
        event = event_pb2.Event()
        event.ParseFromString(data[pos + 12 : pos + 12 + n])
        pos += 12 + n + 4
        for v in event.summary.value:
            tags.setdefault(v.tag, []).append((event.step, v.simple_value))
    return tags


def test_every_trial_logs_its_metrics_for_tensorboard(smoke: dict[str, Any]):
    tune_dir = smoke["tmp"] / "runs" / "smoke" / "tune"
    grid = sorted(tune_dir.glob("grid/*/events.out.tfevents.*"))
    assert len(grid) == 6 and len(list(tune_dir.glob("ensemble/*/events.out.tfevents.*"))) == 3
    tags = _event_tags(grid[0])
    assert [s for s, _ in tags["ray/tune/val_acc"]] == [1, 2, 3]  # one point per epoch
    assert "ray/tune/train_loss" in tags


def test_every_tune_stage_stores_its_results_as_parquet(smoke: dict[str, Any]):
    run = smoke["tmp"] / "runs" / "smoke"
    grid = pd.read_parquet(run / "grid" / "results.parquet")
    assert len(grid) == 6 * 3 and grid["trial"].nunique() == 6
    trials = pd.read_csv(run / "grid" / "trials.csv")
    last = grid[grid["epoch"] == 3].set_index(["config/lr", "config/fold"])["val_acc"]
    assert sorted(last.round(6)) == sorted(trials["val_acc"].round(6))
    ens = pd.read_parquet(run / "ensemble" / "results.parquet")
    assert (
        ens["config/member"].nunique() == 3 and ens["final"].fillna(False).astype(bool).sum() == 3
    )


def test_dry_run_after_the_run_skips_and_names_the_changed_keys(smoke, capsys):
    rc = tune_cli.main([*smoke["argv"], "--dry-run", "--set", "ensemble.members=2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert re.search(r"prepare\s+skip\s+done with the same inputs", out)
    assert re.search(r"grid\s+skip", out)
    assert re.search(r"ensemble\s+run\s+inputs changed: ensemble.members: 3 → 2", out)
    assert re.search(r"analyse\s+run\s+ensemble reruns", out)
    assert "ensemble: 2 members x 5 epochs" in out and "estimate:" in out
    assert "grid:" not in out.split("work:")[1].split("resources:")[0]  # skipped: no grid work


def test_two_more_runs_compared_side_by_side(smoke: dict[str, Any], shared_cache: Path):
    """b shares a's test set (only the ensemble and grid lr differ); c has another split seed."""
    tmp = smoke["tmp"]
    cache = f"faces.cache_dir={shared_cache / 'crops'}"
    light = ["analyse.enabled=false", "ensemble.members=2", "grid.lr=[0.005]", cache]
    run_pipeline(smoke_config(tmp, "name=smoke_b", *light))
    run_pipeline(smoke_config(tmp, "name=smoke_c", "seed=1", "train.epochs=2", *light))
    runs = [tmp / "runs" / n for n in ("smoke", "smoke_b", "smoke_c")]
    out = compare_runs(runs, tmp / "reports" / "compare")
    diff = pd.read_csv(out / "compare_config_diff.csv").set_index("key")
    assert {"seed", "train.epochs", "ensemble.members", "grid.lr", "analyse.enabled"} <= set(
        diff.index
    )
    pairs = pd.read_csv(out / "compare_paired.csv").set_index(["a", "b"])
    ab = pairs.loc[("smoke", "smoke_b")]
    assert re.fullmatch(rf"{smoke['plan'].facts['n_test']} images of \d+ groups", ab["paired on"])
    assert re.match(
        r"[+-]\d+\.\d\d points \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]", ab["vote a - b [95 %]"]
    )
    for pair in (("smoke", "smoke_c"), ("smoke_b", "smoke_c")):
        assert pairs.loc[pair, "vote a - b [95 %]"].startswith("not paired: other test items")
    md = (out / "report.md").read_text()
    assert "## Table 2" in md and "compare_size_curves.png" in md
