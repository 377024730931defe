"""What every segmentation dataset reader provides: an indexed split of (image, label image) pairs.

A reader lists a split at construction (file names only, sorted like mmsegmentation's ``BaseSegDataset``,
which sorts by image path) and decodes a sample on :meth:`SegDataset.load`. Labels come back in the space
the metric uses: train ids 0..C-1 with 255 = ignore (Cityscapes after the 34 -> 19 mapping, ADE20K after
reduce-zero-label). Nothing is downloaded; users point ``root`` at their copy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from ...data.classes import ClassTable
from ...eval.datasets.base import DatasetError, read_rgb


@dataclass
class SegSample:
    """One ground-truth sample.

    Attributes:
        id: stable sample id: the image path relative to the split folder without extension; a saved
            prediction for it is ``<dir>/<id>.png``.
        labels: (H, W) uint8 class indices in the metric's space, 255 = ignore.
        load_rgb: returns the (H, W, 3) uint8 RGB image (decoded lazily: scoring saved predictions never reads
            images).
        meta: provenance (file paths, which label file was used, ...).
    """

    id: str
    labels: np.ndarray
    load_rgb: Callable[[], np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    def rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB, the size of ``labels``.

        Raises:
            DatasetError: missing image, or its size differs from the label image's.
        """
        image = self.load_rgb()
        if image.shape[:2] != self.labels.shape:
            raise DatasetError(f"sample {self.id}: image is {image.shape[1]}x{image.shape[0]} but the label image is "
                               f"{self.labels.shape[1]}x{self.labels.shape[0]}")
        return image


class SegDataset(ABC):
    """An indexed split. Subclasses set ``name`` and ``classes`` and fill ``self.ids`` in ``__init__``.

    Attributes:
        reduce_zero_label: whether GT 0 means "unlabelled" and GT k means class k - 1 (ADE20K).
    """

    name: ClassVar[str] = ""
    reduce_zero_label: ClassVar[bool] = False

    def __init__(self, root: str | Path, split: str) -> None:
        self.root = Path(root)
        self.split = split
        self.ids: list[str] = []
        self.classes: ClassTable
        if not self.root.is_dir():
            raise DatasetError(f"{self.name}: --root {self.root} is not a folder")

    def __len__(self) -> int:
        return len(self.ids)

    @abstractmethod
    def load(self, index: int) -> SegSample:
        """Decode sample ``index`` (raises :class:`DatasetError` for a bad sample)."""

    def describe(self) -> dict[str, Any]:
        """Provenance stored with every result."""
        return {"dataset": self.name, "split": self.split, "root": str(self.root), "num_listed": len(self.ids),
                "num_classes": len(self.classes), "classes": self.classes.name,
                "reduce_zero_label": self.reduce_zero_label, "ignore_index": self.classes.ignore_index}


def read_label_png(path: Path) -> np.ndarray:
    """An 8-bit single-channel label PNG (mode ``L``, or ``P`` whose indices are the labels) as (H, W) uint8.

    Raises:
        DatasetError: missing file, undecodable, or not an 8-bit single-channel image (an RGB colour picture of
            the labels is not a label image).
    """
    if not path.is_file():
        raise DatasetError(f"label image not found: {path}")
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P"):
                raise DatasetError(f"{path}: expected an 8-bit single-channel label PNG (mode L or P), "
                                   f"got mode {im.mode!r}")
            return np.array(im, dtype=np.uint8)
    except OSError as e:
        raise DatasetError(f"cannot decode label image {path}: {e}") from e


def reduce_zero_label(labels: np.ndarray) -> np.ndarray:
    """mmseg's ``LoadAnnotations(reduce_zero_label=True)`` on uint8: 0 -> 255, k -> k - 1, 255 stays 255.

    (mmseg: ``gt[gt == 0] = 255; gt = gt - 1; gt[gt == 254] = 255``.)
    """
    out = np.asarray(labels, np.uint8).copy()
    out[out == 0] = 255
    out = out - np.uint8(1)
    out[out == 254] = 255
    return out


def list_files(folder: Path, suffix: str) -> list[Path]:
    """Files under ``folder`` (recursively) whose name ends with ``suffix``, sorted by path.

    Raises:
        DatasetError: the folder does not exist.
    """
    if not folder.is_dir():
        raise DatasetError(f"folder not found: {folder}")
    return sorted(p for p in folder.rglob(f"*{suffix}") if p.is_file())


__all__ = ["DatasetError", "SegDataset", "SegSample", "list_files", "read_label_png", "read_rgb",
           "reduce_zero_label"]
