import pytest

from fer_ray import files


def test_write_bytes_replaces_whole_and_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "deep" / "panel.png"
    files.write_bytes(path, b"\x89PNG old")
    files.write_bytes(path, b"\x89PNG new")
    assert path.read_bytes() == b"\x89PNG new"
    with pytest.raises(TypeError):
        files.write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"\x89PNG new"
    assert [p.name for p in path.parent.iterdir()] == ["panel.png"]  # no temporary left
