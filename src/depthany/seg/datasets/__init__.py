"""Segmentation dataset readers, one module per layout, and :func:`open_seg_dataset` to pick one by name."""

from __future__ import annotations

import importlib
from pathlib import Path

from .base import DatasetError, SegDataset, SegSample

# name -> (module, class, default split)
SEG_DATASETS: dict[str, tuple[str, str, str]] = {
    "cityscapes": ("depthany.seg.datasets.cityscapes", "Cityscapes", "val"),
    "ade20k": ("depthany.seg.datasets.ade20k", "ADE20K", "validation"),
    "synth": ("depthany.seg.datasets.synth", "SynthSeg", "all"),
}


def open_seg_dataset(name: str, root: str | Path, split: str | None = None) -> SegDataset:
    """Index a segmentation split on disk.

    Args:
        name: one of :data:`SEG_DATASETS`.
        root: the dataset folder (mmseg's convention: ``.../cityscapes``, ``.../ADEChallengeData2016``, or a
            depthany RGB-D folder with labels).
        split: split name (default per dataset).

    Raises:
        ValueError: unknown name; :class:`DatasetError` for a missing or malformed folder.
    """
    if name not in SEG_DATASETS:
        raise ValueError(f"segmentation dataset must be one of {', '.join(SEG_DATASETS)}, got {name!r}")
    module, cls, default = SEG_DATASETS[name]
    reader = getattr(importlib.import_module(module), cls)
    return reader(root, split or default)  # type: ignore[no-any-return]


__all__ = ["SEG_DATASETS", "DatasetError", "SegDataset", "SegSample", "open_seg_dataset"]
