"""Periodic validation of ``task: semseg`` runs: mmseg's mIoU / mAcc / aAcc on a labelled split, sharded.

Each process segments its share of the images (``rank, rank + world, ...``) with the model's test settings
(``seg.test``: whole image or sliding window) and counts per-class areas; the areas, not per-process scores,
are all-reduced, so the numbers are exactly those of scoring the whole split in one process
(:func:`depthany.seg.score.score`, mmseg's ``IoUMetric``).

The split is read like the training data: ``data.val.path`` in the layout of the first training source's kind
(``semseg``: an RGB-D folder with labels, ``split`` a ``splits/<name>.txt``, default all samples;
``cityscapes``: default split ``val``; ``ade20k``: default ``validation``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..runtime.dist import DistEnv, all_reduce_sum
from ..seg.datasets import DatasetError, SegDataset, open_seg_dataset
from ..seg.infer import segment
from ..seg.metrics import Areas, intersect_and_union, total_area_to_metrics
from ..seg.model import SegmentationModel
from ..seg.spec import SegSpec
from .config import DataCfg, RecipeError

# training source kind -> segmentation dataset reader
VAL_DATASET = {"semseg": "synth", "cityscapes": "cityscapes", "ade20k": "ade20k"}


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


class SegValidator:
    """The validation split of a segmentation recipe; :meth:`run` scores a model on it.

    Raises:
        RecipeError: unreadable split, empty split, or a class table other than the model's (naming
            ``data.val``).
    """

    def __init__(self, data: DataCfg, spec: SegSpec) -> None:
        cfg = data.val
        assert cfg.path is not None
        kind = data.sources[0].kind if data.sources else "semseg"
        if kind not in VAL_DATASET:
            raise RecipeError(f"data.sources.0.kind: segmentation validation reads {', '.join(VAL_DATASET)} "
                              f"layouts, got {kind!r}")
        if cfg.input_size is not None:
            raise RecipeError("data.val.input_size: segmentation runs validate with seg.test (mode, crop, stride, "
                              "resize); leave input_size unset")
        try:
            self.dataset: SegDataset = open_seg_dataset(VAL_DATASET[kind], cfg.path, cfg.split)
        except (DatasetError, ValueError) as e:
            raise RecipeError(f"data.val.path: {e}") from None
        if self.dataset.classes.names != spec.classes.names:
            raise RecipeError(f"data.val.path: {cfg.path} has classes {self.dataset.classes.name} "
                              f"({len(self.dataset.classes)}), the model {spec.classes.name} ({spec.num_classes})")
        n = len(self.dataset)
        self.count = min(n, cfg.max_images) if cfg.max_images else n
        self.spec = spec

    @torch.no_grad()
    def run(self, model: nn.Module, env: DistEnv,
            autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
            ) -> dict[str, Any]:
        """``mIoU``, ``aAcc``, ``mAcc`` (percent; None when nothing was labelled), ``iou`` per class name
        (percent, None where mmseg gives NaN), ``images`` scored and ``skipped`` (unreadable samples).

        A collective under DDP: every process must call it.
        """
        assert isinstance(model, SegmentationModel)
        was_training = model.training
        model.eval()
        c = self.spec.num_classes
        ignore = self.spec.classes.ignore_index
        tally = torch.zeros(4 * c + 2, dtype=torch.int64)  # intersect, union, pred, label areas; images, skipped
        for i in range(env.rank, self.count, env.world):
            try:
                sample = self.dataset.load(i)
                rgb = sample.rgb()
            except (DatasetError, OSError, ValueError):
                tally[-1] += 1
                continue
            with autocast():
                pred = segment(model, rgb, self.spec.inference)
            a = intersect_and_union(pred, sample.labels, c, ignore)
            tally[:-2] += torch.from_numpy(np.concatenate([a.intersect, a.union, a.pred, a.label]))
            tally[-2] += 1
        model.train(was_training)
        tally = all_reduce_sum(tally, env)
        parts = tally[:-2].view(4, c).numpy()
        m = total_area_to_metrics(Areas(*parts))
        return {"mIoU": _finite(m.mIoU), "aAcc": _finite(m.aAcc), "mAcc": _finite(m.mAcc),
                "images": int(tally[-2]), "skipped": int(tally[-1]),
                "iou": {n: _finite(float(v) * 100) for n, v in zip(self.spec.classes.names, m.iou)}}

    @staticmethod
    def line(record: dict[str, Any]) -> str:
        """The progress line of a ``val`` record."""
        def pct(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.2f}"

        return (f"val step {record['step']}: mIoU {pct(record['mIoU'])}  aAcc {pct(record['aAcc'])}  mAcc "
                f"{pct(record['mAcc'])}  ({record['images']} images)")
