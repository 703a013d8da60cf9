"""aumaps: seed 003's deconvolution and Action Unit ↔ map analysis, as Ray tasks.

For every ensemble member (``aumaps.members``; 0 = all), on the images seed 003 uses (its
training pictures, ``aumaps.images: train``; or ``all``):

1. one task per member: every map's maximum activation per image and where (3.2 steps 1-2);
2. one task per (member, AU): seed 003's eq. 13 distance of every map, the map with the
   largest (the AU's "detector", eq. 15) and, where the AU's true region is known (the
   synthetic faces: ``fer_ray.data.au_regions``, mapped through the crop and the recipe into
   the network's input), how often the receptive fields of that map's top-k activations
   land on it, against the same count for maps picked with shuffled AU labels
   (``au_maps.au_region_agreement``);
3. one task per (member, chunk of maps): the top-k receptive-field crops above their
   Zeiler–Fergus deconvolutions, one PNG per map (``aumaps.panels: all``) or per AU's best
   map (``best``).

The maps are those of the backbone's ``map_unit`` (``model.backbone``'s registry entry, or
``aumaps.unit``): small_cnn's third conv layer (``relu3``, seed 003), AlexNet's and VGG-19's
third conv layer (after its ReLU). ResNets have no plain conv stack the deconvnet and the
receptive-field arithmetic apply to (residual additions), so for them the stage records why
it did nothing and the report says so.

AU labels: the synthetic generator's AU intensities, or a real data set's ``AU<n>`` manifest
columns (CK+ FACS codes; neutral frames count as no AU, other images without a code are left
out); a data set with neither gets the deconvolution panels only. Every task's result is
stored as it arrives (``aumaps/tasks/``), so an interrupted stage redoes only missing tasks.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import ray
import torch

from fer_ray import files, layout
from fer_ray.analysis import au_tasks
from fer_ray.config import Config
from fer_ray.data import recipes
from fer_ray.errors import StageError
from fer_ray.layout import AuMaps, Ensemble, Grid
from fer_ray.models.backbones import BACKBONES
from fer_ray.models.factory import create_model
from fer_ray.stages.cluster import node_info
from fer_ray.stages.common import drain, model_config, set_threads, write_work
from fer_ray.stages.members import stand_in_state
from fer_ray.stages.prepare import margin_of

if TYPE_CHECKING:
    from fer_ray.stages.context import StageContext

PANEL_CHUNK = 32  # maps per panel task


def _timed(cfg: Config, fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    set_threads(cfg, cfg.resources.cpus_per_task)
    t0 = time.time()
    out = fn(*args, **kwargs)
    return out, {**node_info(), "seconds": round(time.time() - t0, 3)}


@ray.remote
def _maxima(cfg: Config, net: Any, x: torch.Tensor, unit: str) -> tuple:
    return _timed(cfg, au_tasks.maxima_task, net, x, unit)


@ray.remote
def _au(cfg: Config, mx: dict, au: str, present: np.ndarray, regions: Any, valid: Any,
        seed: int) -> tuple:  # fmt: skip
    a = cfg.aumaps
    return _timed(
        cfg, au_tasks.au_task, mx["act"][valid], mx["pos"][valid], au, present, regions, mx["rf"],
        n=a.n, k=a.top_k, shuffles=a.shuffles, seed=seed, rule=a.rule,
    )  # fmt: skip


@ray.remote
def _panels(cfg: Config, net: Any, x: torch.Tensor, unit: str, maps: list[int], mx: dict) -> tuple:
    return _timed(cfg, au_tasks.panel_task, net, x, unit, maps, mx["act"], mx["pos"],
                  cfg.aumaps.top_k)  # fmt: skip


def au_labels(cfg: Config, prepared: Any) -> tuple[pd.DataFrame | None, np.ndarray | None, str]:
    """(AU intensities per image or None, true regions (N, A, 4) in network-input pixels or
    None, where the AU labels come from)."""
    m = prepared.manifest
    if cfg.data.name == "synthetic":
        d = cfg.data
        aus, regions = au_tasks.synthetic_au_labels(
            m, n_subjects=d.n_subjects, per_class=d.per_class, image_size=d.image_size,
            seed=d.seed, margin=margin_of(cfg), size=cfg.faces.size,
            resize_ratio=recipes.get(cfg.train.recipe).resize_ratio,
        )  # fmt: skip
        return aus, regions, "the synthetic generator's AU intensities, true regions known"
    aus = au_tasks.manifest_aus(m)
    if aus is None:
        return None, None, f"none: data set {cfg.data.name} has no AU labels"
    return aus, None, f"{cfg.data.name} FACS codes (AU<n> manifest columns); regions unknown"


def _member_net(cfg: Config, model_cfg: Any, path: Path, n_classes: int, hidden: int,
                state: dict | None) -> torch.nn.Sequential:  # fmt: skip
    model = create_model(model_cfg, n_classes, hidden, head_seed=0, backbone_state=state)
    au_tasks.member_state_into(
        model, torch.load(path / Ensemble.MODEL, map_location="cpu", weights_only=True)
    )
    return au_tasks.conv_stack(model)


def stage(ctx: StageContext) -> None:
    run(ctx)


def run(ctx: StageContext) -> dict[str, Any]:
    cfg, paths = ctx.cfg, ctx.paths
    a = cfg.aumaps
    out = paths.stage(AuMaps.DIR)
    tasks_dir = out / layout.TASKS
    tasks_dir.mkdir(parents=True, exist_ok=True)
    chosen = files.read_json(paths.stage(Grid.DIR) / Grid.CHOSEN)
    model_cfg = model_config(cfg, chosen)
    unit = a.unit or BACKBONES.get(model_cfg.backbone).map_unit
    base = {"backbone": model_cfg.backbone, "unit": unit, "paper_layer": "conv3 (relu3)"}
    if unit is None:
        return _skipped(out, base, model_cfg.backbone)
    members = paths.member_dirs()
    if not members:
        raise StageError(f"no ensemble members under {paths.stage(Ensemble.DIR)}")
    members = members[: a.members or None]
    prepared = ctx.prepared()
    aus, regions, au_source = au_labels(cfg, prepared)
    state = stand_in_state(ctx, model_cfg.backbone, AuMaps.DIR)
    recipe = recipes.get(cfg.train.recipe)
    n_all = len(prepared.crops)
    n_classes, hidden = len(prepared.class_names), int(chosen["hidden"])
    job = _Job(cfg, tasks_dir, out, unit, len(members))
    sel = {}
    for m, path in enumerate(members):
        with np.load(path / Ensemble.MEMBER) as z:
            sel[m] = np.sort(z["train_idx"]) if a.images == "train" else np.arange(n_all)
    for m, path in enumerate(members):
        job.nets[m] = ray.put(_member_net(cfg, model_cfg, path, n_classes, hidden, state))
        job.x_refs[m] = ray.put(recipe.eval_batch(prepared.crops.take(sel[m])))
    mxs, mx_refs = _maxima_tasks(job)
    rows = _au_tasks(job, aus, regions, sel, mx_refs)
    _panel_tasks(job, rows, mxs, mx_refs)
    return aggregate(cfg, ctx, rows, mxs, sel, members, unit, au_source, regions, job.work, base)


def _skipped(out: Path, base: dict[str, Any], backbone: str) -> dict[str, Any]:
    why = (
        f"{backbone} is no plain conv stack (residual blocks): the Zeiler–Fergus"
        " deconvnet and receptive-field arithmetic apply to conv/ReLU/pool stacks only;"
        " use model.backbone=small_cnn (seed 003), alexnet or vgg19, or set aumaps.unit"
    )
    files.write_json(out / layout.SUMMARY, {**base, "skipped": why})
    write_work(out, [])
    print(f"[aumaps] skipped: {why}", flush=True)
    return {"skipped": why}


class _Job:
    """What the three task fan-outs share: where results go, the members' networks and
    images in the object store (put once), and the work rows."""

    def __init__(self, cfg: Config, tasks_dir: Path, out: Path, unit: str, n_members: int):
        self.cfg, self.tasks_dir, self.out, self.unit = cfg, tasks_dir, out, unit
        self.n_members = n_members
        self.opts = {"num_cpus": cfg.resources.cpus_per_task, "scheduling_strategy": "SPREAD"}
        self.nets: dict[int, Any] = {}
        self.x_refs: dict[int, Any] = {}  # each member's images as the network saw them
        self.work: list[dict[str, Any]] = []


def _maxima_tasks(job: _Job) -> tuple[dict, dict]:
    """1. Each map's maxima, one task per member (stored as they arrive)."""
    tasks_dir, pending = job.tasks_dir, {}
    for m in range(job.n_members):
        if not (tasks_dir / f"{m:02d}_maxima.npz").is_file():
            ref = _maxima.options(**job.opts).remote(job.cfg, job.nets[m], job.x_refs[m], job.unit)
            pending[ref] = m

    def store_maxima(m: int, result: tuple) -> str:
        mx, where = result
        files.write_json(tasks_dir / f"{m:02d}_maxima.json", where)
        files.savez(tasks_dir / f"{m:02d}_maxima.npz", act=mx["act"], pos=mx["pos"],
                    rf=np.asarray(mx["rf"]))  # fmt: skip
        return ""

    drain(pending, store_maxima, "aumaps", "maxima tasks", job.n_members)
    mx_refs, mxs = {}, {}
    for m in range(job.n_members):
        where = files.read_json(tasks_dir / f"{m:02d}_maxima.json")
        job.work.append({"unit": f"member {m} maxima", **where})
        with np.load(tasks_dir / f"{m:02d}_maxima.npz") as z:
            mxs[m] = {"act": z["act"], "pos": z["pos"], "rf": tuple(int(v) for v in z["rf"])}
        mx_refs[m] = ray.put(mxs[m])
    return mxs, mx_refs


def _au_tasks(job: _Job, aus: Any, regions: Any, sel: dict, mx_refs: dict) -> list[dict]:
    """2. One task per (member, AU): the eq. 13 distances and the region check."""
    a, tasks_dir = job.cfg.aumaps, job.tasks_dir
    au_names = list(aus.columns) if aus is not None else []
    pending = {}
    for m in range(job.n_members):
        if aus is None:
            break
        vals = aus.to_numpy()[sel[m]]
        valid = np.isfinite(vals).all(1)
        reg = regions[sel[m]][valid] if regions is not None else None
        for j, au in enumerate(au_names):
            if (tasks_dir / f"{m:02d}_{au}.json").is_file():
                continue
            present = vals[valid, j] > a.min_intensity
            r = None if reg is None else reg[:, j]
            ref = _au.options(**job.opts).remote(
                job.cfg, mx_refs[m], au, present, r, valid, job.cfg.seed + m
            )
            pending[ref] = (m, au)

    def store_au(key: tuple[int, str], result: tuple) -> str:
        row, where = result
        files.write_json(tasks_dir / f"{key[0]:02d}_{key[1]}.json", {**row, "work": where})
        return ""

    drain(pending, store_au, "aumaps", "AU tasks", job.n_members * len(au_names))
    rows = []
    for m in range(job.n_members):
        for au in au_names:
            r = files.read_json(tasks_dir / f"{m:02d}_{au}.json")
            job.work.append({"unit": f"member {m} {au}", **r.pop("work")})
            rows.append({"member": m, **r})
    return rows


def _panel_tasks(job: _Job, rows: list[dict], mxs: dict, mx_refs: dict) -> None:
    """3. Deconvolution panels, one task per (member, chunk of maps)."""
    unit, out, pending, wanted = job.unit, job.out, {}, {}
    n_maps = {m: mxs[m]["act"].shape[1] for m in mxs}
    for m in range(job.n_members):
        best = sorted({int(r["map"]) for r in rows if r["member"] == m and r["map"] >= 0})
        wanted[m] = list(range(n_maps[m])) if job.cfg.aumaps.panels == "all" else best
        todo = [c for c in wanted[m] if not (out / AuMaps.panel(m, unit, c)).is_file()]
        for s in range(0, len(todo), PANEL_CHUNK):
            chunk = todo[s : s + PANEL_CHUNK]
            ref = _panels.options(**job.opts).remote(
                job.cfg, job.nets[m], job.x_refs[m], unit, chunk, mx_refs[m]
            )
            pending[ref] = (m, chunk[0])

    def store_panels(key: tuple[int, int], result: tuple) -> str:
        pngs, where = result
        for c, png in pngs.items():
            files.write_bytes(out / AuMaps.panel(key[0], unit, c), png)
        job.work.append({"unit": f"member {key[0]} panels from map {key[1]}", **where})
        return ""

    n_chunks = sum(-(-len(w) // PANEL_CHUNK) for w in wanted.values())
    drain(pending, store_panels, "aumaps", "panel tasks", n_chunks)


def aggregate(cfg: Config, ctx: StageContext, rows: list[dict], mxs: dict, sel: dict,
              members: list[Path], unit: str, au_source: str, regions: Any, work: list,
              base: dict) -> dict[str, Any]:  # fmt: skip
    """Stored task results → maps.csv, distances.csv, top.csv, work.csv, summary.json."""
    out = ctx.paths.stage(AuMaps.DIR)
    items = ctx.prepared().manifest["item"].astype(str).to_numpy()
    table, dist = au_tasks.map_tables(rows)
    table.to_csv(out / AuMaps.MAPS, index=False)
    dist.to_csv(out / AuMaps.DISTANCES, index=False)
    au_tasks.member_tops(mxs, sel, items, cfg.aumaps.top_k).to_csv(out / AuMaps.TOP, index=False)
    write_work(out, work)
    rf = mxs[0]["rf"]
    summary: dict[str, Any] = {
        **base,
        "members": len(members),
        "images": cfg.aumaps.images,
        "n_images": {str(m): int(len(s)) for m, s in sel.items()},
        "n_maps": int(mxs[0]["act"].shape[1]),
        "receptive_field": {"size": rf[0], "stride": rf[1], "offset": rf[2]},
        "input_size": cfg.faces.size,
        "top_k": cfg.aumaps.top_k,
        "n": cfg.aumaps.n,
        "au_source": au_source,
        "aus": sorted(set(table["au"])) if len(table) else [],
        "panels": cfg.aumaps.panels,
        "region_check": regions is not None,
    }
    agreement = au_tasks.agreement_summary(table) if regions is not None else {}
    if agreement:
        summary.update(rule=cfg.aumaps.rule, shuffles=cfg.aumaps.shuffles, **agreement)
    files.write_json(out / layout.SUMMARY, summary)
    line = f"[aumaps] {len(members)} member(s) · {summary['n_maps']} maps of {unit}"
    if "agreement_mean" in summary:
        line += (
            f" · AU region agreement {summary['agreement_mean']:.3f} vs shuffled"
            f" {summary['shuffled_mean']:.3f} ({summary['n_significant']} of"
            f" {summary['n_pairs']} member×AU pairs p < 0.05)"
        )
    print(line, flush=True)
    return summary
