"""A real multi-node Ray cluster on one machine (1 CPU per node): work spreads over nodes, and a
node lost mid-grid costs only its trial's last epochs, with the same final tables.

One cluster for the module (head + 2 workers, ``ray.cluster_utils.Cluster``); the smoke config
joins it through ``resources.address``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from fer_ray.pipeline import run_pipeline
from tests.conftest import smoke_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

EPOCHS = 5
TABLES = [
    ("grid", "table2.csv"),
    ("grid", "chosen.json"),
    ("ensemble", "members.csv"),
    ("analyse", "baselines.csv"),
    ("analyse", "per_class.csv"),
]


@pytest.fixture(scope="module")
def ray_cluster():
    from ray.cluster_utils import Cluster

    os.environ["FER_RAY_TEST_EPOCH_SLEEP_S"] = "1.0"  # nodes inherit it: a window to kill one
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    yield c, workers
    os.environ.pop("FER_RAY_TEST_EPOCH_SLEEP_S", None)
    c.shutdown()


def _cfg(tmp: Path, address: str, cache: Path):
    return smoke_config(
        tmp,
        f"resources.address={address}",  # the smoke config's 2-CPU feature task shrinks to 1
        f"faces.cache_dir={cache / 'crops'}",
        f"train.epochs={EPOCHS}",
        "output.checkpoint_every=1",  # a checkpoint every epoch: the lost trial resumes at 2+
    )


def _table(run: Path, stage: str, name: str):
    path = run / stage / name
    if name.endswith(".json"):
        return json.loads(path.read_text())
    return pd.read_csv(path)


@pytest.fixture(scope="module")
def reference(ray_cluster, tmp_path_factory):
    c, _ = ray_cluster
    tmp = tmp_path_factory.mktemp("multinode")
    cache = tmp_path_factory.mktemp("cache")
    t0 = time.time()
    run_pipeline(_cfg(tmp, c.address, cache))
    return tmp / "runs" / "smoke", cache, time.time() - t0


def test_trials_and_tasks_spread_over_nodes(reference):
    run, _, seconds = reference
    trials = pd.read_csv(run / "grid" / "work.csv")
    tasks = pd.read_csv(run / "analyse" / "work.csv")
    print(f"multi-node smoke run: {seconds:.0f}s; grid trials per node:")
    print(trials["node_id"].str[:12].value_counts().to_string())
    print("analysis tasks per node:\n" + tasks["node_id"].str[:12].value_counts().to_string())
    assert trials["node_id"].nunique() >= 2
    assert tasks["node_id"].nunique() >= 2
    assert trials["node_ip"].nunique() == 1  # one host: only the node id tells them apart
    # the report shows the work per node
    nodes = pd.read_csv(run.parent.parent / "reports" / "smoke" / "nodes.csv")
    assert len(nodes) >= 2 and nodes["trials"].sum() == len(trials) + 3  # + 3 members


def _last_row(result: Path) -> dict:
    """The last complete line of a ``result.json`` Tune may be writing right now."""
    for line in reversed(result.read_text().splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return {}


def test_a_node_lost_mid_grid_resumes_its_trial_elsewhere_with_the_same_tables(
    ray_cluster, reference, tmp_path
):
    c, workers = ray_cluster
    ref_run, cache, _ = reference
    victim_ids = {w.node_id: w for w in workers}
    grid_dir = tmp_path / "runs" / "smoke" / "tune" / "grid"
    killed: dict[str, object] = {}

    def killer() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            for result in grid_dir.glob("*/result.json") if grid_dir.is_dir() else []:
                last = _last_row(result)
                node = last.get("node_id")
                if node in victim_ids and 2 <= last.get("epoch", 0) < EPOCHS:
                    c.remove_node(victim_ids[node], allow_graceful=False)
                    killed.update(node=node, trial=result.parent.name, epoch=last["epoch"])
                    return
            time.sleep(0.1)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    t0 = time.time()
    run_pipeline(_cfg(tmp_path, c.address, cache))
    thread.join(timeout=5)
    assert killed, "no worker node was running a grid trial past epoch 2"
    run = tmp_path / "runs" / "smoke"
    trials = pd.read_csv(run / "grid" / "work.csv")
    resumed = trials[trials["resumed_from_epoch"] > 0]
    print(
        f"node-loss run: {time.time() - t0:.0f}s; killed node {killed['node'][:12]} at epoch "
        f"{killed['epoch']} of trial {killed['trial']}; resumed:\n{resumed.to_string()}"
    )
    assert len(resumed) >= 1 and (resumed["resumed_from_epoch"] > 1).all()
    assert killed["node"] not in set(resumed["node_id"])  # it finished on another node
    for stage, name in TABLES:
        new, old = _table(run, stage, name), _table(ref_run, stage, name)
        if isinstance(old, dict):
            assert new == old, name
        else:
            pd.testing.assert_frame_equal(new, old, obj=name)
