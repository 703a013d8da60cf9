"""The embedded synthetic data set (fer_ray.data.synthetic) as a source; group = subject."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fer_ray.data import synthetic
from fer_ray.data.source import Box, Source

if TYPE_CHECKING:
    from fer_ray.config import DataConfig


class SyntheticSource(Source):
    """The embedded AU-driven faces; items are 'synthetic:<index>'."""

    class_names = tuple(synthetic.CLASS_NAMES)

    def __init__(self, cfg: DataConfig):
        self.n_subjects, self.per_class = cfg.n_subjects, cfg.per_class
        self.image_size, self.seed = cfg.image_size, cfg.seed

    def manifest(self) -> pd.DataFrame:
        t = synthetic.item_table(self.n_subjects, self.per_class)
        return pd.DataFrame(
            {
                "item": [f"synthetic:{i}" for i in t["index"]],
                "label": t["label"].astype(np.int64),
                "label_name": t["label_name"],
                "group": [f"s{s:04d}" for s in t["subject"]],
                "split": "",
            }
        )

    def identity(self) -> dict[str, Any]:
        return {
            "source": "synthetic",
            "version": synthetic.GENERATOR_VERSION,
            "n_subjects": self.n_subjects,
            "per_class": self.per_class,
            "image_size": self.image_size,
            "seed": self.seed,
        }

    def load(self, items: Sequence[str]) -> list[tuple[np.ndarray, Box | None]]:
        idx = [int(str(i).split(":", 1)[1]) for i in items]
        images, _, boxes = synthetic.render_items(
            idx,
            n_subjects=self.n_subjects,
            per_class=self.per_class,
            image_size=self.image_size,
            seed=self.seed,
        )
        return [(images[k], tuple(int(v) for v in boxes[k])) for k in range(len(idx))]
