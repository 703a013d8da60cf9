"""``python -m fer_ray.predict --run runs/<name> IMAGE... [--json]``: a finished run's
ensemble on new photos.

Seed 004 ended by running its model on pictures from outside its data set (Table 3: per image
the probability of each class, the top one taken). Here every member of a finished run is
rebuilt in full from what the run stored: the trunk from the run's weights (for a stand-in,
the pretrained state in the run's weights cache, whose key ``grid/features.json`` records),
the member's trained tail (or whole network) from its ``model.pt``. Each image is read, its
face found with the run's detector and cropped with the run's margin, size and fallback
rule, fed through the run's recipe's eval transform, and the members' class probabilities
are averaged (the soft vote, as the ensemble stage scores it).

A ``groundtruth`` run (the synthetic data carries its face boxes) has no detector for a new
photo, so ``haar`` stands in (``--detector`` picks another). No face found: the centre crop
is used and the face is flagged (``fallback``), never silently. A missing or unfinished run
and an unreadable image are one-line errors (exit 2; 1 for an unfinished run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fer_ray import config as config_mod
from fer_ray import files, layout
from fer_ray.config import Config
from fer_ray.data.recipes import get as get_recipe
from fer_ray.errors import DataError, StageError, unwrap
from fer_ray.faces import detectors
from fer_ray.faces.crop import crop
from fer_ray.layout import Ensemble, Grid, Prepare
from fer_ray.models import weights as weight_sources
from fer_ray.models.factory import FerNet, create_model
from fer_ray.models.pretrain import load_pretrained

NO_BOXES = "groundtruth"  # needs the data set's own boxes, which a new photo lacks
STAND_IN_DETECTOR = "haar"


@dataclass
class RunModels:
    """A finished run's ensemble, ready to predict."""

    cfg: Config
    class_names: list[str]
    members: list[FerNet]
    root: Path


def _need(path: Path, what: str, root: Path) -> Path:
    if not path.is_file():
        raise StageError(
            f"run {root} is not finished: {path} is missing ({what}); finish it with "
            "python -m fer_ray.tune --config <its config> --resume"
        )
    return path


def _backbone_state(cfg: Config, root: Path) -> dict[str, torch.Tensor] | None:
    """The stand-in's pretrained backbone from the run's weights cache, or None (the run's
    weights are loaded by the model factory: imagenet, a state-dict path, or none)."""
    src = weight_sources.source(cfg.model.weights)
    if src is None or not src.stand_in:
        return None
    facts = files.read_json(_need(root / Grid.DIR / Grid.FEATURES, "the weights it used", root))
    key = (facts.get("pretrain") or {}).get("key")
    if not key:
        raise StageError(f"{root / Grid.DIR / Grid.FEATURES} records no pretrained weights key")
    # the run's caches live next to the run (runs_dir/.cache) unless faces.cache_dir moved them
    output = dataclasses.replace(cfg.output, runs_dir=str(root.resolve().parent))
    cache = layout.cache_root(dataclasses.replace(cfg, output=output), "weights")
    stored = load_pretrained(cache, key, heal=False)  # damaged: one line naming it
    if stored is None:
        raise StageError(
            f"the run's pretrained backbone {key}.pt is not in {cache}; rerun the run with "
            "--fresh to recreate it"
        )
    return stored[0]


def load_run(run_dir: str | Path) -> RunModels:
    """Every ensemble member of the finished run at ``run_dir``, in eval mode on the CPU."""
    root = Path(run_dir)
    if not (root / layout.CONFIG).is_file():
        raise DataError(f"--run {root}: not a fer_ray run directory (no {layout.CONFIG})")
    cfg = config_mod.load(root / layout.CONFIG)
    _need(root / Ensemble.DIR / layout.DONE, "the ensemble stage has not finished", root)
    summary = _need(root / Prepare.DIR / layout.SUMMARY, "the prepare stage's summary", root)
    names = files.read_json(summary)["class_names"]
    hidden = int(
        files.read_json(_need(root / Grid.DIR / Grid.CHOSEN, "the grid's choice", root))["hidden"]
    )
    state = _backbone_state(cfg, root)
    dirs = sorted((root / Ensemble.DIR / Ensemble.MEMBERS_DIR).glob("member_*"))
    members = []
    for d in dirs:
        path = _need(d / Ensemble.MODEL, "a member's model", root)
        stored = files.torch_load(path)
        model = create_model(cfg.model, len(names), hidden, head_seed=0, backbone_state=state)
        try:
            whole = any(k.startswith("trunk.") or k.startswith("tail.") for k in stored)
            (model if whole else model.tail).load_state_dict(stored)
        except (AttributeError, TypeError, RuntimeError) as e:
            raise files.damaged(path, "state dict of the run's model", e) from None
        members.append(model.eval())
    if not members:
        raise StageError(f"run {root} has no ensemble members under {root / Ensemble.DIR}")
    return RunModels(cfg, list(names), members, root)


def read_images(paths: list[str]) -> list[np.ndarray]:
    """Every image as RGB uint8, before any work: one unreadable file is one error naming it."""
    from fer_ray.data.loaders.base import read_image_checked

    images = []
    for p in paths:
        image, problem = read_image_checked(p)
        if image is None:
            raise DataError(f"{p}: cannot read this image ({problem})")
        images.append(image)
    return images


def detector_name(cfg: Config, override: str | None) -> str:
    name = override or cfg.faces.detector
    return STAND_IN_DETECTOR if name == NO_BOXES else name


@torch.no_grad()
def soft_vote(models: RunModels, crops: np.ndarray) -> np.ndarray:
    """(N, C) mean of the members' softmax probabilities on the recipe's eval input."""
    x = get_recipe(models.cfg.train.recipe).eval_batch(crops)
    probs = [torch.softmax(m(x), 1).double() for m in models.members]
    return torch.stack(probs).mean(0).numpy()


def predict(models: RunModels, image_paths: list[str], detector: str | None = None) -> dict:
    """Per image: its face box, whether it is a flagged centre crop, the soft-vote class
    probabilities (summing to 1) and the top class."""
    images = read_images(image_paths)
    name = detector_name(models.cfg, detector)
    detect = detectors.get(name).factory()
    counts = detectors.get(name).counts_fallbacks
    faces = []
    f = models.cfg.faces
    margin = detectors.get(name).default_margin if f.margin is None else f.margin
    for path, image in zip(image_paths, images):
        box = detect(image, None)  # the run's multi-face rule picks one face per image
        faces.append((path, image.shape, box, crop(image, box, margin, f.size, f.fallback)))
    probs = soft_vote(models, np.stack([f[3] for f in faces]))
    out = []
    for (path, shape, box, _), p in zip(faces, probs):
        h, w = shape[:2]
        s = min(h, w)
        centre = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
        top = int(np.argmax(p))
        out.append(
            {
                "image": str(path),
                "box": [int(v) for v in (box if box is not None else centre)],
                "detected": box is not None,
                "fallback": box is None and bool(counts),
                "probs": {c: float(v) for c, v in zip(models.class_names, p)},
                "top": models.class_names[top],
                "top_prob": float(p[top]),
            }
        )
    return {
        "run": str(models.root),
        "members": len(models.members),
        "detector": name,
        "run_detector": models.cfg.faces.detector,
        "recipe": models.cfg.train.recipe,
        "classes": models.class_names,
        "faces": out,
    }


def as_text(result: dict) -> str:
    lines = [
        f"run {result['run']} · {result['members']} members (soft vote) · detector "
        f"{result['detector']}"
        + (f" (the run used {result['run_detector']} boxes)" if result["run_detector"] == NO_BOXES
           else "")
    ]  # fmt: skip
    for f in result["faces"]:
        where = "face" if f["detected"] else "centre crop"
        flag = " · NO FACE FOUND: centre crop used (flagged)" if f["fallback"] else ""
        lines.append(
            f"{f['image']}: {where} {tuple(f['box'])} → {f['top']} {f['top_prob']:.3f}{flag}"
        )
        lines.append("    " + "  ".join(f"{c} {v:.3f}" for c, v in f["probs"].items()))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m fer_ray.predict",
        description="Classify the faces in images with a finished run's ensemble (soft vote).",
    )
    p.add_argument("--run", required=True, help="the run directory, e.g. runs/default")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (png, jpg, ...)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument(
        "--detector",
        default=None,
        help=f"face detector instead of the run's ({', '.join(detectors.DETECTORS.names())})",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.detector is not None:
            detectors.DETECTORS.check(args.detector)
        result = predict(load_run(args.run), args.images, args.detector)
    except Exception as e:
        err = unwrap(e)
        if err is None:
            raise
        print(f"{err.kind}: {' '.join(str(err).split())}", file=sys.stderr)
        return err.exit_code
    print(json.dumps(result, indent=2) if args.json else as_text(result))
    for f in result["faces"]:
        if f["fallback"]:
            print(
                f"warning: no face found in {f['image']}; the centre crop was used", file=sys.stderr
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
