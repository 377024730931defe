"""Segmentation samples from a depthany RGB-D folder with ``labels/`` (e.g. ``depthany synth`` output).

``split`` names ``splits/<split>.txt`` or is ``all`` (default); sample ids are the stems. The class table is
the folder's own (``dataset.json["semantic"]``), labels are used as stored (255 = ignore).
"""

from __future__ import annotations

from pathlib import Path

from ...data.rgbd import RGBDFolder
from .base import DatasetError, SegDataset, SegSample, read_label_png, read_rgb


class SynthSeg(SegDataset):
    """Reader for RGB-D folders that carry semantic labels (module docstring)."""

    name = "synth"

    def __init__(self, root: str | Path, split: str = "all") -> None:
        super().__init__(root, split)
        try:
            self.folder = RGBDFolder(self.root, None if split == "all" else split)
        except ValueError as e:
            raise DatasetError(str(e)) from e
        if not self.folder.has_labels or self.folder.classes is None:
            raise DatasetError(f"synth: {self.root} has no semantic labels (no labels/ folder or no "
                               "dataset.json 'semantic' table); regenerate it with this depthany version")
        self.classes = self.folder.classes
        self.ids = list(self.folder.stems)
        if not self.ids:
            raise DatasetError(f"synth: {self.root} has no samples" + ("" if split == "all" else f" in {split!r}"))

    def load(self, index: int) -> SegSample:
        stem = self.ids[index]
        try:
            rgb_path = self.folder.rgb_path(stem)
        except FileNotFoundError as e:
            raise DatasetError(str(e)) from e
        gt = self.root / "labels" / f"{stem}.png"
        return SegSample(stem, read_label_png(gt), lambda: read_rgb(rgb_path), {"image": str(rgb_path),
                                                                                "labels": str(gt)})
