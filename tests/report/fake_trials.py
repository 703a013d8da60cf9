"""Tune's side of a fake run: trial folders under ``<run>/tune/<experiment>/`` as Ray Tune
writes them (``params.json``, ``result.json``, a TensorBoard event file) and each Tune stage's
``results.parquet`` made from them by the pipeline's own code (``fer_ray.trial_logs``).

Separate from ``fake_run.write_run`` because ``tune/`` is no stage's folder (see
``tests/report/test_fakes.py``); the tests of the report's links add it.
"""

from __future__ import annotations

import json
from pathlib import Path

from fer_ray import trial_logs
from fer_ray.layout import RESULTS, Ensemble, Grid
from tests.report.fake_files import out, stage_dir
from tests.report.fake_run import NODE

#: per experiment: the trials' configs (grid: 2 lr x 2 hidden x 3 folds; ensemble: 3 members)
TRIALS = {
    Grid.DIR: [
        {"lr": lr, "hidden": h, "fold": f} for lr in (0.005, 0.0005) for h in (50, 100)
        for f in range(3)
    ],
    Ensemble.DIR: [{"member": m} for m in range(3)],
}  # fmt: skip


def trial_name(experiment: str, i: int, config: dict) -> str:
    """A folder name the way Tune spells one (trainable, trial id, index, tag, date)."""
    tag = ",".join(f"{k}={v}" for k, v in config.items())
    return f"{experiment}_trainable_1ffe0_{i:05d}_{i}_{tag}_2026-01-01_00-00-00"


def write_trials(root: Path, epochs: int = 3) -> dict[str, list[Path]]:
    """Every fake trial's folder, per experiment; and each stage's ``results.parquet``."""
    folders: dict[str, list[Path]] = {}
    for experiment, configs in TRIALS.items():
        base = root / "tune" / experiment
        for i, config in enumerate(configs):
            d = base / trial_name(experiment, i, config)
            d.mkdir(parents=True, exist_ok=True)
            (d / trial_logs.PARAMS).write_text(json.dumps(config))
            lines = [
                {"epoch": e, "val_acc": 0.1 + 0.05 * e + 0.01 * i, "training_iteration": e,
                 "trial_id": f"1ffe0_{i:05d}", "time_total_s": 1.5 * e, "node_ip": NODE}
                for e in range(1, epochs + 1)
            ]  # fmt: skip
            (d / trial_logs.RESULT).write_text("".join(json.dumps(r) + "\n" for r in lines))
            (d / f"{trial_logs.EVENTS_PREFIX}0.vm").write_bytes(b"")
            folders.setdefault(experiment, []).append(d)
        table = trial_logs.results_frame(trial_logs.read_trials(str(base)), experiment)
        table.to_parquet(out(stage_dir(root, experiment), RESULTS), index=False)
    return folders
