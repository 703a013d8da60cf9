"""Stand-ins for ImageNet weights where no hub is reachable: ``model.weights: synthetic_*``.

A frozen *random* trunk gives features on which nothing generalises (measured: validation at
chance), so the default run transfers from a backbone pretrained here, on a disjoint synthetic
set (another generator seed, so other identities, never the run's images). What it learns to
predict is the weight source's objective (``fer_ray.models.pretrain_tasks``): the 13 Action
Unit intensities (``synthetic_au``, which determine the expression class, so that is supervised
pretraining on the task), AU intensities of faces whose AUs were drawn independently of any
class (``synthetic_free_au``, label-free: the AU-coded data set analogue) or other label-free
targets such as the subject's identity
(``synthetic_identity``, the VGG-Face analogue) or a random quarter turn (``synthetic_rotation``).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from fer_ray import files, testhooks
from fer_ray.data import synthetic
from fer_ray.errors import ModelError, StoredFileError
from fer_ray.faces.crop import crop
from fer_ray.models import pretrain_tasks, weights
from fer_ray.models.pretrain_tasks import Objective
from fer_ray.runinfo import source_hash
from fer_ray.train.features import normalize
from fer_ray.train.loop import fused_ok, train_epoch

if TYPE_CHECKING:
    from fer_ray.config import Config

SEED_OFFSET = 7919  # the pretraining set's generator seed = data.seed + this
PER_CLASS = 2  # images per subject and class in the pretraining set (x 7 classes)


def stand_in_source(cfg: Config) -> weights.WeightSource:
    """The registered stand-in source that ``model.weights`` names."""
    src = weights.source(cfg.model.weights)
    if src is None or not src.stand_in or src.objective is None:
        raise ModelError(f"model.weights={cfg.model.weights!r} is not a pretrained stand-in")
    return src


def objective_name(cfg: Config) -> str:
    """The pretraining objective of ``model.weights`` (a registered stand-in source)."""
    return str(stand_in_source(cfg).objective)


def objective(cfg: Config) -> Objective:
    return pretrain_tasks.OBJECTIVES[objective_name(cfg)]


def pretrain_key(cfg: Config, device: str = "cpu", threads: int = 1) -> str:
    """Everything the pretrained weights depend on: objective, settings, data seed, generator,
    code, torch version, device and thread count (other threads or devices round differently)."""
    from fer_ray.models import backbones
    from fer_ray.train import loop

    blob = json.dumps(
        {
            "objective": objective_name(cfg),
            "torch": torch.__version__,
            "device": device,
            "threads": int(threads),
            "code": source_hash(sys.modules[__name__], pretrain_tasks, loop, backbones, synthetic),
            "backbone": cfg.model.backbone,
            "init_seed": cfg.model.init_seed,
            "epochs": cfg.model.pretrain_epochs,
            "subjects": cfg.model.pretrain_subjects,
            "size": cfg.faces.size,
            "image_size": cfg.data.image_size,
            "seed": cfg.data.seed + SEED_OFFSET,
            "generator": synthetic.GENERATOR_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def pretraining_faces(cfg: Config) -> tuple[np.ndarray, synthetic.SyntheticFaces]:
    """(face crops, the rendered set with its per-image facts) of the disjoint pretraining set."""
    faces = synthetic.generate(
        cfg.model.pretrain_subjects,
        PER_CLASS,
        cfg.data.image_size,
        cfg.data.seed + SEED_OFFSET,
        independent_aus=objective(cfg).independent_aus,
    )
    crops = np.stack(
        [crop(im, tuple(b), 0.0, cfg.faces.size) for im, b in zip(faces.images, faces.boxes)]
    )
    return crops, faces


def pretraining_set(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """(face crops, AU intensities) of the disjoint pretraining set (as the objective draws it)."""
    crops, faces = pretraining_faces(cfg)
    return crops, faces.aus.astype(np.float32)


def pretrain_backbone(
    cfg: Config, device: str = "cpu", on_epoch: Callable[[dict[str, Any]], None] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train the whole backbone on the source's objective; returns (state dict, facts).

    ``on_epoch`` (progress only) gets each epoch's row with ``epochs`` (the total) and
    ``seconds`` (that epoch's); the facts and weights do not depend on it."""
    from fer_ray.models.factory import create_backbone

    t0 = time.time()
    src = stand_in_source(cfg)
    name = str(src.objective)
    obj = pretrain_tasks.OBJECTIVES[name]
    images, faces = pretraining_faces(cfg)
    x_all, y_all = normalize(images), obj.targets_of(faces, cfg.data.seed + SEED_OFFSET)
    backbone = create_backbone(cfg.model, state=None, random_only=True).to(device)
    with torch.random.fork_rng(devices=[]):  # seeded: cold runs must give the same weights
        torch.manual_seed(cfg.model.init_seed)
        head = obj.head(backbone.num_features, obj.n_outputs(y_all)).to(device)
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, fused=fused_ok(params))  # as make_optimizer
    n_val = max(1, len(x_all) // 10)
    gen = torch.Generator().manual_seed(cfg.model.init_seed)
    perm = torch.randperm(len(x_all), generator=gen)
    val_idx, tr_idx = perm[:n_val], perm[n_val:]
    # the validation images' self-supervised draws are fixed once, from their own generator
    val = obj.validation(
        x_all[val_idx], y_all[val_idx], torch.Generator().manual_seed(cfg.model.init_seed + 1)
    )
    history = []
    model = nn.Sequential(backbone, head)
    x_tr, y_tr = x_all[tr_idx], y_all[tr_idx]
    for epoch in range(cfg.model.pretrain_epochs):
        t_epoch = time.time()
        train = obj.epoch_split(x_tr, y_tr, gen)
        loss, _ = train_epoch(model, train, opt, 64, gen, obj.transform, obj.loss)
        model.eval()
        with torch.no_grad():
            out = torch.cat(
                [model(val.x[s : s + 256].to(device)).cpu() for s in range(0, len(val), 256)]
            )
        row = {"epoch": epoch + 1, "train_loss": loss, **obj.score(out, val.y)}
        testhooks.reached(f"pretrain_epoch:{epoch + 1}")
        if name in ("au", "free_au"):
            row["baseline_mse"] = float(((val.y - y_tr.mean(0)) ** 2).mean())
        history.append(row)
        if on_epoch is not None:
            n = cfg.model.pretrain_epochs
            on_epoch({**row, "epochs": n, "seconds": round(time.time() - t_epoch, 2)})
    state = {k: v.detach().cpu() for k, v in backbone.state_dict().items()}
    facts = {
        "objective": name,
        "targets": src.targets,
        "reveals": src.reveals,
        "label_free": src.label_free,
        "images": len(images),
        "subjects": cfg.model.pretrain_subjects,
        "generator_seed": cfg.data.seed + SEED_OFFSET,
        "epochs": cfg.model.pretrain_epochs,
        "history": history,
        "seconds": round(time.time() - t0, 1),
    }
    return state, facts


def load_pretrained(cache_dir: Path, key: str, heal: bool = True) -> tuple[dict, dict] | None:
    """The stored (state, facts) for ``key``, or None when absent. A damaged file is moved
    aside with one printed line and None is returned (so it is pretrained again) when
    ``heal``; otherwise its ``StoredFileError`` names it (``predict`` cannot retrain)."""
    path = Path(cache_dir) / f"{key}.pt"
    if not path.is_file():
        return None
    try:
        blob = files.torch_load(path)
        if not isinstance(blob, dict) or not {"state", "facts"} <= blob.keys():
            raise files.damaged(path, "stand-in weights file", "no 'state' and 'facts' in it")
    except StoredFileError as e:
        if not heal:
            raise
        files.quarantine(e, "stand-in weights")
        return None
    return blob["state"], {**blob["facts"], "cache": "reused", "key": key}


def store_pretrained(cache_dir: Path, key: str, state: dict, facts: dict) -> dict:
    """Store atomically; returns the facts as the report shows them."""
    files.torch_save(Path(cache_dir) / f"{key}.pt", {"state": state, "facts": facts})
    return {**facts, "cache": "written", "key": key}
