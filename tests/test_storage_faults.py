"""A full disk or a read-only folder is one line naming the path, never a traceback, and
nothing is marked done that is not."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest

from fer_ray import files
from fer_ray.errors import StorageError
from fer_ray.tune import main
from tests.conftest import SMOKE


def _refuse(code: int):
    def mkstemp(*args, **kwargs):
        raise OSError(code, os.strerror(code), kwargs.get("dir", "?"))

    return mkstemp


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EDQUOT])
def test_a_refused_write_is_a_storage_error_and_leaves_the_old_file(tmp_path, monkeypatch, code):
    target = tmp_path / "done.json"
    files.write_json(target, {"fingerprint": "old"})
    monkeypatch.setattr(tempfile, "mkstemp", _refuse(code))
    with pytest.raises(StorageError, match=f"cannot write {target}: {os.strerror(code)}"):
        files.write_json(target, {"fingerprint": "new"})
    assert files.read_json(target) == {"fingerprint": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["done.json"]  # no temporary left behind


def test_a_bug_is_not_a_storage_error(tmp_path):
    with pytest.raises(TypeError):
        files.write_bytes(tmp_path / "x.bin", "text, not bytes")  # the code's fault
    assert files.as_storage_error(KeyError("x")) is None


def test_a_full_disk_stops_the_run_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "mkstemp", _refuse(errno.ENOSPC))
    rc = main(["-c", str(SMOKE), "--set", f"output.runs_dir={tmp_path / 'runs'}",
               "--set", f"output.reports_dir={tmp_path / 'reports'}"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("storage error: cannot write ") and "No space left on device" in err
    assert "--resume" in err
    assert not any(Path(tmp_path / "runs").rglob("done.json"))
