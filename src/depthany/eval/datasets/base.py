"""What every evaluation dataset reader provides, and the small decoders they share.

A reader indexes the samples of one split of one on-disk layout at construction (cheap: file names only)
and decodes a sample on :meth:`EvalDataset.load`. Nothing is downloaded: users point ``root`` at their copy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from ..settings import EvalSettings, Family


class DatasetError(ValueError):
    """A dataset folder or file is missing or malformed; the message names the path."""


@dataclass
class EvalSample:
    """One ground-truth sample.

    Attributes:
        id: stable sample id, also the relative path (without ``.npy``) of a saved prediction.
        depth: (H, W) float32 metres; 0 where the sensor has no value (inf and NaN are stored as 0).
        load_rgb: returns the (H, W, 3) uint8 RGB image the prediction must be made on (same crop as
            ``depth``), decoded lazily so evaluating saved predictions never reads images.
        mask: (H, W) bool validity from a mask file (DIODE, RGB-D folders), or None.
        full_shape: (H, W) of the frame before any crop (KITTI KB crop), or None when uncropped.
        offset: (top, left) of ``depth`` inside ``full_shape``.
        meta: provenance (scene, file paths, ...), copied into the per-image CSV where useful.
    """

    id: str
    depth: np.ndarray
    load_rgb: Callable[[], np.ndarray]
    mask: np.ndarray | None = None
    full_shape: tuple[int, int] | None = None
    offset: tuple[int, int] = (0, 0)
    meta: dict[str, Any] = field(default_factory=dict)

    def rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB, the same size as ``depth``.

        Raises:
            DatasetError: the image is missing or its size differs from the depth map's.
        """
        image = self.load_rgb()
        if image.shape[:2] != self.depth.shape:
            raise DatasetError(f"sample {self.id}: image is {image.shape[1]}x{image.shape[0]} but depth is "
                               f"{self.depth.shape[1]}x{self.depth.shape[0]}")
        return image


class EvalDataset(ABC):
    """An indexed split of one benchmark. Subclasses set ``name`` and fill ``self.ids`` in ``__init__``."""

    name: ClassVar[str] = ""

    def __init__(self, root: str | Path, split: str) -> None:
        self.root = Path(root)
        self.split = split
        self.ids: list[str] = []
        self.dropped: dict[str, int] = {}  # listed but not evaluable, e.g. KITTI lines with GT "None"
        if not self.root.exists():
            raise DatasetError(f"{self.name}: --root {self.root} does not exist")

    def __len__(self) -> int:
        return len(self.ids)

    @abstractmethod
    def load(self, index: int) -> EvalSample:
        """Decode sample ``index`` (raises :class:`DatasetError` or ``OSError`` for a bad sample)."""

    @abstractmethod
    def settings(self, family: Family) -> EvalSettings:
        """The reference settings for the ``"relative"`` or ``"metric"`` protocols on this dataset."""

    def describe(self) -> dict[str, Any]:
        """Provenance stored with every result: dataset, split, root, layout and reader options."""
        return {"dataset": self.name, "split": self.split, "root": str(self.root), "num_listed": len(self.ids),
                "dropped": dict(self.dropped), **self.options()}

    def options(self) -> dict[str, Any]:
        """Reader options worth recording (layout, depth source, ...)."""
        return {}


# ------------------------------------------------------------------------------------------------ decoders


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, raw pixel order: no EXIF rotation, because the GT follows the stored pixels.

    Raises:
        DatasetError: missing or undecodable file, naming it.
    """
    if not path.is_file():
        raise DatasetError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as e:
        raise DatasetError(f"cannot decode image {path}: {e}") from e


def read_png16(path: Path, scale: float) -> np.ndarray:
    """A 16-bit depth PNG as (H, W) float32 metres = value / ``scale`` (0 stays 0 = invalid).

    KITTI and DDAD use ``scale=256``, NYU (BTS, Marigold) and ScanNet ``1000``.

    Raises:
        DatasetError: missing file, or not a single-channel 16-bit PNG (an 8-bit file is a visualisation, not GT).
    """
    if not path.is_file():
        raise DatasetError(f"depth file not found: {path}")
    try:
        with Image.open(path) as im:
            if im.mode not in ("I;16", "I;16B", "I;16L", "I"):
                raise DatasetError(f"{path}: expected a 16-bit depth PNG, got PIL mode {im.mode!r}")
            arr = np.asarray(im)
    except OSError as e:
        raise DatasetError(f"cannot decode depth PNG {path}: {e}") from e
    return (arr.astype(np.float64) / scale).astype(np.float32)


def read_npy_depth(path: Path) -> np.ndarray:
    """A float ``.npy`` depth map, (H, W) or (H, W, 1), as (H, W) float32 metres with non-finite set to 0."""
    if not path.is_file():
        raise DatasetError(f"depth file not found: {path}")
    arr = np.load(path)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise DatasetError(f"{path}: expected an (H, W) or (H, W, 1) depth array, got shape {arr.shape}")
    arr = arr.astype(np.float32)
    return np.where(np.isfinite(arr), arr, 0).astype(np.float32)


def read_mask(path: Path) -> np.ndarray:
    """A validity mask from ``.npy`` (nonzero = valid) or an image (nonzero = valid) as (H, W) bool."""
    if not path.is_file():
        raise DatasetError(f"mask file not found: {path}")
    if path.suffix == ".npy":
        arr = np.load(path)
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
    else:
        with Image.open(path) as im:
            arr = np.asarray(im)
        if arr.ndim == 3:
            arr = arr[..., 0]
    if arr.ndim != 2:
        raise DatasetError(f"{path}: expected an (H, W) mask, got shape {arr.shape}")
    return np.asarray(arr != 0)


def read_list(path: Path) -> list[list[str]]:
    """A whitespace-separated file list (Marigold/BTS style), one sample per non-empty line."""
    if not path.is_file():
        raise DatasetError(f"file list not found: {path}")
    return [line.split() for line in path.read_text().splitlines() if line.strip()]
