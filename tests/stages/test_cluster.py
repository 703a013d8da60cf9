"""Cluster checks that need no cluster: requests against nodes, addresses, autoscaler types."""

import socket
import time

import pytest

from fer_ray import config
from fer_ray.errors import ClusterError
from fer_ray.stages import cluster
from fer_ray.stages.cluster import Node, Request
from tests.conftest import ROOT

SMALL = [Node("a" * 56, "10.0.0.1", 1.0, 0.0), Node("b" * 56, "10.0.0.1", 1.0, 0.0)]


def test_every_request_comes_from_the_config():
    cfg = config.from_dict(
        {},
        [
            "resources.cpus_per_trial=2",
            "resources.gpus_per_trial=0.25",
            "resources.features_cpus=4",
            "resources.cpus_per_task=0.5",
        ],
    )
    reqs = {r.key: (r.cpu, r.gpu) for r in cluster.requests(cfg)}
    assert reqs == {
        "resources.cpus_per_trial/gpus_per_trial": (2.0, 0.25),
        "resources.features_cpus/features_gpus": (4.0, 1.0),  # a GPU job pretrains on a GPU
        "resources.cpus_per_task": (0.5, 0.0),
    }


def test_a_request_larger_than_every_node_fails_naming_the_key_and_the_nodes():
    with pytest.raises(
        ClusterError,
        match=r"resources\.features_cpus/features_gpus asks for 2 CPU in one task, but the "
        r"largest node has 1 CPU and 0 GPU",
    ):
        cluster.plan_requests([Request("resources.features_cpus/features_gpus", 2, 0)], SMALL, [])


def test_a_gpu_where_no_node_has_one_says_so():
    with pytest.raises(ClusterError, match=r"1 CPU \+ 1 GPU.*no node has a GPU"):
        cluster.plan_requests([Request("resources.cpus_per_trial/gpus_per_trial", 1, 1)], SMALL, [])


def test_requests_that_fit_pass_and_autoscaler_types_make_them_wait():
    fits = [Request("k", 1, 0), Request("k", 0.5, 0)]
    assert cluster.plan_requests(fits, SMALL, []) == []
    gpu = Request("resources.cpus_per_trial/gpus_per_trial", 1, 0.25)
    assert cluster.plan_requests([gpu], SMALL, [{"CPU": 8, "GPU": 1}]) == [gpu]
    with pytest.raises(ClusterError, match=r"autoscaler may add 8 CPU \+ 0 GPU nodes"):
        cluster.plan_requests([gpu], SMALL, [{"CPU": 8}])


def test_waiting_gives_up_after_wait_s_naming_the_request():
    calls = []

    def nodes():
        calls.append(1)
        return SMALL

    t0 = time.time()
    with pytest.raises(ClusterError, match=r"no node for k \(1 CPU \+ 1 GPU\) appeared within"):
        cluster.wait_for_nodes([Request("k", 1, 1)], 0.2, nodes, poll_s=0.05)
    assert time.time() - t0 < 5 and len(calls) >= 2


def test_waiting_ends_when_a_fitting_node_appears():
    states = iter([SMALL, SMALL, [*SMALL, Node("c" * 56, "10.0.0.2", 8, 1)]])
    cluster.wait_for_nodes([Request("k", 1, 1)], 10, lambda: next(states), poll_s=0.01)


def test_autoscaler_node_types_from_ray_ups_bootstrap_config(tmp_path):
    boot = tmp_path / "ray_bootstrap_config.yaml"
    boot.write_text(
        "head_node_type: head\navailable_node_types:\n"
        "  head: {resources: {CPU: 0}, max_workers: 0}\n"
        "  gpu: {resources: {CPU: 8, GPU: 1}, max_workers: 4}\n"
        "  off: {resources: {CPU: 4}, max_workers: 0}\n"
    )
    assert cluster.bootstrap_node_types(boot) == [{"CPU": 8.0, "GPU": 1.0}]
    assert cluster.bootstrap_node_types(tmp_path / "none.yaml") == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the socket is


@pytest.mark.parametrize("fmt", ["127.0.0.1:{}", "ray://127.0.0.1:{}"])
def test_an_unreachable_address_fails_fast_naming_it(fmt):
    address = fmt.format(_closed_port())
    cfg = config.from_dict({}, [f"resources.address={address}"])
    t0 = time.time()
    with pytest.raises(ClusterError, match=rf"cannot reach the Ray cluster at {address}"):
        cluster.connect(cfg)
    assert time.time() - t0 < 30


def test_a_dashboard_url_is_not_a_cluster_address():
    cfg = config.from_dict({}, ["resources.address=http://127.0.0.1:8265"])
    with pytest.raises(ClusterError, match="dashboard URL.*ray job submit"):
        cluster.connect(cfg)


def test_ray_address_from_a_job_is_joined(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.1.2.3:6379")
    assert cluster.address_of(config.from_dict({})) == "10.1.2.3:6379"
    cfg = config.from_dict({}, ["resources.address=auto"])
    assert cluster.address_of(cfg) == "auto"  # the config wins


def test_default_requests_shrink_to_the_largest_node_explicit_ones_do_not():
    smoke = config.load(ROOT / "tune_configs" / "smoke.yaml")
    assert smoke.resources.features_cpus == 2 and "resources.features_cpus" not in smoke.explicit
    fitted, notes = cluster.fit_defaults(smoke, SMALL)
    assert fitted.resources.features_cpus == 1 and fitted.resources.cpus_per_trial == 1.0
    assert notes == ["resources.features_cpus: default 2 -> 1 (the largest node has 1 CPU)"]
    assert fitted.clean == smoke.clean and fitted.explicit == smoke.explicit
    cluster.plan_requests(cluster.requests(fitted), SMALL, [])  # now every request fits
    asked = config.load(ROOT / "tune_configs" / "smoke.yaml", ["resources.features_cpus=2"])
    kept, notes = cluster.fit_defaults(asked, SMALL)
    assert kept.resources.features_cpus == 2 and notes == []
    with pytest.raises(ClusterError, match="features_cpus/features_gpus asks for 2 CPU"):
        cluster.plan_requests(cluster.requests(kept), SMALL, [])
    assert cluster.fit_defaults(smoke, [Node("c" * 56, "10.0.0.2", 4.0, 0.0)]) == (smoke, [])
