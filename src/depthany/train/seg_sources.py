"""Training sources for ``task: semseg``: (image, label map) pairs through the mmseg pipeline of the V1 configs.

Registered in :data:`depthany.train.data.SOURCE_KINDS`:

* ``semseg``: a depthany RGB-D folder with ``labels/`` (``depthany synth`` output); ``split`` names
  ``splits/<split>.txt`` (default: every sample);
* ``cityscapes``: ``path`` = the ``cityscapes`` folder, ``split`` default ``train``;
* ``ade20k``: ``path`` = ``ADEChallengeData2016``, ``split`` default ``training`` (reduce-zero-label applied).

Each draw returns ``image`` (3, crop, crop) float32 normalised and ``labels`` (crop, crop) int64 (255 = ignore).
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from ..data.classes import ClassTable
from ..seg.augment import SegAugment
from ..seg.datasets import DatasetError, SegDataset, open_seg_dataset
from ..zoo import Preprocess
from .config import DataCfg, RecipeError, SourceCfg

_DATASET = {"semseg": ("synth", "all"), "cityscapes": ("cityscapes", "train"), "ade20k": ("ade20k", "training")}


class SegSource:
    """One ``data.sources`` entry of a segmentation recipe (module docstring)."""

    def __init__(self, cfg: SourceCfg, data: DataCfg, pre: Preprocess, key: str = "data.sources") -> None:
        if cfg.options:
            raise RecipeError(f"{key}.options: segmentation sources take no options, got {sorted(cfg.options)}")
        name, default_split = _DATASET[cfg.kind]
        try:
            self.dataset: SegDataset = open_seg_dataset(name, cfg.path, cfg.split or default_split)
        except (DatasetError, ValueError) as e:
            raise RecipeError(f"{key}.path: {e}") from None
        a = data.seg_aug
        self.augment = SegAugment(data.crop_size, a.short_side_tenths, a.max_long_ratio, a.cat_max_ratio,
                                  data.hflip, a.photometric, self.dataset.classes.ignore_index)

    @property
    def classes(self) -> ClassTable:
        return self.dataset.classes

    def __len__(self) -> int:
        return len(self.dataset)

    def load(self, index: int, rng: np.random.Generator) -> dict[str, Tensor]:
        s = self.dataset.load(index)
        return self.augment(s.rgb(), s.labels, rng)
