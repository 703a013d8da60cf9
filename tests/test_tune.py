"""The command line fails fast, in one line, on bad data before any stage or Ray starts."""

from fer_ray import pipeline, tune
from fer_ray.errors import DependencyError
from fer_ray.faces import detectors
from tests.conftest import SMOKE
from tests.data import fixtures


def _main(tmp_path, capsys, *overrides):
    sets = [f"output.runs_dir={tmp_path / 'runs'}", f"output.reports_dir={tmp_path / 'rep'}"]
    argv = ["--config", str(SMOKE)]
    for o in (*sets, *overrides):
        argv += ["--set", o]
    rc = tune.main(argv)
    return rc, capsys.readouterr().err


def test_missing_data_root_is_one_line_naming_it(tmp_path, capsys):
    rc, err = _main(tmp_path, capsys, "data.name=sfew", f"data.root={tmp_path / 'nope'}")
    assert rc == 2 and err.startswith("data error: data.root") and str(tmp_path / "nope") in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()


def test_missing_descriptor_sheet_fails_before_training(tmp_path, capsys):
    fixtures.write_sfew_subset(tmp_path / "sfew", n_movies=8)
    rc, err = _main(
        tmp_path,
        capsys,
        "data.name=sfew_subset",
        f"data.root={tmp_path / 'sfew'}",
        "faces.detector=center",
        "descriptors.enabled=true",
    )
    assert rc == 2 and "SFEW.xlsx not found" in err and str(tmp_path / "sfew") in err
    assert not (tmp_path / "runs").exists()


def test_missing_detector_library_says_what_to_install(tmp_path, capsys, monkeypatch):
    def missing(device):
        raise DependencyError("faces.detector=mtcnn needs facenet-pytorch; install it with `pip …`")

    monkeypatch.setattr(detectors, "_load_mtcnn", missing)
    rc, err = _main(tmp_path, capsys, "faces.detector=mtcnn")
    assert rc == 2 and err.startswith("missing dependency: faces.detector=mtcnn needs")


def test_unknown_detector_is_a_config_error_with_did_you_mean(tmp_path, capsys):
    rc, err = _main(tmp_path, capsys, "faces.detector=mtcn")
    assert rc == 2 and err.startswith("config error: --set: faces.detector='mtcn'")
    assert "did you mean 'mtcnn'" in err


def test_changed_data_files_or_sheet_rerun_the_stages_that_read_them(tmp_path):
    from tests.conftest import smoke_config
    from tests.data.descriptor_fixture import write_sfew_sheet

    fixtures.write_sfew_subset(tmp_path / "sfew")
    write_sfew_sheet(tmp_path / "sfew" / "SFEW.xlsx")
    cfg = smoke_config(
        tmp_path,
        "data.name=sfew_subset",
        f"data.root={tmp_path / 'sfew'}",
        "descriptors.enabled=true",
    )

    def fingerprints():
        return pipeline.stage_fingerprints(cfg, pipeline.input_identity(cfg))

    base = fingerprints()
    assert fingerprints() == base  # stable when nothing changed
    new_image = tmp_path / "sfew" / "Happy" / "Zodiac_000000001_00000001.png"
    new_image.write_bytes((tmp_path / "sfew" / "Happy").glob("*.png").__next__().read_bytes())
    changed = fingerprints()
    assert [s for s in base if changed[s] != base[s]] == list(base)  # every stage reads the images
    write_sfew_sheet(tmp_path / "sfew" / "SFEW.xlsx", seed=1)
    again = fingerprints()
    assert [s for s in base if again[s] != changed[s]] == ["descriptors"]
