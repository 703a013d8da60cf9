"""The pretraining task's progress reaches the driver (Ray forwards no worker output here:
log_to_driver is off), through the queue ``features._await`` prints from; a trunk shard task
puts its rows done after each batch on the queue the driver's features line is made from."""

import dataclasses

import numpy as np
import pytest
import ray
from ray.util.queue import Queue

from fer_ray.config import Config
from fer_ray.stages import common, features

pytestmark = pytest.mark.slow  # a Ray session and two real tasks


def test_task_progress_lines_reach_the_driver(ray_session, capsys, monkeypatch):
    monkeypatch.setattr(common, "THROTTLE_S", 0.0)  # every line, not one per 15 s
    base = Config()
    cfg = dataclasses.replace(
        base,
        data=dataclasses.replace(base.data, image_size=32),
        faces=dataclasses.replace(base.faces, size=32),
        model=dataclasses.replace(
            base.model, weights="synthetic_identity", pretrain_epochs=2, pretrain_subjects=3
        ),
    )
    state, facts, _ = features._await(
        lambda q: features._pretrain_task.remote(cfg, 1, q), "weights"
    )
    assert len(facts["history"]) == 2
    images = np.random.default_rng(0).integers(0, 256, (300, 32, 32, 3), dtype=np.uint8)
    queue = Queue(actor_options={"num_cpus": 0})
    x_ref, where = features._trunk_task.remote(
        cfg, state, 1, "memo", 10, 300, queue, 3, None, images[:10], images
    )  # disk=None: the crop chunks given, the features returned (not stored by the task)
    assert len(ray.get(x_ref)) == 300 and ray.get(where)["rows"] == 300
    # shard 3's rows done after each batch of 128
    assert queue.get_nowait_batch(queue.qsize()) == [(3, 128), (3, 256), (3, 300)]
    queue.shutdown()
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(" · ")[0] for ln in lines] == [
        "[weights] pretraining epoch 1/2",
        "[weights] pretraining epoch 2/2",
    ]
