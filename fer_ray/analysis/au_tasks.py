"""The pure work of stage ``aumaps`` (seed 003, sections 3-4), one function per Ray task.

Why a module of its own: the stage only fans these out and stores what they return; the
geometry (where a synthetic AU region lands in the network's input) and the per-(member, AU)
numbers are plain numpy/torch, testable without Ray.

- ``conv_stack``: a trained member's conv layers as one ``nn.Sequential`` of named units
  (the frozen trunk's and the trained blocks'), what ``deconv`` and ``receptive_field`` read.
- ``maxima_task``: every map's maximum per image and where (seed 003 3.2 steps 1-2).
- ``au_task``: one Action Unit: eq. 13 distances of every map, the best map (eq. 15) and, where
  the true regions are known (synthetic faces), the region check against shuffled AU labels.
- ``panel_task``: for some maps, the top-k receptive-field crops above their Zeiler–Fergus
  deconvolutions (seed 003 Table 2), as PNG bytes.
- ``input_boxes``: boxes in the source image → boxes in the network input, through the crop
  (``fer_ray.faces.crop.crop``) and the recipe's eval resize + centre crop.
- ``synthetic_au_labels`` / ``manifest_aus``: the AU labels of the synthetic faces (with their
  true regions in the network input) or of a real data set's ``AU<n>`` manifest columns.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from fer_ray.analysis import au_maps, deconv
from fer_ray.data import au_regions, synthetic
from fer_ray.errors import DataError, ModelError
from fer_ray.faces.crop import square_box


def conv_stack(model: nn.Module) -> nn.Sequential:
    """The member's conv part in order: trunk units then tail blocks (``FerNet``)."""
    units = list(model.trunk.named_children()) + list(model.tail.blocks.named_children())
    names = [n for n, _ in units]
    if len(set(names)) != len(names):
        raise ModelError(f"the backbone's units are not uniquely named: {names}")
    return nn.Sequential(OrderedDict(units)).eval()


def member_state_into(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a stored member's ``model.pt``: the whole ``FerNet`` (trained from pixels) or only
    its tail (trained on cached trunk features; the trunk is then the shared frozen one)."""
    if any(k.startswith(("trunk.", "tail.")) for k in state):
        model.load_state_dict(state)
    else:
        model.tail.load_state_dict(state)


def map_tables(rows: Sequence[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``au_task`` rows (each with its ``member``) → (one row per (member, AU): its best map
    and, where checked, the region agreement; one row per (member, AU, map): its distance)."""
    dist = pd.DataFrame(
        [{"member": r["member"], "au": r["au"], "map": i, "distance": d}
         for r in rows for i, d in enumerate(r.get("distances", []))],
        columns=["member", "au", "map", "distance"],
    )  # fmt: skip
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "distances"} for r in rows])
    if not len(table):
        return pd.DataFrame(columns=MAP_COLUMNS), dist
    return table[[c for c in MAP_COLUMNS + AGREEMENT_COLUMNS if c in table.columns]], dist


def member_tops(
    maxima: dict[int, dict[str, np.ndarray]],
    images: dict[int, np.ndarray],
    items: np.ndarray,
    k: int,
) -> pd.DataFrame:
    """Every member's ``top_table``, its image rows named by the manifest ``items`` they are
    (``images[m]``: the manifest rows member m's maxima were computed on)."""
    tops = []
    for m, mx in maxima.items():
        t = top_table(mx["act"], mx["pos"], k)
        t.insert(0, "member", m)
        t["item"] = items[images[m]][t["image"].to_numpy()]
        tops.append(t.drop(columns="image"))
    return pd.concat(tops, ignore_index=True)


def agreement_summary(table: pd.DataFrame) -> dict[str, Any]:
    """Over the (member, AU) pairs whose region was checked: mean agreement against the
    shuffled baseline's, how many pairs beat it and how many with p < 0.05 (empty: none)."""
    if not len(table) or "agreement" not in table:
        return {}
    ok = table.dropna(subset=["agreement"])
    return {
        "agreement_mean": float(ok["agreement"].mean()),
        "shuffled_mean": float(ok["shuffled_mean"].mean()),
        "n_pairs": int(len(ok)),
        "n_above": int((ok["agreement"] > ok["shuffled_mean"]).sum()),
        "n_significant": int((ok["p_value"] < 0.05).sum()),
    }


def maxima_task(net: nn.Module, x: torch.Tensor, unit: str) -> dict[str, Any]:
    """(N, maps) maxima, (N, maps, 2) positions and the unit's receptive field."""
    act, pos = deconv.map_maxima(net, x, unit)
    rf = au_maps.receptive_field(net, unit)
    return {"act": act, "pos": pos, "rf": (rf.size, rf.stride, rf.offset)}


MAP_COLUMNS = ["member", "au", "map", "distance", "n_with", "n_without"]
AGREEMENT_COLUMNS = ["agreement", "shuffled_mean", "shuffled_sd", "p_value"]


def au_task(
    act: np.ndarray,
    pos: np.ndarray,
    au: str,
    present: np.ndarray,
    regions: np.ndarray | None,
    rf: tuple[int, int, int],
    *,
    n: int = 9,
    k: int = 9,
    shuffles: int = 100,
    seed: int = 0,
    rule: str = "centre",
) -> dict[str, Any]:
    """One AU: the distance of every map (eq. 13), its best map, and the region check.

    ``present`` (N,) says which images show the AU; ``regions`` (N, 4) is the AU's true box
    per image in network-input pixels, or None where it is unknown (real data)."""
    mask = np.asarray(present, dtype=bool)
    row: dict[str, Any] = {"au": au, "n_with": int(mask.sum()), "n_without": int((~mask).sum())}
    if row["n_with"] == 0 or row["n_without"] == 0:
        return {**row, "map": -1, "distance": float("nan"), "distances": []}
    d = au_maps.au_map_distance(act, mask, n)
    row.update(map=int(np.argmax(d)), distance=float(d.max()), distances=d.tolist())
    if regions is not None:
        table = au_maps.au_region_agreement(
            act, pos, pd.DataFrame({au: mask.astype(float)}), np.asarray(regions)[:, None, :],
            au_maps.ReceptiveField(*rf), n=n, k=k, n_shuffles=shuffles, seed=seed, rule=rule,
        )  # fmt: skip
        t = table.iloc[0]
        if int(t["map"]) != row["map"]:
            raise RuntimeError("au_region_agreement picked another map than au_map_distance")
        for c in AGREEMENT_COLUMNS:
            if c in table:
                row[c] = float(t[c])
    return row


def top_table(act: np.ndarray, pos: np.ndarray, k: int) -> pd.DataFrame:
    """Per map its top-k images (row numbers of ``act``), activations and argmax positions."""
    top = au_maps.top_images(act, k)
    maps = np.repeat(np.arange(act.shape[1]), top.shape[1])
    idx = top.reshape(-1)
    return pd.DataFrame(
        {"map": maps, "rank": np.tile(np.arange(top.shape[1]), act.shape[1]), "image": idx,
         "activation": act[idx, maps], "row": pos[idx, maps, 0], "col": pos[idx, maps, 1]}
    )  # fmt: skip


def panel_task(
    net: nn.Module, x: torch.Tensor, unit: str, maps: Sequence[int], act: np.ndarray,
    pos: np.ndarray, k: int,
) -> dict[int, bytes]:  # fmt: skip
    """PNG bytes per map: its top-k receptive-field crops (first row) above the
    deconvolutions of those activations (second row), seed 003's Table 2 layout."""
    import cv2

    idx = au_maps.top_images(act, k)
    chosen = np.arange(act.shape[1])[:, None]
    top = deconv.TopActivations(
        idx, act[idx, chosen], pos[idx, chosen], au_maps.receptive_field(net, unit)
    )
    out = {}
    for c in maps:
        grid = deconv.map_panel(net, x, unit, int(c), top)
        ok, png = cv2.imencode(".png", np.ascontiguousarray(grid[..., ::-1]))
        if not ok:
            raise DataError(f"could not encode the panel of map {c} as PNG")
        out[int(c)] = png.tobytes()
    return out


def crop_frame(
    box: Sequence[float] | None, margin: float, image_hw: tuple[int, int], size: int
) -> tuple[float, float, float]:
    """(x0, y0, scale) of ``fer_ray.faces.crop.crop``: source pixel x maps to
    ``(x - x0) * scale`` in the crop (a missing box: the centre square, ``square`` fallback)."""
    h, w = image_hw
    if box is None or min(box) < 0:
        cx, cy, half = w / 2, h / 2, min(h, w) / 2
    else:
        cx, cy, half = square_box(tuple(box), margin)  # type: ignore[arg-type]
    half = max(half, 1.0)
    x0, y0 = round(cx - half), round(cy - half)
    side = max(1, round(2 * half))
    return float(x0), float(y0), size / side


def input_boxes(
    boxes: np.ndarray,
    frames: np.ndarray,
    size: int,
    resize_ratio: float = 1.0,
) -> np.ndarray:
    """Source-image boxes (N, A, 4) → network-input boxes, clipped to ``[0, size]``.

    ``frames`` (N, 3) are ``crop_frame``'s (x0, y0, scale); the recipe's eval transform then
    resizes the crop to ``round(size * resize_ratio)`` and cuts the centre ``size`` square
    (offset ``round((R - size) / 2)``, as ``fer_ray.data.recipes``). Edges round outwards.
    """
    b = np.asarray(boxes, dtype=np.float64)
    f = np.asarray(frames, dtype=np.float64)
    if b.ndim != 3 or b.shape[2] != 4 or f.shape != (b.shape[0], 3):
        raise DataError(f"boxes must be (N, A, 4) and frames (N, 3), got {b.shape}, {f.shape}")
    big = round(size * resize_ratio)
    off = int(round((big - size) / 2.0))
    k = (f[:, 2] * big / size)[:, None]
    x = (b[..., [0, 2]] - f[:, None, None, 0]) * k[..., None] - off
    y = (b[..., [1, 3]] - f[:, None, None, 1]) * k[..., None] - off
    out = np.stack([np.floor(x[..., 0]), np.floor(y[..., 0]), np.ceil(x[..., 1]),
                    np.ceil(y[..., 1])], -1)  # fmt: skip
    return np.clip(out, 0, size).astype(np.int64)


BOX_COLUMNS = ["box_x0", "box_y0", "box_x1", "box_y1"]


def synthetic_au_labels(
    manifest: pd.DataFrame,
    *,
    n_subjects: int,
    per_class: int,
    image_size: int,
    seed: int,
    margin: float,
    size: int,
    resize_ratio: float = 1.0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The synthetic generator's AU intensities per manifest row (``AU<n>`` columns) and each
    AU's true region in the network's input, (N, A, 4): replayed from the generator's draws,
    then mapped through the face crop (the manifest's box, ``margin``, ``size``) and the
    recipe's eval resize (``resize_ratio``)."""
    idx = [int(str(i).split(":", 1)[1]) for i in manifest["item"]]
    geo = au_regions.synthetic_geometry(
        idx, n_subjects=n_subjects, per_class=per_class, image_size=image_size, seed=seed
    )
    aus = pd.DataFrame(np.stack([g.aus for g in geo]).astype(float),
                       columns=[f"AU{a}" for a in synthetic.AU_LIST])  # fmt: skip
    boxes = au_regions.region_boxes(geo, synthetic.AU_LIST)
    frames = np.array([
        crop_frame(tuple(b), margin, (image_size, image_size), size)
        for b in manifest[BOX_COLUMNS].to_numpy()
    ])  # fmt: skip
    return aus, input_boxes(boxes, frames, size, resize_ratio)


def manifest_aus(manifest: pd.DataFrame) -> pd.DataFrame | None:
    """A real data set's AU intensities (CK+'s ``AU<n>`` columns), or None without any.

    Neutral images count as showing no AU (CK+ first frames carry no FACS file); any other
    image without a FACS code (NaN) is left out of the analysis (NaN rows are returned)."""
    cols = sorted((c for c in manifest.columns if c[:2] == "AU" and c[2:].isdigit()),
                  key=lambda c: int(c[2:]))  # fmt: skip
    if not cols:
        return None
    aus = manifest[cols].astype(float).copy()
    neutral = manifest["label_name"].astype(str).to_numpy() == "neutral"
    aus.loc[neutral] = aus.loc[neutral].fillna(0.0)
    return aus
