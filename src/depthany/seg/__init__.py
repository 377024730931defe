"""Semantic segmentation on the Depth Anything encoder: models, inference, mmseg-exact metrics, datasets.

::

    from depthany.seg import Segmenter, open_seg_dataset, score_predictions

    seg = Segmenter.from_weights("runs/seg/final.safetensors")
    labels = seg.segment("street.jpg").labels                      # (H, W) uint8 class indices
    report = score_predictions(open_seg_dataset("cityscapes", "data/cityscapes"), "preds/")
    report.save("eval_out/cityscapes")                             # metrics.json + per_image.csv

Names are imported lazily, so ``depthany.seg.spec`` (recipes parse it) does not pull in torch.
See ``docs/segmentation.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SegSpec": "spec", "InferenceCfg": "spec", "Mask2FormerCfg": "spec", "LinearHeadCfg": "spec",
    "make_seg_spec": "spec", "CITYSCAPES_TEST": "spec", "ADE20K_TEST": "spec", "CITYSCAPES_TEST_MS": "spec",
    "SegmentationModel": "model", "build_seg_model": "model",
    "Segmenter": "segmenter", "SegResult": "segmenter",
    "segment": "infer", "segment_scores": "infer", "slide_scores": "infer", "whole_scores": "infer",
    "IoUAccumulator": "metrics", "intersect_and_union": "metrics", "total_area_to_metrics": "metrics",
    "open_seg_dataset": "datasets", "SEG_DATASETS": "datasets",
    "score": "score", "score_predictions": "score", "SegReport": "score",
    "save_seg_weights": "weights", "load_seg_model": "weights", "init_encoder": "weights",
    "read_encoder_checkpoint": "weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'depthany.seg' has no attribute {name!r}")
