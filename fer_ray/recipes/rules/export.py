"""export: every ensemble member's penultimate (pooled) features of every image.

Seed 001 wrote the 512 AveragePool outputs of its ResNet-18 "to a CSV file before the fully
connected layer" and read its rules off trees fitted to them (sec. 2.3-2.4). Here one Ray task
per member rebuilds the member's network from its stored ``model.pt`` (the trunk from the trial
data bundle's weights, the trained tail from the file) and runs every image of the run through
it: train, validation and test, in the item order of ``grid/splits.csv``. Each task gets the
bundle and the state dict by object reference, never a driver-local path, and its table is
written as it arrives (``export/members/member_XX/features.parquet``, or ``.csv`` with
``export.format: csv``), so an interrupted stage redoes only the missing members.

Columns: ``item`` (index into the manifest), ``role`` (train | val | test for this member),
``label`` (the run's label), ``pred`` (the member's predicted class), ``p_pred`` (its
probability), then ``f0`` .. ``f{D-1}`` (``fer_ray.analysis.rules.default_feature_names``).
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
from fer_ray.analysis.rules import default_feature_names, feature_columns
from fer_ray.config import Config
from fer_ray.errors import DataError, StageError
from fer_ray.layout import Ensemble, Export, Grid, RunPaths
from fer_ray.stages.cluster import node_info
from fer_ray.stages.common import drain, set_threads, trial_model, write_work
from fer_ray.train.bundle import TrialData

if TYPE_CHECKING:
    from fer_ray.stages.context import StageContext

BATCH = 256
TASK_WORK = "tasks.json"  # node and seconds of each member's task, kept across a resume
ROLES = ("train", "val", "test")


def load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """A member's stored module (the tail on cached features, else the whole network)."""
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise StageError(f"{where} does not fit the run's model ({str(e).splitlines()[0]})") from e


@torch.no_grad()
def member_outputs(
    cfg: Config, data: TrialData, hidden: int, state: dict[str, torch.Tensor], device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """(pooled features (N, D) float32, class probabilities (N, C)) of every item."""
    model, module = trial_model(cfg.model, data, hidden, 0, device)
    load_state(module, state, "a member's model.pt")
    model.eval()
    feats, probs = [], []
    n = len(data.y)
    for s in range(0, n, BATCH):
        mask = np.zeros(n, dtype=bool)
        mask[s : s + BATCH] = True
        x = data.split(mask).x.to(device)  # the recipe's eval transform for pixels
        z = model.tail.pooled(x if data.kind == "features" else model.trunk(x))
        feats.append(z.cpu())
        probs.append(torch.softmax(model.tail.head(z), 1).cpu())
    return torch.cat(feats).numpy().astype(np.float32), torch.cat(probs).numpy()


@ray.remote
def _export_task(
    cfg: Config, data: TrialData, hidden: int, state: dict, threads: float
) -> dict[str, Any]:
    set_threads(cfg, threads)
    t0 = time.time()
    feats, probs = member_outputs(cfg, data, hidden, state)
    return {
        "features": feats,
        "probs": probs,
        **node_info(),
        "seconds": round(time.time() - t0, 3),
    }


def features_path(paths: RunPaths, member: int, fmt: str) -> Path:
    return (
        paths.stage(Export.DIR)
        / Export.MEMBERS_DIR
        / Ensemble.member_dir(member)
        / Export.features_file(fmt)
    )


def roles(member_npz: Path, n: int) -> np.ndarray:
    """train | val | test per item, from the member's stored indices."""
    role = np.full(n, "", dtype=object)
    with np.load(member_npz) as z:
        for r in ROLES:
            role[z[f"{r}_idx"]] = r
    return role


def table(
    feats: np.ndarray, probs: np.ndarray, labels: np.ndarray, role: np.ndarray
) -> pd.DataFrame:
    pred = probs.argmax(1)
    head = pd.DataFrame(
        {
            "item": np.arange(len(labels)),
            "role": role.astype(str),
            "label": labels.astype(np.int64),
            "pred": pred.astype(np.int64),
            "p_pred": probs[np.arange(len(pred)), pred].astype(np.float32),
        }
    )
    body = pd.DataFrame(feats, columns=default_feature_names(feats.shape[1]))
    return pd.concat([head, body], axis=1)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Parquet or CSV by the suffix, atomically: a killed stage never leaves a torn table that
    looks finished."""
    if path.suffix == ".parquet":
        files.write_bytes(path, frame.to_parquet(index=False))
    else:
        files.write_text(path, frame.to_csv(index=False))


def read_table(path: Path) -> pd.DataFrame:
    """An exported member table (Parquet or CSV by its suffix)."""
    if not path.is_file():
        raise StageError(f"{path} is missing: rerun the export stage (--fresh)")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def stage(ctx: StageContext) -> None:
    data_ref, _ = ctx.trial_data()
    run(ctx.cfg, ctx.paths, data_ref)


def run(cfg: Config, paths: RunPaths, data_ref: Any) -> dict[str, Any]:
    out = paths.stage(Export.DIR)
    out.mkdir(parents=True, exist_ok=True)
    members = paths.member_dirs()
    if not members:
        raise StageError(f"no ensemble members under {paths.stage(Ensemble.DIR)}")
    hidden = int(files.read_json(paths.stage(Grid.DIR) / Grid.CHOSEN)["hidden"])
    data: TrialData = ray.get(data_ref)
    fmt = cfg.export.format
    threads = cfg.resources.cpus_per_task
    task = _export_task.options(num_cpus=threads, scheduling_strategy="SPREAD")
    pending: dict[Any, int] = {}
    for d in members:
        m = int(d.name.split("_")[1])
        if not features_path(paths, m, fmt).is_file():
            state = torch.load(d / Ensemble.MODEL, map_location="cpu", weights_only=True)
            pending[task.remote(cfg, data_ref, hidden, ray.put(state), threads)] = m
    work_file = out / TASK_WORK
    work = files.read_json(work_file) if work_file.is_file() else {}

    def store(m: int, result: dict) -> str:
        member_dir = paths.stage(Ensemble.DIR) / Ensemble.MEMBERS_DIR / Ensemble.member_dir(m)
        role = roles(member_dir / Ensemble.MEMBER, len(data.y))
        frame = table(result["features"], result["probs"], data.y, role)
        write_table(frame, features_path(paths, m, fmt))
        work[str(m)] = {k: result[k] for k in ("node_id", "node_ip", "seconds")}
        files.write_json(work_file, work)
        return ""

    drain(pending, store, "export", "members", len(members))
    summary = summarise(paths, members, fmt, data)
    write_work(
        out,
        [
            {"unit": f"member {m} export", **w}
            for m, w in sorted(work.items(), key=lambda kv: int(kv[0]))
        ],
    )
    files.write_json(out / layout.SUMMARY, summary)
    print(
        f"[export] {len(members)} members × {summary['n_items']} images × "
        f"{summary['n_features']} features ({fmt}) · test predictions agree with the ensemble's"
        f" on {100 * summary['test_pred_agreement']:.2f} %",
        flush=True,
    )
    return summary


def summarise(paths: RunPaths, members: list[Path], fmt: str, data: TrialData) -> dict[str, Any]:
    """Facts, and the check that the rebuilt networks are the ensemble's: on the test split
    the exported predictions and features must match what the ensemble stage stored."""
    agree, gaps, n_feat = [], [], 0
    for d in members:
        frame = read_table(features_path(paths, int(d.name.split("_")[1]), fmt))
        feat_cols = feature_columns(frame.columns)
        n_feat = len(feat_cols)
        with np.load(d / Ensemble.MEMBER) as z:
            test_idx, stored_probs, stored_feats = (
                z["test_idx"],
                z["test_probs"],
                z["test_features"],
            )
        rows = frame.set_index("item").loc[test_idx]
        if (rows["role"] != "test").any():
            raise DataError(f"{d}: the exported roles disagree with the member's test indices")
        agree.append(float((rows["pred"].to_numpy() == stored_probs.argmax(1)).mean()))
        gaps.append(float(np.abs(rows[feat_cols].to_numpy() - stored_feats).max()))
    return {
        "members": len(members),
        "format": fmt,
        "n_items": int(len(data.y)),
        "n_features": n_feat,
        "kind": data.kind,
        "roles": {
            r: int(c)
            for r, c in zip(
                *np.unique(roles(members[0] / Ensemble.MEMBER, len(data.y)), return_counts=True)
            )
        },
        "test_pred_agreement": float(np.mean(agree)),
        "test_feature_max_abs_diff": float(np.max(gaps)),
    }
