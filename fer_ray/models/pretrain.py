"""Stand-in for ImageNet weights where no hub is reachable: ``model.weights: synthetic``.

A frozen *random* trunk gives features on which nothing generalises (measured:
validation at chance), so the default run transfers from a backbone pretrained
here: it regresses the 13 Action Unit intensities of a disjoint synthetic set
(another generator seed, so other identities, never the run's images). Like
ImageNet pretraining it learns generic face geometry, not the run's labels.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from fer_ray import files
from fer_ray.data import synthetic
from fer_ray.faces.crop import crop
from fer_ray.train.features import normalize
from fer_ray.train.loop import Split, train_epoch

if TYPE_CHECKING:
    from fer_ray.config import Config

SEED_OFFSET = 7919  # the pretraining set's generator seed = data.seed + this


def pretrain_key(cfg: Config) -> str:
    blob = json.dumps(
        {
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


def pretraining_set(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    faces = synthetic.generate(
        cfg.model.pretrain_subjects, 2, cfg.data.image_size, cfg.data.seed + SEED_OFFSET
    )
    crops = np.stack(
        [crop(im, tuple(b), 0.0, cfg.faces.size) for im, b in zip(faces.images, faces.boxes)]
    )
    return crops, faces.aus.astype(np.float32)


def pretrain_backbone(
    cfg: Config, device: str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train the whole backbone on AU regression; returns (state dict, facts for the report)."""
    from fer_ray.models.factory import create_backbone

    t0 = time.time()
    images, aus = pretraining_set(cfg)
    backbone = create_backbone(cfg.model, state=None, random_only=True).to(device)
    reg = nn.Linear(backbone.num_features, aus.shape[1]).to(device)
    params = list(backbone.parameters()) + list(reg.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    x_all, y_all = normalize(images), torch.from_numpy(aus)
    n_val = max(1, len(x_all) // 10)
    gen = torch.Generator().manual_seed(cfg.model.init_seed)
    perm = torch.randperm(len(x_all), generator=gen)
    val_idx, tr_idx = perm[:n_val], perm[n_val:]
    history = []
    model = nn.Sequential(backbone, reg)
    train = Split(x_all[tr_idx], y_all[tr_idx])
    for epoch in range(cfg.model.pretrain_epochs):
        train_epoch(model, train, opt, 64, gen, _random_flip, nn.functional.mse_loss)
        backbone.eval()
        with torch.no_grad():
            pv = reg(backbone(x_all[val_idx].to(device))).cpu()
        mse = float(nn.functional.mse_loss(pv, y_all[val_idx]))
        base = float(((y_all[val_idx] - y_all[tr_idx].mean(0)) ** 2).mean())
        history.append({"epoch": epoch + 1, "val_mse": mse, "baseline_mse": base})
    state = {k: v.detach().cpu() for k, v in backbone.state_dict().items()}
    facts = {
        "images": len(images),
        "subjects": cfg.model.pretrain_subjects,
        "generator_seed": cfg.data.seed + SEED_OFFSET,
        "epochs": cfg.model.pretrain_epochs,
        "history": history,
        "seconds": round(time.time() - t0, 1),
    }
    return state, facts


def _random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror half the batch: faces are left-right symmetric, the AU targets too."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    x[flip] = x[flip].flip(-1)
    return x


def cached_pretrain(cfg: Config, cache_dir: Path, device: str = "cpu") -> tuple[dict, dict]:
    """Pretrained state from ``cache_dir`` or trained now and stored there (atomically)."""
    key = pretrain_key(cfg)
    path = Path(cache_dir) / f"{key}.pt"
    if path.is_file():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        return blob["state"], {**blob["facts"], "cache": "reused", "key": key}
    state, facts = pretrain_backbone(cfg, device)
    files.torch_save(path, {"state": state, "facts": facts})
    return state, {**facts, "cache": "written", "key": key}
