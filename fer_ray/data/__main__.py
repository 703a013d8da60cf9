"""``python -m fer_ray.data NAME ROOT``: check a data set's layout before a long run.

Builds the manifest exactly as the pipeline's prepare stage does (same loader, same
errors) and prints what it found: classes in label order, images per class and per
split, groups and the groups note (when groups are not subjects), extra columns.
``--csv`` writes the manifest; ``--read`` also decodes every image and lists the
unreadable ones (what ``data.skip_unreadable`` would leave out). Files of formats fer_ray
does not read are counted and named; file names that are not valid UTF-8 are shown (and
kept in the manifest) with their odd bytes as ``\\xNN``.

    python -m fer_ray.data imagefolder /data/fer2013_images --read
    python -m fer_ray.data imagefolder /data/numeric --class-map 0=angry 1=disgust 2=fear ...
    python -m fer_ray.data rafdb /data/RAF-DB/basic --original
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from fer_ray.data import load_manifest
from fer_ray.data.datasets import DATASETS, create_source
from fer_ray.data.loaders.base import SKIPPED_NOTE
from fer_ray.errors import ConfigError, FerRayError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fer_ray.data", description=__doc__.split("\n")[0])
    p.add_argument("name", help=f"data set: {', '.join(DATASETS.names())}")
    p.add_argument("root", nargs="?", help="its folder (data.root); not needed for synthetic")
    p.add_argument("--classes", nargs="+", help="keep these classes, in this order")
    p.add_argument("--neutral-frames", action="store_true", help="ckplus: first frames as neutral")
    p.add_argument(
        "--class-map",
        nargs="+",
        metavar="FOLDER=CLASS",
        help="imagefolder: data.class_map, e.g. 0=angry 1=disgust (for numeric folders)",
    )
    images = p.add_mutually_exclusive_group()
    images.add_argument(
        "--aligned", dest="aligned", action="store_const", const=True, help="rafdb: Image/aligned"
    )
    images.add_argument(
        "--original",
        dest="aligned",
        action="store_const",
        const=False,
        help="rafdb: Image/original",
    )
    p.add_argument("--csv", help="write the manifest to this CSV file")
    p.add_argument("--read", action="store_true", help="decode every image (slow on big sets)")
    return p.parse_args(argv)


def summarise(m: pd.DataFrame) -> str:
    """Counts a user checks against the data set's documentation."""
    names = m.attrs.get("class_names", sorted(m["label_name"].unique()))
    lines = [f"{len(m)} images, {len(names)} classes, {m['group'].nunique()} groups"]
    lines.append(f"classes (label order): {', '.join(names)}")
    own = sorted(s for s in m["split"].fillna("").unique() if s)
    lines.append(
        f"splits: {', '.join(own)} (the data set's own; data.test_split may name one)"
        if own
        else "splits: none (fer_ray makes its own grouped splits)"
    )
    splits = m["split"].fillna("").replace("", "(none)")
    table = pd.crosstab(m["label_name"], splits, margins=True, margins_name="total")
    table = table.reindex([*names, "total"]).fillna(0).astype(int)
    lines.append(table.to_string())
    per_group = m.groupby("group").size()
    lines.append(
        f"images per group: min {per_group.min()}, median {per_group.median():g}, "
        f"max {per_group.max()} (groups are kept on one side of every split)"
    )
    note = m.attrs.get("groups_note")
    lines.append(f"groups note: {note}" if note else "groups: subjects (or movies) of the data set")
    extra = [c for c in m.columns if c not in ("item", "label", "label_name", "group", "split")]
    if extra:
        lines.append(f"extra columns: {', '.join(extra)}")
    for key, value in m.attrs.items():
        if key.startswith("excluded"):
            lines.append(f"{key}: {value}")
    skipped = m.attrs.get("skipped_files") or []
    if skipped:
        more = f"\n  ... and {len(skipped) - 20} more" if len(skipped) > 20 else ""
        lines.append(f"{SKIPPED_NOTE}: {len(skipped)}" + "".join(f"\n  {f}" for f in skipped[:20]))
        lines[-1] += more
    return "\n".join(lines)


def unreadable(name: str, root: str | None, m: pd.DataFrame, **options: object) -> list[str]:
    from fer_ray.config import DataConfig

    source = create_source(DataConfig(name=name, root=root, **options))  # type: ignore[arg-type]
    items = m["item"].tolist()
    bad = []
    for s in range(0, len(items), 256):
        chunk = items[s : s + 256]
        bad += [i for i, (img, _) in zip(chunk, source.load(chunk)) if img is None]
    return bad


def class_map(pairs: list[str]) -> dict[str, str]:
    """``["0=angry", "1=disgust"]`` → ``{"0": "angry", "1": "disgust"}``."""
    out = {}
    for pair in pairs:
        folder, sep, cls = pair.partition("=")
        if not sep or not folder or not cls:
            raise ConfigError(f"--class-map {pair!r}: expected FOLDER=CLASS, e.g. 0=angry")
        out[folder] = cls
    return out


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    options: dict[str, object] = {}
    if a.classes:
        options["classes"] = a.classes
    if a.neutral_frames:
        options["neutral_frames"] = True
    if a.aligned is not None:
        options["aligned"] = a.aligned
    try:
        if a.class_map:
            options["class_map"] = class_map(a.class_map)
        m = load_manifest(a.name, a.root, **options)
        print(summarise(m))
        if a.read:
            bad = unreadable(a.name, a.root, m, **options)
            more = f"\n  ... and {len(bad) - 50} more" if len(bad) > 50 else ""
            print(f"unreadable images: {len(bad)}" + "".join(f"\n  {b}" for b in bad[:50]) + more)
        else:
            print("unreadable images: not checked (--read decodes every image)")
    except FerRayError as e:
        print(f"{e.kind}: {e}", file=sys.stderr)
        return e.exit_code
    if a.csv:
        m.to_csv(a.csv, index=False)
        print(f"manifest written to {a.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
