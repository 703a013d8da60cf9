"""The shipped cluster files pass Ray's own validation; the KubeRay manifest has what it needs."""

import shlex
from pathlib import Path

import pytest
import yaml

from fer_ray import shipped_configs, tune
from tests.conftest import ROOT

LAUNCHER = ["cluster.yaml", "cluster.local.yaml"]


@pytest.mark.parametrize("name", LAUNCHER)
def test_ray_validates_the_launcher_config(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((ROOT / name).read_text())
    validate_config(prepare_config(raw))  # jsonschema + Ray's own consistency checks
    setup = " ".join(raw["setup_commands"])
    assert "[faces]" in setup  # every node gets the detectors too
    assert not any(k in (ROOT / name).read_text() for k in ("aws_access_key", "password:"))


def test_cloud_config_autoscales_gpu_workers_and_keeps_trials_off_the_head():
    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    types = raw["available_node_types"]
    assert types[raw["head_node_type"]]["resources"]["CPU"] == 0
    gpu = [t for n, t in types.items() if t.get("resources", {}).get("GPU")]
    assert gpu and gpu[0]["max_workers"] > gpu[0].get("min_workers", 0)


def test_local_config_names_head_and_workers():
    raw = yaml.safe_load((ROOT / "cluster.local.yaml").read_text())
    assert raw["provider"]["type"] == "local"
    assert raw["provider"]["head_ip"] and raw["provider"]["worker_ips"]


def test_kuberay_rayjob_manifest_has_the_required_keys():
    job = yaml.safe_load((Path(ROOT) / "k8s" / "rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    assert spec["entrypoint"].startswith("fer-ray tune --resume auto -c sfew_paper")
    assert spec["shutdownAfterJobFinishes"] is True
    runtime = yaml.safe_load(spec["runtimeEnvYAML"])
    assert runtime["working_dir"]
    cluster = spec["rayClusterSpec"]
    head = cluster["headGroupSpec"]
    assert "rayStartParams" in head and head["template"]["spec"]["containers"][0]["image"]
    (worker,) = cluster["workerGroupSpecs"]
    assert worker["groupName"] and "rayStartParams" in worker
    limits = worker["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"
    assert "secretKeyRef" not in spec["runtimeEnvYAML"]  # credentials come from a Secret


def test_kuberay_rayjob_gives_every_node_fer_ray_and_its_dependencies():
    from ray.runtime_env import RuntimeEnv

    spec = yaml.safe_load((Path(ROOT) / "k8s" / "rayjob.yaml").read_text())["spec"]
    runtime = yaml.safe_load(spec["runtimeEnvYAML"])
    env = RuntimeEnv(**runtime)  # Ray's own validation of the runtime environment
    (package,) = env.pip_config()["packages"]
    name, _, url = (part.strip() for part in package.partition("@"))
    assert name == "fer_ray[faces]"  # the package with its dependencies and the detectors
    assert url == runtime["working_dir"]  # the same code as the driver's working dir
    assert "pip install" not in spec["entrypoint"]  # not the head alone: every node, by Ray
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["fer-ray", "tune"]  # the installed command, with options it has
    args = tune.parse_args(argv[2:])
    assert args.resume == "auto" and shipped_configs.find(args.config).name == "sfew_paper.yaml"


def test_rayjob_keeps_the_run_on_the_shared_volume():
    """A retried job gets a new head pod: the run must be on the volume every pod mounts."""
    from fer_ray import config

    spec = yaml.safe_load((Path(ROOT) / "k8s" / "rayjob.yaml").read_text())["spec"]
    args = tune.parse_args(shlex.split(spec["entrypoint"])[2:])
    cfg = config.load(shipped_configs.find(args.config), args.overrides)
    mounts = {
        m["mountPath"]
        for c in spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"]
        for m in c["volumeMounts"]
    }
    for folder in (cfg.output.runs_dir, cfg.output.reports_dir):
        assert any(Path(folder).is_relative_to(m) for m in mounts), folder
