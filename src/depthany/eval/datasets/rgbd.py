"""depthany's own RGB-D folder format (``docs/rgbd_format.md``), e.g. the output of ``depthany synth``.

``split`` names ``splits/<split>.txt``; ``"all"`` (default) evaluates every sample. Depth is planar metres;
``mask/<stem>.png`` (if present) is ANDed with the depth range. Sample ids are the stems.
Settings: range (1e-3, ``max_depth`` from ``dataset.json`` if it records one, else inf), no crop.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ...data.rgbd import RGBDFolder
from ..settings import EvalSettings, Family
from .base import DatasetError, EvalDataset, EvalSample, read_mask, read_rgb


class RGBD(EvalDataset):
    """Reader for an RGB-D folder (module docstring)."""

    name = "rgbd"

    def __init__(self, root: str | Path, split: str = "all") -> None:
        super().__init__(root, split)
        try:
            self.folder = RGBDFolder(self.root, None if split == "all" else split)
        except ValueError as e:
            raise DatasetError(str(e)) from e
        if len(self.folder) == 0:
            raise DatasetError(f"rgbd: {self.root} has no samples" + ("" if split == "all" else f" in split {split!r}"))
        self.ids = list(self.folder.stems)

    def load(self, index: int) -> EvalSample:
        stem = self.ids[index]
        try:
            depth = self.folder.read_depth(stem)
            rgb_path = self.folder.rgb_path(stem)
        except FileNotFoundError as e:
            raise DatasetError(str(e)) from e
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
        mask_path = self.root / "mask" / f"{stem}.png"
        mask = read_mask(mask_path) if mask_path.is_file() else None
        return EvalSample(stem, depth, lambda: read_rgb(rgb_path), mask=mask, meta={"rgb": str(rgb_path)})

    def settings(self, family: Family) -> EvalSettings:
        max_depth = float(self.folder.info.get("max_depth") or math.inf)
        return EvalSettings(1e-3, max_depth, "none", mask_mode="range_and_mask",
                            source="RGB-D folder: (1e-3, dataset.json max_depth or inf), mask/ ANDed, no crop")

    def options(self) -> dict[str, Any]:
        info = self.folder.info
        return {"format": info.get("format"), "generator": {k: v for k, v in info.items()
                                                             if k not in ("format", "version")}}
