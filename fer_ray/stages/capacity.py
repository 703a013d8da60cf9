"""What the run would get to work on, found without starting Ray: for the dry run's estimate.

Why not ``cluster.connect``: it starts a local Ray when no cluster is given (seconds, and
processes a dry run must not leave behind). Here a local run is this machine's CPUs and GPUs
as ``ray.init`` would count them; a configured cluster (``resources.address``, or
``RAY_ADDRESS``) is joined only when something answers at its address, read, and left.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

from fer_ray.config import Config
from fer_ray.stages.cluster import Node, address_of


@dataclass(frozen=True)
class Capacity:
    nodes: list[Node]
    where: str  # a sentence naming what the nodes are


def local_capacity(cfg: Config) -> Capacity:
    import torch

    cpus = cfg.resources.num_cpus or os.cpu_count() or 1
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    how = "resources.num_cpus" if cfg.resources.num_cpus else "all cores"
    node = Node("local", "127.0.0.1", float(cpus), float(gpus))
    return Capacity([node], f"this machine: local Ray with {cpus} CPU ({how}), {gpus} GPU")


def _reachable(address: str, timeout: float) -> bool:
    if address == "auto":
        return True  # ray.init finds a local cluster or fails at once
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return False
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def capacity(cfg: Config) -> Capacity:
    """The configured cluster's alive nodes when it answers, else this machine's resources."""
    address = address_of(cfg)
    if not address:
        return local_capacity(cfg)
    timeout = min(cfg.resources.connect_timeout_s, 10.0)
    if not address.startswith(("http://", "https://")) and _reachable(address, timeout):
        import ray

        from fer_ray.stages.cluster import alive_nodes

        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
            try:
                nodes = alive_nodes()
            finally:
                ray.shutdown()
            return Capacity(nodes, f"the cluster at {address}: {len(nodes)} node(s)")
        except (ConnectionError, TimeoutError, RuntimeError, ValueError):
            pass
    fallback = local_capacity(cfg)
    return Capacity(
        fallback.nodes, f"the cluster at {address} did not answer; estimated for {fallback.where}"
    )
