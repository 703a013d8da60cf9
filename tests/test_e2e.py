"""smoke.yaml through every stage, then the report rebuilt from stored files alone."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from fer_ray.pipeline import run_pipeline
from fer_ray.tune import main
from tests.conftest import ROOT, SMOKE, copy_of, smoke_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(smoke_done, ray_session):  # the session's smoke run; one Ray for this module's reruns
    return smoke_config(smoke_done), smoke_done / "runs" / "smoke", smoke_done / "reports/smoke"


def test_every_stage_done_and_config_saved(run):
    cfg, run_dir, _ = run
    # started by --resume auto, where there was no run: every stage ran
    assert (
        "prepare: run · grid: run · ensemble: run · analyse: run"
        in (run_dir.parent.parent / "stdout.txt").read_text()
    )
    for stage in ("prepare", "grid", "ensemble", "analyse"):
        assert (run_dir / stage / "done.json").is_file(), stage
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved == cfg.to_dict()
    info = yaml.safe_load((run_dir / "run.json").read_text())
    assert info["versions"]["ray"] and info["git_commit"]


def test_grid_table_complete_and_chosen_in_grid(run):
    cfg, _, report = run
    trials = pd.read_csv(report / "grid_trials.csv")
    assert len(trials) == len(cfg.grid.lr) * len(cfg.grid.hidden) * cfg.grid.folds
    assert trials["val_acc"].between(0, 1).all()
    t2 = pd.read_csv(report / "table2.csv")
    assert len(t2) == len(cfg.grid.lr) * len(cfg.grid.hidden)
    assert (t2["count"] == cfg.grid.folds).all()
    means = trials.groupby(["lr", "hidden"])["val_acc"].mean()
    assert np.allclose(t2.set_index(["lr", "hidden"])["mean"].sort_index(), means.sort_index())
    text = (report / "report.md").read_text()
    assert "Chosen config: lr" in text
    chosen = yaml.safe_load((report.parent.parent / "runs/smoke/grid/chosen.json").read_text())
    assert chosen["lr"] in cfg.grid.lr and chosen["hidden"] in cfg.grid.hidden
    assert chosen["mean_val_acc"] == pytest.approx(t2["mean"].max())


def test_ensemble_members_and_vote(run):
    cfg, run_dir, report = run
    m = pd.read_csv(report / "ensemble_members.csv")
    assert sorted(m["member"]) == list(range(cfg.ensemble.members))
    assert m["test_acc"].between(0, 1).all() and m["val_acc"].between(0, 1).all()
    assert set(m["selected_phase"]) <= {1, 2}
    s = yaml.safe_load((run_dir / "ensemble/summary.json").read_text())
    assert s["test_acc_mean"] == pytest.approx(m["test_acc"].mean())
    assert 0 <= s["vote_acc"] <= 1 and not s["selected_on_test"]
    # the vote is recomputable from the stored member probabilities
    probs = [
        np.load(p)["test_probs"]
        for p in sorted((run_dir / "ensemble/members").glob("*/member.npz"))
    ]
    labels = np.load(run_dir / "ensemble/members/member_00/member.npz")["test_labels"]
    assert s["vote_acc"] == pytest.approx(float((np.mean(probs, 0).argmax(1) == labels).mean()))


def test_no_group_on_two_sides(run):
    _, run_dir, _ = run
    manifest = pd.read_csv(run_dir / "prepare/manifest.csv")
    for p in sorted((run_dir / "ensemble/members").glob("*/member.npz")):
        z = np.load(p)
        parts = [set(manifest["group"].iloc[z[k]]) for k in ("train_idx", "val_idx", "test_idx")]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])


def test_analysis_in_report(run):
    _, run_dir, report = run
    s = yaml.safe_load((run_dir / "analyse/summary.json").read_text())
    assert s["n_features"] == 512
    assert s["magnitude_mean"] == pytest.approx(7 / 512, rel=1e-6)  # Gedeon invariant
    for f in (
        "fig2_magnitude.png",
        "fig3_angles.png",
        "fig4_pruning_baselines.png",
        "fig5_pruning_sweep.png",
        "confusion_vote.png",
        "grid_heatmap.png",
        "learning_curves.png",
        "member_accuracy.png",
    ):
        assert (report / f).stat().st_size > 5000, f
    sweep = pd.read_csv(report / "sweep.csv")
    base = pd.read_csv(run_dir / "analyse/baselines.csv")
    zero = (
        sweep[(sweep["ratio"] == 0) & (sweep["order"] == "random")]
        .groupby("member")["accuracy"]
        .mean()
    )
    unpruned = base[base["rule"] == "none"].set_index("member")["accuracy"]
    assert np.allclose(zero.sort_index(), unpruned.sort_index())


def test_report_rebuilds_from_stored_results_without_ray(run, tmp_path):
    _, run_dir, report = run
    out = tmp_path / "rebuilt"
    code = (
        "import sys, fer_ray.report.__main__ as m; r = m.main(sys.argv[1:]);"
        "assert 'ray' not in sys.modules, 'report imported ray'; sys.exit(r)"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(run_dir), "--out", str(out)], check=True, cwd=ROOT
    )
    for name in (
        "table2.csv",
        "ensemble_members.csv",
        "baselines.csv" if False else "pruning_baselines.csv",
    ):
        assert pd.read_csv(out / name).equals(pd.read_csv(report / name)), name
    assert (out / "report.html").read_text().count("<table") >= 5


def test_second_run_skips_every_stage(run, capsys):
    cfg, run_dir, _ = run
    before = {s: (run_dir / s / "done.json").stat().st_mtime for s in ("grid", "ensemble")}
    run_pipeline(cfg)
    out = capsys.readouterr().out
    assert "prepare: skip · grid: skip · ensemble: skip · analyse: skip" in out
    # --resume auto, the command a supervisor retries, on a finished run: all skipped too
    sets = [f"output.{k}_dir={run_dir.parent.parent / k}" for k in ("runs", "reports")]
    assert (
        main(["-c", str(SMOKE), "--resume", "auto", *(a for s in sets for a in ("--set", s))]) == 0
    )
    assert "prepare: skip · grid: skip · ensemble: skip · analyse: skip" in capsys.readouterr().out
    assert before == {s: (run_dir / s / "done.json").stat().st_mtime for s in ("grid", "ensemble")}


def test_interrupted_analyse_redoes_only_missing_tasks(run, capsys):
    cfg, run_dir, _ = run
    tasks = run_dir / "analyse" / "tasks"
    kept = {p.name: p.stat().st_mtime_ns for p in tasks.iterdir()}
    (tasks / "01_angles.json").unlink()  # as if killed before this task's result arrived
    (run_dir / "analyse" / "done.json").unlink()
    run_pipeline(cfg, resume=True)
    assert (
        "prepare: skip · grid: skip · ensemble: skip · analyse: resume" in capsys.readouterr().out
    )
    now = {p.name: p.stat().st_mtime_ns for p in tasks.iterdir()}
    assert now.keys() == kept.keys()
    changed = {n for n in now if now[n] != kept[n]}
    assert changed == {"01_angles.json"}


def test_every_accuracy_has_its_subject_interval(run):
    _, run_dir, _ = run
    t2 = pd.read_csv(run_dir / "grid/table2.csv")
    assert ((t2["low"] <= t2["pooled"]) & (t2["pooled"] <= t2["high"])).all()
    oof = pd.read_csv(run_dir / "grid/oof.csv")
    splits = pd.read_csv(run_dir / "grid/splits.csv")
    assert len(oof) == len(t2) * int((splits["fold"] >= 0).sum())  # every pool image, per cell
    s = yaml.safe_load((run_dir / "ensemble/summary.json").read_text())
    iv = s["intervals"]
    assert iv["vote"]["estimate"] == pytest.approx(s["vote_acc"])
    assert iv["member_mean"]["estimate"] == pytest.approx(s["test_acc_mean"])
    assert iv["n_groups"] == splits.loc[splits["test"], "group"].nunique()
    curve = pd.read_csv(run_dir / "ensemble/size_curve.csv")
    assert curve["k"].tolist() == list(range(1, s["members"] + 1))
    assert curve["accuracy"].iloc[-1] == pytest.approx(s["vote_acc"])
    rules = pd.read_csv(run_dir / "analyse/pruning_intervals.csv").set_index("rule")
    assert rules.loc["none", "diff_vs_none"] == 0
    base = pd.read_csv(run_dir / "analyse/baselines.csv").groupby("rule")["accuracy"].mean()
    assert np.allclose(rules["accuracy"].sort_index(), base.sort_index())


def _toy_distribution(site):
    """The toy recipe installed the way a package installs one: a distribution whose entry
    point in the ``fer_ray.recipes`` group names its module."""
    info = site / "toy_recipe-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-recipe\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fer_ray.recipes]\ntoy = tests.toy_recipe\n")


def test_a_recipe_from_another_package_runs_after_the_core_stages(run, tmp_path):
    """On a copy of the shared run: it adds the toy's stage and section."""
    _, shared, _ = run
    copy_of(shared.parent.parent / "runs", tmp_path / "runs")
    copy_of(shared.parent.parent / "reports", tmp_path / "reports")
    run_dir, report = tmp_path / "runs" / "smoke", tmp_path / "reports" / "smoke"
    _toy_distribution(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT)])}
    base = [sys.executable, "-m", "fer_ray.tune", "-c", str(ROOT / "tune_configs/smoke.yaml"),
            "--set", f"output.runs_dir={run_dir.parent}",
            "--set", f"output.reports_dir={report.parent}"]  # fmt: skip
    typo = subprocess.run([*base, "--set", "toy.powr=3"], env=env, cwd=ROOT, text=True,
                          capture_output=True, timeout=300)  # fmt: skip
    assert typo.returncode == 2 and "did you mean 'toy.power'" in typo.stderr
    done = subprocess.run([*base, "--set", "toy.enabled=true", "--set", "toy.power=3"], env=env,
                          cwd=ROOT, text=True, capture_output=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ensemble: skip" in done.stdout and "toy: run" in done.stdout
    scores = pd.read_csv(run_dir / "toy" / "scores.csv")
    members = pd.read_csv(run_dir / "ensemble" / "members.csv")
    assert np.allclose(scores["powered"], members["test_acc"] ** 3)
    assert "## Toy scores" in (report / "report.md").read_text()
    assert pd.read_csv(report / "toy_scores.csv")["member"].tolist() == members["member"].tolist()
