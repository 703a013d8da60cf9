"""The Ray cluster: join or start it, check every request against its nodes, name the nodes.

An infeasible Ray request (more CPUs than any node has, a GPU where there is none) waits
forever, silently; an unreachable address hangs in ``ray.init``. Both are checked here, before
any stage, so they fail at once with one line naming the config key and what the cluster has.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import yaml

from fer_ray.config import Config
from fer_ray.errors import ClusterError

BOOTSTRAP = Path("~/ray_bootstrap_config.yaml")  # written on the head by `ray up`


@dataclass(frozen=True)
class Node:
    node_id: str
    ip: str
    cpu: float
    gpu: float


@dataclass(frozen=True)
class Request:
    key: str  # the config key(s) that set it, for the error message
    cpu: float
    gpu: float

    def fits(self, cpu: float, gpu: float) -> bool:
        return self.cpu <= cpu + 1e-9 and self.gpu <= gpu + 1e-9

    def text(self) -> str:
        return f"{self.cpu:g} CPU" + (f" + {self.gpu:g} GPU" if self.gpu else "")


def address_of(cfg: Config) -> str | None:
    """The cluster to join: ``resources.address``, else ``RAY_ADDRESS`` (set inside a Ray job)."""
    return cfg.resources.address or os.environ.get("RAY_ADDRESS") or None


def _probe(address: str, timeout: float) -> None:
    """Fail within ``timeout`` when nothing listens at ``address`` (ray.init would hang)."""
    if address == "auto":
        return
    if address.startswith(("http://", "https://")):
        raise ClusterError(
            f"resources.address={address!r} is a dashboard URL; give the cluster's address "
            "(head:6379, ray://head:10001 or auto). `ray job submit --address <dashboard URL>`"
            " is the way to send a run to the dashboard"
        )
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(
            f"resources.address={address!r}: expected host:port, ray://host:port or auto"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} within {timeout:g} s ({e.strerror or e});"
            " check resources.address (or RAY_ADDRESS) and that the head is up"
        ) from None


def connect(cfg: Config) -> bool:
    """Join the configured cluster or start a local Ray; True when this call started it.

    When joining, local-only settings (``resources.num_cpus``, the dashboard) are not passed:
    Ray refuses them for an existing cluster, which is what broke ``ray job submit``.
    """
    if ray.is_initialized():
        return False
    res = cfg.resources
    address = address_of(cfg)
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    in_job = "RAY_JOB_CONFIG_JSON_ENV_VAR" in os.environ or "RAY_JOB_ID" in os.environ
    if not in_job:  # a job's workers get the job's runtime env; merging is Ray's to refuse
        kwargs["runtime_env"] = {"env_vars": {"RAY_CHDIR_TO_TRIAL_DIR": "0"}}
    if address:
        _probe(address, res.connect_timeout_s)
        try:
            ctx = ray.init(address=address, **kwargs)
        except (ConnectionError, TimeoutError, RuntimeError) as e:
            raise ClusterError(f"cannot join the Ray cluster at {address}: {e}") from None
        if res.num_cpus is not None:
            print(
                f"ray: joined {address}; resources.num_cpus applies to local Ray only", flush=True
            )
    else:
        ctx = ray.init(
            address="local",  # a new local Ray, even when `ray start` left one running here
            num_cpus=res.num_cpus,
            include_dashboard=res.dashboard,
            dashboard_host=res.dashboard_host,
            **kwargs,
        )
    url = getattr(ctx, "dashboard_url", None)
    nodes = alive_nodes()
    print(
        f"ray: {len(nodes)} node(s), {sum(n.cpu for n in nodes):g} CPU, "
        f"{sum(n.gpu for n in nodes):g} GPU" + (f" · dashboard http://{url}" if url else ""),
        flush=True,
    )
    note = dashboard_token_note(url, os.environ.get("RAY_AUTH_MODE"), joined=bool(address))
    if note:
        print(note, flush=True)
    return True


def dashboard_token_note(url: str | None, auth_mode: str | None, joined: bool) -> str | None:
    """How to open the dashboard when Ray's token authentication is on, else None.

    Ray 2.60 turns it on for every new local Ray (``ray.init`` sets ``RAY_AUTH_MODE=token``
    and keeps the token in ``~/.ray/auth_token``) and ``ray start --head`` does the same on a
    cluster's head: the dashboard then opens on an "Authentication Token Required" dialog and
    its API answers 401 without the token, and nothing on screen says where the token is.
    """
    if not url or (auth_mode or "").lower() != "token":
        return None
    where = (
        "the cluster's token: run `ray get-auth-token` on its head (or copy the head's "
        "~/.ray/auth_token)"
        if joined
        else "run `ray get-auth-token` (it prints ~/.ray/auth_token)"
    )
    return (
        f"ray: the dashboard asks for a token (Ray's token authentication is on): {where}, "
        "paste it into the dialog; for its API send the header 'Authorization: Bearer <token>'"
    )


def alive_nodes() -> list[Node]:
    return [
        Node(n["NodeID"], n["NodeManagerAddress"], n["Resources"].get("CPU", 0.0),
             n["Resources"].get("GPU", 0.0))
        for n in ray.nodes()
        if n.get("Alive")
    ]  # fmt: skip


def node_info() -> dict[str, str]:
    """Where the calling task or trial runs: Ray's node id (unique per node, also when many
    nodes share one IP) and the node's IP."""
    if not ray.is_initialized():  # asking Ray's context would start a Ray here
        return {"node_id": "local", "node_ip": "local"}
    try:
        ctx = ray.get_runtime_context()
        return {"node_id": ctx.get_node_id(), "node_ip": ray.util.get_node_ip_address()}
    except Exception:  # noqa: BLE001 - outside Ray (plain tests)
        return {"node_id": "local", "node_ip": "local"}


def requests(cfg: Config) -> list[Request]:
    """Every distinct resource request a run makes, with the keys that set it."""
    r = cfg.resources
    features_gpu = r.features_gpus if r.features_gpus is not None else float(r.gpus_per_trial > 0)
    return [
        Request("resources.cpus_per_trial/gpus_per_trial", r.cpus_per_trial, r.gpus_per_trial),
        Request("resources.features_cpus/features_gpus", float(r.features_cpus), features_gpu),
        Request("resources.cpus_per_task", r.cpus_per_task, 0.0),
    ]


def bootstrap_node_types(path: Path = BOOTSTRAP) -> list[dict[str, float]]:
    """Worker types an autoscaler may add, read from ``ray up``'s config on the head."""
    p = path.expanduser()
    if not p.is_file():
        return []
    try:
        conf = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError:
        return []
    head = conf.get("head_node_type")
    types = conf.get("available_node_types") or {}
    return [
        {k: float(v) for k, v in (t.get("resources") or {}).items() if k in ("CPU", "GPU")}
        for name, t in types.items()
        if name != head and int(t.get("max_workers", 1)) > 0
    ]


def plan_requests(
    reqs: Sequence[Request], nodes: Sequence[Node], node_types: Sequence[dict[str, float]]
) -> list[Request]:
    """Requests that must wait for an autoscaler (fit no node now, but a node type it may add);
    raises ``ClusterError`` for one that fits neither."""
    waiting = []
    for req in reqs:
        if any(req.fits(n.cpu, n.gpu) for n in nodes):
            continue
        if any(req.fits(t.get("CPU", 0.0), t.get("GPU", 0.0)) for t in node_types):
            waiting.append(req)
            continue
        largest = max(nodes, key=lambda n: (n.gpu, n.cpu), default=None)
        have = (
            f"the largest node has {largest.cpu:g} CPU and {largest.gpu:g} GPU"
            if largest
            else "the cluster has no alive node"
        )
        total_gpu = sum(n.gpu for n in nodes)
        extra = (
            " (no node has a GPU; set the GPU request to 0)" if req.gpu and not total_gpu else ""
        )
        scale = (
            f"; the autoscaler may add {', '.join(_type_text(t) for t in node_types)}"
            if node_types
            else ""
        )
        raise ClusterError(
            f"{req.key} asks for {req.text()} in one task, but {have}{extra}{scale}: "
            "a request must fit one node, or Ray waits forever"
        )
    return waiting


def _type_text(t: dict[str, float]) -> str:
    return f"{t.get('CPU', 0):g} CPU + {t.get('GPU', 0):g} GPU nodes"


def wait_for_nodes(
    waiting: Sequence[Request],
    wait_s: float,
    list_nodes: Callable[[], list[Node]] = alive_nodes,
    poll_s: float = 5.0,
) -> None:
    """Ask the autoscaler for a node per waiting request and poll until each fits one."""
    if not waiting:
        return
    try:
        from ray.autoscaler.sdk import request_resources

        request_resources(bundles=[{"CPU": r.cpu, "GPU": r.gpu} for r in waiting])
    except Exception:  # noqa: BLE001 - no autoscaler: polling still tells the truth
        pass
    todo = list(waiting)
    deadline = time.time() + wait_s
    print(
        "ray: waiting for the autoscaler to add a node for "
        + ", ".join(f"{r.key} ({r.text()})" for r in todo)
        + f" (up to resources.wait_s={wait_s:g}s)",
        flush=True,
    )
    while todo:
        nodes = list_nodes()
        todo = [r for r in todo if not any(r.fits(n.cpu, n.gpu) for n in nodes)]
        if not todo:
            return
        if time.time() >= deadline:
            raise ClusterError(
                f"no node for {todo[0].key} ({todo[0].text()}) appeared within "
                f"resources.wait_s={wait_s:g}s; check the autoscaler (ray status) or lower "
                "the request"
            )
        time.sleep(poll_s)


@ray.remote(num_cpus=0)
def _storage_probe(uri: str, marker: str) -> tuple[str, str | None]:
    """Run on one node: read the driver's marker and write our own, through the same URI."""
    import pyarrow.fs as pafs

    node = ray.get_runtime_context().get_node_id()
    try:
        fs, base = pafs.FileSystem.from_uri(uri)
        with fs.open_input_stream(f"{base}/{marker}") as f:
            f.read()
        with fs.open_output_stream(f"{base}/{marker}.{node}") as f:
            f.write(b"ok")
        return node, None
    except Exception as e:  # noqa: BLE001 - any failure means "not shared"
        return node, f"{type(e).__name__}: {e}"


def unshared(storage: str, nodes: Sequence[Node], timeout: float = 60.0) -> list[str]:
    """Why ``storage`` (a folder or a URI) is not read and written alike by every node in
    ``nodes``, one entry per node that failed; empty when it is shared. One small task per
    node reads the driver's marker and writes its own."""
    import pyarrow.fs as pafs
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    uri = storage if "://" in storage else Path(storage).resolve().as_uri()
    fs, base = pafs.FileSystem.from_uri(uri)
    fs.create_dir(base, recursive=True)
    marker = f".fer_ray_shared_{uuid.uuid4().hex[:8]}"
    with fs.open_output_stream(f"{base}/{marker}") as f:
        f.write(b"driver")
    try:
        refs = [
            _storage_probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n.node_id, soft=False)
            ).remote(uri, marker)
            for n in nodes
        ]
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        bad = [f"{node[:8]}: {err}" for node, err in ray.get(ready) if err]
        if pending:
            bad.append(f"{len(pending)} node(s) did not answer within {timeout:g}s")
        return bad
    finally:
        for info in fs.get_file_info(pafs.FileSelector(base)):
            if info.base_name.startswith(marker):
                fs.delete_file(info.path)


def check_shared_storage(storage: str, nodes: Sequence[Node], timeout: float = 60.0) -> None:
    """With more than one node, every node must read and write the Tune storage path."""
    if len(nodes) < 2:
        return
    bad = unshared(storage, nodes, timeout)
    if bad:
        raise ClusterError(
            f"output.storage_path ({storage}) is not shared by every node: "
            + "; ".join(bad)
            + ". Use shared storage (an NFS path mounted on every node, or s3://...)"
        )


def cache_shared(folder: Path) -> bool:
    """Whether every node reads and writes the cache ``folder``: then tasks read and store
    cache entries themselves and no pixel or feature passes through the driver. True without
    asking when the only node is the driver's own (a local Ray); on a cluster, asked once per
    stage (a node without the mount makes it False: entries then go through the driver).
    False without a Ray: the caller reads a complete cache itself, as it did without one."""
    if not ray.is_initialized():
        return False
    nodes = alive_nodes()
    with contextlib.suppress(Exception):  # a Ray Client driver has no node of its own here
        if len(nodes) == 1 and nodes[0].node_id == ray.get_runtime_context().get_node_id():
            return True
    return not unshared(str(folder), nodes, timeout=30.0)


#: Requests whose defaults shrink to the largest node: key -> (resource, at least)
SHRINKABLE = {
    "resources.cpus_per_trial": ("cpu", 1.0),
    "resources.cpus_per_task": ("cpu", 1.0),
    "resources.features_cpus": ("cpu", 1),
}


def fit_defaults(cfg: Config, nodes: Sequence[Node]) -> tuple[Config, list[str]]:
    """Default CPU requests larger than the largest node shrink to it (a line each says so);
    a value the config set itself stays, and ``plan_requests`` names it if it cannot fit."""
    if not nodes:
        return cfg, []
    most = max(n.cpu for n in nodes)
    changes, notes = {}, []
    for key, (_, floor) in SHRINKABLE.items():
        field_name = key.split(".")[1]
        value = getattr(cfg.resources, field_name)
        if key in cfg.explicit or value <= most:
            continue
        new = type(value)(max(floor, math.floor(most)))
        changes[field_name] = new
        notes.append(f"{key}: default {value:g} -> {new:g} (the largest node has {most:g} CPU)")
    if not changes:
        return cfg, []
    res = dataclasses.replace(cfg.resources, **changes)
    return dataclasses.replace(cfg, resources=res), notes


def preflight(cfg: Config, storage: str) -> Config:
    """Check every request against the nodes (and autoscaler node types), wait for the ones
    an autoscaler must add, and check that the Tune storage is shared. Returns the config with
    default requests shrunk to the cluster (``fit_defaults``)."""
    nodes = alive_nodes()
    types = cfg.resources.node_types
    if types is None:
        types = bootstrap_node_types()
    cfg, notes = fit_defaults(cfg, nodes)
    for note in notes:
        print(f"[cluster] {note}", flush=True)
    waiting = plan_requests(requests(cfg), nodes, types)
    wait_for_nodes(waiting, cfg.resources.wait_s)
    check_shared_storage(storage, alive_nodes())
    return cfg
