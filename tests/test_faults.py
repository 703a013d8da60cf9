"""Damaged stored files and odd input files, by fault family (issue 21, items 2 and 7).

Each family: what fer_ray does with the fault (the one line it prints, or the recovery).
The guarded readers, caches, checkpoints, predict, the report and the loaders are tested
without Ray; one slow test damages the caches of a finished smoke run and reruns it.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fer_ray import config, files, layout
from fer_ray.data.loaders import base
from fer_ray.errors import StoredFileError
from fer_ray.faces.cache import CropCache
from fer_ray.models.pretrain import load_pretrained, store_pretrained
from fer_ray.train.checkpoint import read_state
from fer_ray.train.features import load_cached, store_cached
from tests.conftest import copy_of, smoke_config


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut ``path`` as a full disk or a killed copy would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def one_line(text: str) -> str:
    lines = [x for x in text.splitlines() if x.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# --- the guarded readers: one StoredFileError naming the file and what is wrong ------------


def test_guarded_readers_name_the_file_and_what_is_wrong(tmp_path):
    j, y, c = tmp_path / "a.json", tmp_path / "config.yaml", tmp_path / "t.csv"
    j.write_text('{"n": 1, "items": [')
    y.write_text("name: x\n  seed: [1, 2\n")
    c.write_text("")
    npz, pt = tmp_path / "x.npz", tmp_path / "x.pt"
    files.savez(npz, a=np.arange(1000))
    files.torch_save(pt, {"w": torch.ones(100)})
    truncate(npz)
    truncate(pt)
    for read, path, what in [
        (files.read_json, j, "JSON file"),
        (files.read_yaml, y, "YAML file"),
        (files.read_csv, c, "CSV file"),
        (files.load_npz, npz, "numpy .npz archive"),
        (files.torch_load, pt, "PyTorch file"),
    ]:
        with pytest.raises(StoredFileError) as e:
            read(path)
        assert str(e.value).startswith(f"{path} is damaged: not a readable {what} (")
        assert e.value.path == path and e.value.kind == "damaged file"


def test_missing_arrays_are_damage_and_missing_files_are_not(tmp_path):
    npz = tmp_path / "x.npz"
    files.savez(npz, a=np.zeros(3))
    with pytest.raises(StoredFileError, match=r"arrays \['b'\] are missing"):
        files.load_npz(npz, ("a", "b"))
    assert files.load_npz(npz, ("a",))["a"].tolist() == [0, 0, 0]
    with pytest.raises(FileNotFoundError):
        files.read_json(tmp_path / "absent.json")


def test_a_flipped_byte_inside_an_npz_member_fails_its_crc(tmp_path):
    npz = tmp_path / "x.npz"
    np.savez(npz, a=np.arange(4000, dtype=np.int64))  # stored, not compressed: bytes as-is
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(StoredFileError, match="CRC"):
        files.load_npz(npz)


# --- family: truncated cache entry (crops, trunk features, stand-in weights) ---------------


def _chunk(n: int = 4) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    return (
        rng.integers(0, 255, (n, 48, 48, 3), dtype=np.uint8),
        np.zeros(n, bool),
        np.tile(np.array([1, 2, 40, 41]), (n, 1)),
        np.zeros(n, bool),
    )


def test_a_truncated_crop_chunk_is_moved_aside_and_counted(tmp_path, capsys):
    cache = CropCache(tmp_path, "k")
    cache.put_chunk(0, *_chunk())
    cache.put_chunk(1, *_chunk())
    truncate(cache.chunk_path(1))
    assert cache.has_chunk(0) and not cache.has_chunk(1)
    line = one_line(capsys.readouterr().out)
    path = cache.chunk_path(1)
    assert line.startswith(f"[damaged] crop cache chunk {path} moved aside to chunk_00001.npz")
    assert line.endswith("; recomputing it")
    assert cache.damaged == ["chunk_00001.npz"]
    assert not path.exists() and path.with_name("chunk_00001.npz.damaged").is_file()
    cache.put_chunk(1, *_chunk())  # what prepare does for a chunk it lacks
    assert cache.has_chunk(1)
    for i in (0, 1):
        assert np.array_equal(cache.get_chunk(i)[0], _chunk()[0])


def test_a_truncated_feature_entry_is_moved_aside_and_recomputed(tmp_path, capsys):
    path = tmp_path / "features" / "abc.npz"
    x = np.arange(2 * 64 * 3 * 3, dtype=np.float32).reshape(2, 64, 3, 3)
    store_cached(path, x)
    assert np.array_equal(load_cached(path), x)
    truncate(path)
    assert load_cached(path) is None  # the caller computes and stores it again
    line = one_line(capsys.readouterr().out)
    assert line.startswith(f"[damaged] feature cache entry {path} moved aside to abc.npz.damaged")
    assert load_cached(path) is None and capsys.readouterr().out == ""  # absent now: no line
    store_cached(path, x)
    assert np.array_equal(load_cached(path), x)


def test_damaged_stand_in_weights_heal_in_a_run_and_are_named_in_predict(tmp_path, capsys):
    state, facts = {"conv1.weight": torch.ones(4, 3, 3, 3)}, {"objective": "au"}
    store_pretrained(tmp_path, "k1", state, facts)
    truncate(tmp_path / "k1.pt")
    with pytest.raises(StoredFileError, match=f"^{tmp_path / 'k1.pt'} is damaged"):
        load_pretrained(tmp_path, "k1", heal=False)
    assert load_pretrained(tmp_path, "k1") is None  # the stage pretrains it again
    assert "[damaged] stand-in weights" in capsys.readouterr().out
    assert (tmp_path / "k1.pt.damaged").is_file() and not (tmp_path / "k1.pt").exists()
    files.torch_save(tmp_path / "k2.pt", {"state": state})  # loads, but lacks its facts
    assert load_pretrained(tmp_path, "k2") is None


# --- family: truncated Tune checkpoint ------------------------------------------------------


def _snapshot() -> dict:
    return {"format": 2, "phase": 0, "epoch": 2, "history": [{"step": 1}, {"step": 2}],
            "best": None, "module": {"w": torch.ones(3)}, "optim": {"state": {}}}  # fmt: skip


def test_a_truncated_checkpoint_restarts_the_trial_once_naming_the_file(tmp_path, capsys):
    path = tmp_path / "checkpoint_000001" / "state.pt"
    files.torch_save(path, _snapshot())
    assert read_state(path)["epoch"] == 2
    truncate(path)
    assert read_state(path) is None  # the trial starts from its first epoch
    line = one_line(capsys.readouterr().out)
    assert line.startswith(f"[damaged] trial checkpoint {path} moved aside to state.pt.damaged")
    assert line.endswith("; the trial starts again from its first epoch")
    assert read_state(path) is None  # a later restart or --resume: nothing to trip on
    assert capsys.readouterr().out == ""


def test_restore_state_reads_the_trials_checkpoint_through_the_guard(tmp_path, monkeypatch):
    from ray import tune

    from fer_ray.stages import common

    d = tmp_path / "checkpoint_000003"
    files.torch_save(d / "state.pt", _snapshot())
    monkeypatch.setattr(tune, "get_checkpoint", lambda: tune.Checkpoint.from_directory(d))
    assert common.restore_state()["history"] == [{"step": 1}, {"step": 2}]
    truncate(d / "state.pt")
    assert common.restore_state() is None
    assert common.restore_state() is None
    assert sorted(p.name for p in d.iterdir()) == ["state.pt.damaged"]


def test_a_checkpoint_without_the_snapshot_keys_is_damage(tmp_path):
    path = tmp_path / "state.pt"
    files.torch_save(path, {"phase": 0})
    assert read_state(path) is None
    assert (tmp_path / "state.pt.damaged").is_file()


# --- family: damaged model.pt in predict ------------------------------------------------------


def _finished_run(tmp_path: Path) -> Path:
    """What predict reads of a finished run, with one (real) member of the run's model."""
    from fer_ray.models.factory import create_model

    run = tmp_path / "runs" / "r"
    cfg = config.from_dict({}, [f"output.runs_dir={tmp_path / 'runs'}", "model.weights=none"])
    run.mkdir(parents=True)
    config.save(cfg, run / layout.CONFIG)
    files.write_json(run / layout.Ensemble.DIR / layout.DONE, {})
    files.write_json(run / layout.Prepare.DIR / layout.SUMMARY, {"class_names": ["a", "b"]})
    files.write_json(run / layout.Grid.DIR / layout.Grid.CHOSEN, {"hidden": 8})
    model = create_model(cfg.model, 2, 8, head_seed=0)
    member = run / layout.Ensemble.DIR / layout.Ensemble.MEMBERS_DIR / "member_00"
    files.torch_save(member / layout.Ensemble.MODEL, model.tail.state_dict())
    return run


def test_predict_on_a_truncated_member_model_is_one_line_naming_it(tmp_path, capsys):
    from fer_ray import predict

    run = _finished_run(tmp_path)
    assert len(predict.load_run(run).members) == 1  # undamaged, it loads
    model = run / "ensemble" / "members" / "member_00" / "model.pt"
    truncate(model)
    assert predict.main(["--run", str(run), "face.png"]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"damaged file: {model} is damaged: not a readable PyTorch file (")
    files.torch_save(model, {"unrelated.weight": torch.ones(2)})  # loads, does not fit
    assert predict.main(["--run", str(run), "face.png"]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"damaged file: {model} is damaged: not a readable state dict")


# --- family: garbled report inputs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "content", "what"),
    [
        ("config.yaml", "name: fake\n  seed: [0\n", "YAML file"),
        ("run.json", '{"python": "3.11", "git": {', "JSON file"),
        ("grid/trials.csv", "", "CSV file"),
        ("prepare/summary.json", "", "JSON file"),
    ],
)
def test_report_on_a_garbled_file_is_one_line_naming_it(tmp_path, capsys, rel, content, what):
    from fer_ray.report.__main__ import main
    from tests.report.fake_run import write_run

    run = write_run(tmp_path / "runs" / "fake")
    (run / rel).write_text(content)
    assert main([str(run), "--out", str(tmp_path / "report")]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"damaged file: {run / rel} is damaged: not a readable {what} (")


def test_report_on_a_truncated_member_npz_is_one_line_naming_it(tmp_path, capsys):
    from fer_ray.report.__main__ import main
    from tests.report.fake_run import write_run

    run = write_run(tmp_path / "runs" / "fake")
    member = run / "ensemble" / "members" / "member_00" / "member.npz"
    truncate(member)
    assert main([str(run), "--out", str(tmp_path / "report")]) == 2
    assert one_line(capsys.readouterr().err).startswith(f"damaged file: {member} is damaged")


# --- family: odd files (names, huge headers, webp, formats fer_ray does not read) ------------


def _png(path: Path, seed: int) -> None:
    img = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(path.suffix, img)
    assert ok
    path.write_bytes(buf.tobytes())


def _huge_header_png(path: Path, side: int = 100_000) -> None:
    """A 100-byte PNG whose header claims side x side pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )  # fmt: skip


@pytest.fixture
def odd_tree(tmp_path: Path) -> Path:
    """Two class folders holding a Latin-1 file name, a .webp, a huge-header PNG and files
    of formats fer_ray does not read."""
    root = tmp_path / "odd"
    for cls in ("happy", "sad"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            _png(root / cls / f"S{i:03d}_{cls}.png", i)
    latin1 = os.fsdecode(b"S009_caf\xe9.png")  # a name that is not valid UTF-8
    _png(root / "happy" / latin1, 9)
    _png(root / "sad" / "S008_x.webp", 8)
    _huge_header_png(root / "sad" / "S007_huge.png")
    (root / "sad" / "notes.txt").write_text("not an image")
    (root / "happy" / "anim.gif").write_bytes(b"GIF89a")
    return root


def test_a_latin1_file_name_is_an_item_by_its_safe_name_and_still_reads(odd_tree):
    from fer_ray.data import load_manifest

    m = load_manifest("imagefolder", odd_tree)
    item = str(odd_tree / "happy" / "S009_caf\\xe9.png")
    assert item in set(m["item"])
    "\n".join(m["item"]).encode()  # what the crop cache key and the manifest CSV need
    assert m.loc[m["item"] == item, "group"].item() == "S009"
    assert base.read_image(item).shape == (32, 32, 3)
    assert base.fs_path(item) == os.fsdecode(bytes(odd_tree / "happy") + b"/S009_caf\xe9.png")
    assert base.safe_name("plain_é.png") == "plain_é.png"  # valid UTF-8 unchanged


def test_prepare_crops_an_odd_tree_counting_only_the_huge_png_unreadable(odd_tree, tmp_path):
    """What prepare's crop tasks and its cache key do with the odd tree, without Ray."""
    from fer_ray.config import DataConfig
    from fer_ray.data.datasets import create_source, read_manifest
    from fer_ray.faces.crop import crop_chunk

    cfg = DataConfig(name="imagefolder", root=str(odd_tree))
    source = create_source(cfg)
    m, _ = read_manifest(cfg, source)
    before = source.identity()["files"]
    latin1 = base.fs_path(odd_tree / "happy" / "S009_caf\\xe9.png")
    os.utime(latin1, ns=(1_000_000_000, 1_000_000_000))
    assert base.fingerprint(odd_tree, m["item"]) != before  # it stats the Latin-1 file
    m.to_csv(tmp_path / "manifest.csv", index=False)  # as prepare stores it
    crops, _, _, unreadable = crop_chunk(source, m["item"].tolist(), "center", 0.0, 24)
    assert m.loc[unreadable, "item"].tolist() == [str(odd_tree / "sad" / "S007_huge.png")]
    assert crops.shape == (9, 24, 24, 3) and crops[~unreadable].any(axis=(1, 2, 3)).all()
    assert m.attrs["skipped_files"] == [
        str(odd_tree / "happy" / "anim.gif"),
        str(odd_tree / "sad" / "notes.txt"),
    ]


def test_a_huge_header_png_is_unreadable_and_says_why(odd_tree):
    path = odd_tree / "sad" / "S007_huge.png"
    image, problem = base.read_image_checked(path)
    assert image is None
    assert problem == "its header claims 10,000,000,000 pixels, over the limit of 64,000,000"


def test_predict_on_a_huge_header_png_is_one_line_naming_it(odd_tree):
    from fer_ray.errors import DataError
    from fer_ray.predict import read_images

    path = str(odd_tree / "sad" / "S007_huge.png")
    with pytest.raises(DataError, match=f"^{path}: cannot read this image \\(its header claims"):
        read_images([path])


def test_webp_is_read(odd_tree):
    path = odd_tree / "sad" / "S008_x.webp"
    assert path in base.images_in(odd_tree / "sad")
    assert base.read_image(path).shape == (32, 32, 3)


def test_the_data_check_names_odd_files_and_counts_unreadable_ones(odd_tree, capsys):
    from fer_ray.data.__main__ import main

    assert main(["imagefolder", str(odd_tree), "--read"]) == 0
    out = capsys.readouterr().out
    assert "9 images, 2 classes" in out
    skipped = out.split("files fer_ray does not read")[1].splitlines()
    assert skipped[0].endswith(": 2")
    assert skipped[1:3] == [
        f"  {odd_tree / 'happy' / 'anim.gif'}",
        f"  {odd_tree / 'sad' / 'notes.txt'}",
    ]
    assert f"unreadable images: 1\n  {odd_tree / 'sad' / 'S007_huge.png'}" in out
    assert str(odd_tree / "happy" / "S009_caf\\xe9.png") not in out.split("unreadable")[1]


def test_the_report_names_files_it_did_not_read(tmp_path):
    from fer_ray.report.build import build_report
    from tests.report.fake_run import write_run

    run = write_run(tmp_path / "runs" / "fake")
    summary = files.read_json(run / "prepare" / "summary.json")
    summary |= {"skipped_files": 2, "skipped_items": ["/d/happy/anim.gif", "/d/sad/notes.txt"]}
    files.write_json(run / "prepare" / "summary.json", summary)
    out = build_report(run, tmp_path / "report")
    md = (out / "report.md").read_text()
    assert (
        "**2 files in formats fer_ray does not read** (not images to it), left out: "
        "`/d/happy/anim.gif`, `/d/sad/notes.txt`"
    ) in md


# --- one smoke run, its caches damaged, rerun: the same tables ------------------------------


@pytest.mark.slow
def test_damaged_cache_entries_are_recomputed_and_the_tables_match(smoke_done, tmp_path, capfd):
    """The session's smoke run's caches, copied and damaged, then a run on them (no analyses):
    every damaged entry is named, moved aside and recomputed; the tables are the first run's."""
    from fer_ray.pipeline import run_pipeline

    cache = copy_of(smoke_done / "runs" / ".cache", tmp_path / "cache")
    (chunk,) = (cache / "crops").glob("*/chunk_00000.npz")
    (feature,) = (cache / "features").glob("*/shard_*.npz")  # one file per feature shard
    (weights,) = (cache / "weights").glob("*.pt")
    for path in (chunk, feature, weights):
        truncate(path)
    capfd.readouterr()
    run_pipeline(
        smoke_config(tmp_path, "analyse.enabled=false", f"faces.cache_dir={cache / 'crops'}")
    )
    out = capfd.readouterr().out
    for what, path in [("crop cache chunk", chunk), ("feature cache entry", feature),
                       ("stand-in weights", weights)]:  # fmt: skip
        assert f"[damaged] {what} {path} moved aside to {path.name}.damaged" in out, (what, out)
        assert path.is_file() and path.with_name(path.name + ".damaged").is_file()
    first, second = smoke_done / "runs" / "smoke", tmp_path / "runs" / "smoke"
    summary = files.read_json(second / "prepare" / "summary.json")
    assert summary["cache_damaged"] == ["chunk_00000.npz"]
    for table in ("prepare/manifest.csv", "grid/trials.csv", "ensemble/members.csv"):
        assert (second / table).read_text() == (first / table).read_text(), table
    assert json.loads((second / "grid" / "features.json").read_text())["feature_cache_disk"] == (
        "written"
    )
