"""Progress output: the Tune stages' line, the throttle in a log, the pretraining and trunk
lines (output only: the results do not depend on it)."""

from __future__ import annotations

import dataclasses
import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fer_ray.config import Config
from fer_ray.models import pretrain
from fer_ray.stages import common, features
from fer_ray.train.features import trunk_features


class Clock:
    """A fake ``time.time`` the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(common.time, "time", c)
    monkeypatch.setattr(common, "_last_line", {})
    return c


def _trial(tid: str, status: str = "RUNNING", **config) -> SimpleNamespace:
    return SimpleNamespace(trial_id=tid, config=config, status=status, local_path=f"/x/{tid}")


def test_tune_line_shows_the_best_so_far_with_its_config_and_an_eta(clock, capsys):
    cb = common.Progress("grid", total=6, metric="val_acc")
    a, b = _trial("a", lr=0.01, hidden=64), _trial("b", lr=0.001, hidden=16)
    cb.on_trial_start(0, [a, b], a)
    cb.on_trial_start(0, [a, b], b)  # two run at once
    clock.now += 4
    cb.on_trial_result(0, [a, b], a, {"val_acc": 0.7})
    cb.on_trial_result(0, [a, b], b, {"val_acc": 0.5})  # reported last, but not the best
    clock.now += 6
    a.status = "TERMINATED"
    cb.on_trial_complete(0, [a, b], a)  # 10 s
    clock.now += 2
    cb.on_trial_complete(0, [a, b], b)  # 12 s
    # mean 11 s per trial x 4 trials left / 2 at once = 22 s
    assert cb.text() == "2/6 trials · 12s · best val_acc=0.700 (lr=0.01 hidden=64) · ETA 22s"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[grid] 0/6 trials · 4s · best val_acc=0.700 (lr=0.01 hidden=64) · ETA ?"
    assert len(lines) == 1  # a log gets a line at most every 15 s, and the final one


def test_tune_line_prints_no_none_before_a_metric_and_ends_without_an_eta(clock, capsys):
    cb = common.Progress("ensemble", total=1, metric="val_acc")
    t = _trial("m0", seed=3)
    cb.on_trial_start(0, [t], t)
    cb.on_trial_result(0, [t], t, {"epoch": 1})  # no metric yet
    assert cb.text() == "0/1 trials · 0s · ETA ?"
    clock.now += 90
    cb.on_trial_result(0, [t], t, {"val_acc": None})
    cb.on_trial_complete(0, [t], t)
    out = capsys.readouterr().out
    assert "None" not in out and "nan" not in out
    assert out.splitlines()[-1] == "[ensemble] 1/1 trials · 90s"


def test_a_minimised_metric_keeps_the_lowest():
    cb = common.Progress("search", total=3, metric="loss", mode="min")
    for tid, v in [("a", 0.4), ("b", 0.2), ("c", 0.3)]:
        cb.on_trial_result(0, [], _trial(tid, lr=v), {"loss": v})
    assert cb.best == (0.2, {"lr": 0.2})


def test_log_lines_are_throttled_and_the_final_one_always_prints(clock, capsys):
    for dt, final in [(0, False), (5, False), (9, False), (2, False), (1, True)]:
        clock.now += dt
        common.progress("prepare", f"at {clock.now - 1000:.0f}s", final)
    assert capsys.readouterr().out.splitlines() == [
        "[prepare] at 0s",  # first line at once
        "[prepare] at 16s",  # 16 s later; the ones at 5 and 14 s are skipped
        "[prepare] at 17s",  # the final line, however soon
    ]


def test_a_terminal_gets_a_live_bar(monkeypatch):
    out = io.StringIO()
    out.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(common.sys, "stdout", out)
    common.progress("analyse", "tasks 1/4", False, 1, 4)
    common.progress("analyse", "tasks 4/4", True, 4, 4)
    text = out.getvalue()
    assert "[analyse]  25%|" in text and "[analyse] 100%|" in text and "tasks 4/4" in text
    assert "analyse" not in common._bars  # closed with the final line


def test_drain_counts_tasks_with_an_eta(clock, capsys, monkeypatch):
    order = ["r1", "r2", "r3"]

    def wait(refs, num_returns):  # noqa: ARG001
        clock.now += 10
        return [order.pop(0)], []

    monkeypatch.setattr(common, "ray", SimpleNamespace(wait=wait, get=lambda r: r.upper()))
    monkeypatch.setattr(common, "THROTTLE_S", 0.0)
    stored = {}
    common.drain({"r1": 0, "r2": 1, "r3": 2}, stored.__setitem__, "analyse", "tasks", 4)
    assert stored == {0: "R1", 1: "R2", 2: "R3"}
    assert capsys.readouterr().out.splitlines() == [
        "[analyse] tasks 2/4 · 10s · ETA 20s",  # one was stored before: 10 s per task, 2 left
        "[analyse] tasks 3/4 · 20s · ETA 10s",
        "[analyse] tasks 4/4 · 30s",
    ]


def test_pretraining_calls_back_once_per_epoch_with_loss_and_seconds():
    base = Config()
    cfg = dataclasses.replace(
        base,
        data=dataclasses.replace(base.data, image_size=32),
        faces=dataclasses.replace(base.faces, size=32),
        model=dataclasses.replace(
            base.model, weights="synthetic_identity", pretrain_epochs=2, pretrain_subjects=3
        ),
    )
    torch.set_num_threads(1)
    rows: list[dict] = []
    state, facts = pretrain.pretrain_backbone(cfg, on_epoch=rows.append)
    assert [(r["epoch"], r["epochs"]) for r in rows] == [(1, 2), (2, 2)]
    assert [r["train_loss"] for r in rows] == [h["train_loss"] for h in facts["history"]]
    assert all("seconds" not in h for h in facts["history"])  # the stored facts are unchanged
    line = features.epoch_line(rows[0])
    assert line.startswith(f"pretraining epoch 1/2 · loss {rows[0]['train_loss']:.4f} · val_acc ")
    assert "s/epoch · ETA " in line and "None" not in line
    assert "ETA" not in features.epoch_line(rows[1])


def test_epoch_and_image_lines():
    row = {"epoch": 3, "epochs": 8, "train_loss": 0.41234, "val_mse": 0.0312, "seconds": 31.2}
    assert features.epoch_line(row) == (
        "pretraining epoch 3/8 · loss 0.4123 · val_mse 0.0312 · 31.2s/epoch · ETA 2m36s"
    )
    assert features.images_line(512, 2048, 8.0) == (
        "trunk features 512/2048 images · 64 images/s · ETA 24s"
    )
    assert features.images_line(0, 2048, 0.0) == "trunk features 0/2048 images · ? images/s · ETA ?"
    assert features.images_line(2048, 2048, 32.0) == "trunk features 2048/2048 images · 64 images/s"


def test_trunk_features_report_images_done_and_give_the_same_numbers():
    cfg = Config()
    model_cfg = dataclasses.replace(cfg.model, backbone="small_cnn", weights="none")
    images = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    seen: list[tuple[int, int]] = []
    with_cb = trunk_features(
        model_cfg, images, batch_size=4, on_batch=lambda d, n: seen.append((d, n))
    )
    plain = trunk_features(model_cfg, images, batch_size=4)
    assert seen == [(4, 10), (8, 10), (10, 10)]
    np.testing.assert_array_equal(with_cb, plain)
