from fer_ray import files
from fer_ray.analysis import per_model
from fer_ray.registry import Registry
from fer_ray.stages import analyse


def test_a_registered_analysis_joins_the_stage_task_list(tmp_path, monkeypatch):
    registry = Registry("per-model analysis", "analyse")
    for name in per_model.ANALYSES:
        registry.register(name, per_model.ANALYSES.get(name))
    registry.register("extra", lambda m, s, seed: {"n": len(m.labels)})
    monkeypatch.setattr(per_model, "ANALYSES", registry)
    standard = ["magnitude", "angles", "baselines", "sweep_random", "sweep_magnitude", "metrics"]
    assert analyse.analyses() == [*standard, "extra"]
    for name in standard:  # member 0 finished every standard analysis before "extra" existed
        files.write_json(tmp_path / f"00_{name}.json", {})
    files.write_json(tmp_path / "01_angles.json", {})
    assert analyse.missing_tasks(tmp_path, 2) == {
        0: ["extra"],
        1: [n for n in standard if n != "angles"] + ["extra"],
    }
    files.write_json(tmp_path / "00_extra.json", {})
    assert 0 not in analyse.missing_tasks(tmp_path, 2)
