"""The embedded synthetic data set (fer_ray.data.synthetic) as a source; group = subject.

``data.label_noise`` (seed 004's cleaning, scored against the truth): the test holdout is
decided later, by the features stage, from the run seed, so the source cannot know it. With
noise on, the source therefore fixes its own grouped, stratified test subjects (about
``NOISE_TEST_FRACTION``, from ``data.seed`` and the clean labels) in the manifest's ``split``
column, the config requires ``data.test_split: test`` so that exactly those subjects are the
shared holdout, and labels are flipped only among the other ("train") items, within the
selected classes (``fer_ray.data.noise.flip_labels``: a uniform other class). The clean label
(``clean_label_name``) and a ``flipped`` flag stay in the manifest (prepare/manifest.csv), so
the clean stage can score its flags. No rendered byte depends on labels or noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fer_ray.data import synthetic
from fer_ray.data.noise import flip_labels
from fer_ray.data.source import Box, Source
from fer_ray.data.splits import grouped_holdout

if TYPE_CHECKING:
    from fer_ray.config import DataConfig

NOISE_TEST_FRACTION = 0.15  # with label noise: the source's own clean test subjects (1/7)
NOISE_SEED_SALT = 0x6E6F6973  # the flips' seed = data.seed + this (not the split's seed)


class SyntheticSource(Source):
    """The embedded AU-driven faces; items are 'synthetic:<index>'."""

    class_names = tuple(synthetic.CLASS_NAMES)
    style: str | None = None  # a registered rendering style (seed 002's data set B); None: default

    def __init__(self, cfg: DataConfig):
        self.n_subjects, self.per_class = cfg.n_subjects, cfg.per_class
        self.image_size, self.seed = cfg.image_size, cfg.seed
        self.label_noise = float(getattr(cfg, "label_noise", 0.0))
        self.classes = list(cfg.classes) if cfg.classes else None

    def manifest(self) -> pd.DataFrame:
        t = synthetic.item_table(self.n_subjects, self.per_class)
        m = pd.DataFrame(
            {
                "item": [f"synthetic:{i}" for i in t["index"]],
                "label": t["label"].astype(np.int64),
                "label_name": t["label_name"],
                "group": [f"s{s:04d}" for s in t["subject"]],
                "split": "",
            }
        )
        return self._with_noise(m) if self.label_noise > 0 else m

    def _with_noise(self, m: pd.DataFrame) -> pd.DataFrame:
        """Own test subjects from the clean labels, then flips among the other items only."""
        names = list(self.class_names)
        kept = self.classes or names
        in_kept = m["label_name"].isin(kept).to_numpy()
        test = np.zeros(len(m), dtype=bool)
        test[in_kept] = grouped_holdout(
            m.loc[in_kept, "label"].to_numpy(),
            m.loc[in_kept, "group"].to_numpy(),
            NOISE_TEST_FRACTION,
            self.seed,
        )
        sub = np.array([kept.index(n) if n in kept else 0 for n in m["label_name"]], np.int64)
        noisy, flipped = flip_labels(
            sub, self.label_noise, len(kept), self.seed + NOISE_SEED_SALT, in_kept & ~test
        )
        m["clean_label_name"] = m["label_name"]
        m["label_name"] = np.where(flipped, np.asarray(kept, dtype=object)[noisy], m["label_name"])
        m["label"] = m["label_name"].map({n: i for i, n in enumerate(names)}).astype(np.int64)
        m["flipped"] = flipped
        m["split"] = np.where(test, "test", "train")
        return m

    def identity(self) -> dict[str, Any]:
        return {
            "source": "synthetic",
            "version": synthetic.GENERATOR_VERSION,
            "n_subjects": self.n_subjects,
            "per_class": self.per_class,
            "image_size": self.image_size,
            "seed": self.seed,
            **({"style": self.style} if self.style else {}),
        }

    def load(self, items: Sequence[str]) -> list[tuple[np.ndarray, Box | None]]:
        idx = [int(str(i).split(":", 1)[1]) for i in items]
        images, _, boxes = synthetic.render_items(
            idx,
            n_subjects=self.n_subjects,
            per_class=self.per_class,
            image_size=self.image_size,
            seed=self.seed,
            **({"style": synthetic.STYLES.get(self.style)} if self.style else {}),
        )
        return [(images[k], tuple(int(v) for v in boxes[k])) for k in range(len(idx))]
