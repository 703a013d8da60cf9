"""newfaces: seed 002's "new faces" as a cross-data-set test, one Ray Tune run.

Seed 002 trained on CK+ and JAFFE (90 % on a test split of the same data sets) and then got
34.7 % on photographs of one team member's face, blaming "new lighting and photography
angles". Here that becomes a matrix: a network trained on data set A and one trained on data
set B (``newfaces.members`` seeds each, every training a Tune trial) are both scored on A's
and B's held-out subjects, and each on every image of the data set it never saw. The
diagonal is the within-data-set accuracy, the rest the cross-data-set one, on the same test
images.

Data sets A and B (``newfaces.other``):

- ``data.name: ckplus_jaffe`` (seed 002's join), ``other`` unset: A = its CK+ half, B = its
  JAFFE half (the groups' ``ck:``/``jaffe:`` prefixes);
- ``other: <data.name>`` (+ ``other_root``): A = the run's data set, B = that one (cropped
  with the run's detector and size, through the crop cache); e.g. ckplus → jaffe;
- ``data.name: synthetic``, ``other`` unset: A = the run's faces, B = another rendering
  (``newfaces.style`` lighting, skin, clutter and noise ranges; generator seed
  ``data.seed + newfaces.seed_offset``, so other identities: disjoint subjects).

Both keep only the classes they share. Each domain gets its own grouped test holdout
(``ensemble.test_fraction``, seeded by the run seed) and each training its own grouped
train/val split (``ensemble.val_fraction``); the epoch is selected on validation (seed 002's
early stopping). The network is the grid's choice (``grid/chosen.json``: lr, hidden and, when
the grid searched backbones, the backbone) trained by the ensemble's member trainer
(``fer_ray.stages.members``: ``train.*``'s phases, class weights and lr, planned per training
data set; the epoch selected on validation), always from pixels.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import ray
from ray import tune

from fer_ray import files, layout
from fer_ray.analysis import cross_domain
from fer_ray.config import Config, DataConfig
from fer_ray.data import synthetic
from fer_ray.data.loaders.synthetic import SyntheticSource
from fer_ray.data.source import Source
from fer_ray.data.splits import grouped_holdout
from fer_ray.errors import ConfigError, StageError
from fer_ray.faces.crop import crop_chunk
from fer_ray.layout import Grid, NewFaces, RunPaths
from fer_ray.models.backbones import check_input_size
from fer_ray.seeds import member_seed
from fer_ray.stages import common, training_choices
from fer_ray.stages.cluster import node_info
from fer_ray.stages.members import stand_in_state, train_member
from fer_ray.stages.prepare import load_prepared, margin_of
from fer_ray.stages.tune_stage import TuneStage, run_tune_stage
from fer_ray.train.bundle import TrialData
from fer_ray.train.loop import predict_proba

if TYPE_CHECKING:
    from fer_ray.stages.context import StageContext

HALVES = {"ckplus_jaffe": (("ckplus", "ck:"), ("jaffe", "jaffe:"))}  # data set → its halves


class StyledSyntheticSource(SyntheticSource):
    """Synthetic faces in another rendering style: data set B of a synthetic run.

    Items are ``synthetic-<style>:<index>`` and groups ``<style>:sNNNN``, so neither can be
    mistaken for data set A's (which are other identities anyway: another generator seed).
    Rendering and identity are SyntheticSource's, with the style."""

    def __init__(self, n_subjects: int, per_class: int, image_size: int, seed: int, style: str):
        self.n_subjects, self.per_class = n_subjects, per_class
        self.image_size, self.seed, self.style = image_size, seed, style
        self.label_noise, self.classes = 0.0, None

    def manifest(self) -> pd.DataFrame:
        t = synthetic.item_table(self.n_subjects, self.per_class)
        return pd.DataFrame(
            {
                "item": [f"synthetic-{self.style}:{i}" for i in t["index"]],
                "label": t["label"].astype(np.int64),
                "label_name": t["label_name"],
                "group": [f"{self.style}:s{s:04d}" for s in t["subject"]],
                "split": "",
            }
        )


@dataclasses.dataclass
class Domain:
    """One data set of the test: its name, images (crops), class names, items and groups."""

    name: str
    images: np.ndarray
    label_names: np.ndarray
    class_names: list[str]
    items: np.ndarray
    groups: np.ndarray
    describe: str


@ray.remote
def _crop_task(source: Source, items: list[str], detector: str, margin: float, size: int,
               fallback: str) -> tuple:  # fmt: skip
    crops, fallbacks, _, unreadable = crop_chunk(source, items, detector, margin, size, fallback)
    return crops, fallbacks, unreadable


def _styled_domain(cfg: Config) -> Domain:
    """Data set B of a synthetic run: rendered and cropped in Ray tasks (one per chunk)."""
    nf = cfg.newfaces
    seed = cfg.data.seed + nf.seed_offset
    source = StyledSyntheticSource(
        nf.n_subjects or cfg.data.n_subjects, cfg.data.per_class, cfg.data.image_size, seed,
        nf.style,
    )  # fmt: skip
    m = source.manifest()
    items = m["item"].tolist()
    cs = cfg.faces.chunk_size
    task = _crop_task.options(num_cpus=cfg.resources.cpus_per_task, scheduling_strategy="SPREAD")
    ref = ray.put(source)
    args = (cfg.faces.detector, margin_of(cfg), cfg.faces.size, cfg.faces.fallback)
    chunks: dict[Any, int] = {
        task.remote(ref, items[i : i + cs], *args): i for i in range(0, len(items), cs)
    }
    parts: dict[int, np.ndarray] = {}

    def store(i: int, result: tuple) -> str:
        parts[i] = result[0]
        return ""

    common.drain(chunks, store, "newfaces", f"data set B ({nf.style}) chunks", len(chunks))
    images = np.concatenate([parts[i] for i in sorted(parts)])
    names = m["label_name"].to_numpy(object)
    return Domain(
        f"synthetic-{nf.style}",
        images,
        names,
        _present(source.class_names, names),
        m["item"].to_numpy(object),
        m["group"].astype(str).to_numpy(object),
        f"synthetic faces in the '{nf.style}' style ({synthetic.STYLES.help(nf.style)}),"
        f" generator seed {seed}: {source.n_subjects} new identities",
    )


def _present(class_names: Sequence[str], label_names: np.ndarray) -> list[str]:
    """The classes that have images (a joined set's half may lack some, e.g. JAFFE contempt)."""
    have = set(label_names)
    return [c for c in class_names if c in have]


def _prepared_domain(name: str, prepared: Any, mask: np.ndarray | None, describe: str) -> Domain:
    m = prepared.manifest
    keep = np.ones(len(m), bool) if mask is None else mask
    names = m.loc[keep, "label_name"].to_numpy(object)
    return Domain(
        name,
        prepared.crops.take(np.flatnonzero(keep)),
        names,
        _present(prepared.class_names, names),
        m.loc[keep, "item"].astype(str).to_numpy(object),
        m.loc[keep, "group"].astype(str).to_numpy(object),
        describe,
    )


def other_data(cfg: Config) -> DataConfig:
    """Data set B's data config: ``newfaces.other`` at ``newfaces.other_root``, with A's
    neutral-frame choice where B reads it (CK+)."""
    from fer_ray.data.datasets import DATASETS

    nf = cfg.newfaces
    DATASETS.check(nf.other)
    if nf.other == "synthetic":
        raise ConfigError(
            "newfaces.other=synthetic: for synthetic B leave newfaces.other unset (B is then"
            " another rendering: newfaces.style, newfaces.seed_offset)"
        )
    if not nf.other_root:
        raise ConfigError(f"newfaces.other={nf.other} needs newfaces.other_root (its folder)")
    neutral = cfg.data.neutral_frames if nf.other in ("ckplus", "ckplus_jaffe") else False
    return DataConfig(name=nf.other, root=nf.other_root, neutral_frames=neutral)


def domains(ctx: StageContext) -> tuple[Domain, Domain]:
    """Data sets A and B of this run (see the module docstring)."""
    cfg = ctx.cfg
    nf = cfg.newfaces
    prepared = ctx.prepared()
    if nf.other is None and cfg.data.name in HALVES:
        (a, pa), (b, pb) = HALVES[cfg.data.name]
        g = prepared.manifest["group"].astype(str)
        return (
            _prepared_domain(a, prepared, g.str.startswith(pa).to_numpy(), f"the {a} half"),
            _prepared_domain(b, prepared, g.str.startswith(pb).to_numpy(), f"the {b} half"),
        )
    a = _prepared_domain(cfg.data.name, prepared, None, f"the run's data set ({cfg.data.name})")
    if nf.other is None:
        if cfg.data.name != "synthetic":
            raise ConfigError(
                f"newfaces needs data set B: set newfaces.other (a data.name) and"
                f" newfaces.other_root for data.name={cfg.data.name}"
            )
        return a, _styled_domain(cfg)
    other_cfg = dataclasses.replace(cfg, data=other_data(cfg))
    b = load_prepared(other_cfg)
    return a, _prepared_domain(nf.other, b, None, f"{nf.other} at {nf.other_root}")


def bundle(
    cfg: Config, doms: Sequence[Domain], state: dict | None
) -> tuple[dict[str, TrialData], list[str], pd.DataFrame]:
    """Per domain a pixel ``TrialData`` under the shared class map with its grouped test
    holdout; the shared classes; one row per image (what ``domains.csv`` stores)."""
    classes = cross_domain.shared_classes(doms[0].class_names, doms[1].class_names)
    out, rows = {}, []
    for d in doms:
        keep, y = cross_domain.relabel(d.label_names, classes)
        groups = d.groups[keep].astype(str)
        if len(np.unique(groups)) < 3:
            raise StageError(
                f"newfaces: data set {d.name} has {len(np.unique(groups))} subject(s) in the"
                f" shared classes {classes}; a grouped train/val/test split needs at least 3"
            )
        test = grouped_holdout(y, groups, cfg.ensemble.test_fraction, cfg.seed)
        out[d.name] = TrialData(
            d.images[keep], "pixels", y, groups, test, np.full(len(y), -1), len(classes), state,
            cfg.train.recipe,
        )  # fmt: skip
        rows.append(
            pd.DataFrame(
                {"domain": d.name, "item": d.items[keep], "label": y, "group": groups,
                 "test": test}
            )
        )  # fmt: skip
    return out, classes, pd.concat(rows, ignore_index=True)


def newfaces_trainable(
    config: dict[str, Any], cfg: Config, chosen: dict, data_ref: Any, plans: dict | None = None
) -> None:
    """One member trained on one data set (the member trainer, epoch selected on its
    validation split), scored on both data sets' test holdouts (and on every image of the
    data set it did not train on)."""
    common.set_threads(cfg, cfg.resources.cpus_per_trial)
    doms: dict[str, TrialData] = ray.get(data_ref[0])
    train_on, member = str(config["train"]), int(config["member"])
    plan = (plans or {}).get(train_on)
    m = train_member(cfg, chosen, plan, doms[train_on], member_seed(cfg.seed, member),
                     select_on="val")  # fmt: skip
    probs: dict[str, np.ndarray] = {}
    final: dict[str, Any] = {
        "step": m.last_step + 1, "final": True, "train": train_on, "member": member
    }  # fmt: skip
    for name, e in doms.items():
        probs[name] = predict_proba(m.model, e.split(e.test).x)
        final[f"acc_{name}"] = float((probs[name].argmax(1) == e.y[e.test]).mean())
        if name != train_on:
            probs[f"{name}:all"] = predict_proba(m.model, e.split(np.ones(len(e.y), bool)).x)
            final[f"acc_all_{name}"] = float((probs[f"{name}:all"].argmax(1) == e.y).mean())
    final.update(
        val_acc=float(m.state["best"]["score"]), selected_step=int(m.state["best"]["step"]),
        n_train=len(m.train), n_val=len(m.val), **node_info(),
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "probs.npz", **{k.replace(":", "__"): v for k, v in probs.items()})
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(tmp))
    common.release_accelerator(m.model)


def stage(ctx: StageContext) -> None:
    cfg = ctx.cfg
    chosen = files.read_json(ctx.paths.stage(Grid.DIR) / Grid.CHOSEN)
    mcfg = common.model_config(cfg, chosen)
    check_input_size(mcfg.backbone, cfg.faces.size)
    doms = domains(ctx)
    state = stand_in_state(ctx, mcfg.backbone, NewFaces.DIR)
    data, classes, table = bundle(cfg, doms, state)
    run(cfg, ctx.paths, ray.put(data), data, classes, table, doms, chosen, ctx.resume)


def _trainings(
    cfg: Config,
    out: Path,
    data_ref: Any,
    data: dict[str, TrialData],
    names: list[str],
    classes: list[str],
    chosen: dict[str, Any],
    resume: bool,
) -> tuple[list[dict], list[dict], dict[tuple[str, str], list[np.ndarray]], dict]:
    """The Tune run over (training data set, member): rows, work, predictions, plans."""
    m = cfg.newfaces.members
    space = {"train": tune.grid_search(names), "member": tune.grid_search(list(range(m)))}
    # train.* as every member trainer applies it: per training data set (its classes, its
    # member 0 for train.lr: auto)
    plans = {
        n: training_choices.plan(cfg, out, data[n], data[n], classes, chosen, resume, f"{n}_")
        for n in names
    }
    params = {"cfg": cfg, "chosen": chosen, "data_ref": [data_ref], "plans": plans}
    probs: dict[tuple[str, str], list[np.ndarray]] = {}

    def record(r: tune.Result, d: Path | None) -> tuple[dict, dict]:
        met = r.metrics
        dst = out / NewFaces.PREDICTIONS_DIR / f"{met['train']}_{int(met['member']):02d}.npz"
        shutil.copy(Path(d) / "probs.npz", dst)
        row = {k: met[k] for k in ("train", "member", "val_acc", "selected_step", "n_train",
                                   "n_val")}  # fmt: skip
        row |= {f"test_{k[4:]}": v for k, v in met.items() if k.startswith("acc_")}
        work = {"unit": f"train on {met['train']} member {met['member']}", **common.where(met)}
        return row, work

    spec = TuneStage(NewFaces.DIR, newfaces_trainable, params, space, len(names) * m, record)
    tuned = run_tune_stage(cfg, spec, resume)
    rows, work = [], []
    for row, w in sorted(tuned.records, key=lambda t: (names.index(t[0]["train"]), t[0]["member"])):
        with np.load(
            out / NewFaces.PREDICTIONS_DIR / f"{row['train']}_{int(row['member']):02d}.npz"
        ) as z:
            for key in z.files:
                probs.setdefault((row["train"], key.replace("__", ":")), []).append(z[key])
        rows.append(row)
        work.append(w)
    return rows, work, probs, plans


def run(
    cfg: Config,
    paths: RunPaths,
    data_ref: Any,
    data: dict[str, TrialData],
    classes: list[str],
    table: pd.DataFrame,
    doms: Sequence[Domain],
    chosen: dict[str, Any],
    resume: bool,
) -> dict[str, Any]:
    out = paths.stage(NewFaces.DIR)
    (out / NewFaces.PREDICTIONS_DIR).mkdir(parents=True, exist_ok=True)
    names = [d.name for d in doms]
    m = cfg.newfaces.members
    rows, work, probs, plans = _trainings(cfg, out, data_ref, data, names, classes, chosen, resume)
    truth = {}
    for name, d in data.items():
        truth[name] = (d.y[d.test], d.groups[d.test])
        truth[f"{name}:all"] = (d.y, d.groups)
    mat = cross_domain.matrix(probs, truth, names, cfg.seed, cfg.statistics.interval)
    conf = pd.concat(
        [
            cross_domain.vote_confusion(p, truth[test][0], classes).assign(train=train, test=test)
            for (train, test), p in probs.items()
        ],
        ignore_index=True,
    )
    mat.to_csv(out / NewFaces.MATRIX, index=False)
    conf.to_csv(out / NewFaces.CONFUSION, index=False)
    pd.DataFrame(rows).to_csv(out / NewFaces.MEMBERS, index=False)
    table.to_csv(out / NewFaces.DOMAINS, index=False)
    common.write_work(out, work)
    summary = {
        "domains": [
            {"name": d.name, "describe": d.describe, "n_images": int(len(data[d.name].y)),
             "n_groups": int(len(np.unique(data[d.name].groups))),
             "n_test": int(data[d.name].test.sum()),
             "n_test_groups": int(len(np.unique(data[d.name].groups[data[d.name].test]))),
             "dropped_classes": [c for c in d.class_names if c not in classes],
             "dropped_images": int(len(d.items) - len(data[d.name].y))}
            for d in doms
        ],
        "classes": classes,
        "members": m,
        "backbone": common.model_config(cfg, chosen).backbone,
        "lr": float(chosen["lr"]),
        "hidden": int(chosen["hidden"]),
        "epochs": training_choices.member_epochs(cfg),
        "recipe": cfg.train.recipe,
        "weights": cfg.model.weights,
        "paper_new_faces": 0.347,
        "paper_test": 0.90,
    }  # fmt: skip
    if any(p is not None for p in plans.values()):
        summary["training"] = {
            n: training_choices.summary_entry(cfg, plans[n], data[n], chosen) for n in names
        }
    files.write_json(out / layout.SUMMARY, summary)
    cells = {(r.train, r.test): r.vote_acc for r in mat.itertuples()}
    a, b = names
    print(
        f"[newfaces] train {a}: {a} {cells[a, a]:.3f} / {b} {cells[a, b]:.3f} · train {b}:"
        f" {b} {cells[b, b]:.3f} / {a} {cells[b, a]:.3f} (soft vote of {m}, held-out subjects)",
        flush=True,
    )
    return summary
