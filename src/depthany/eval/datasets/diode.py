"""DIODE validation split (771 images: 325 indoors + 446 outdoor in Marigold's lists).

Layout (``val.tar.gz`` unpacked)::

    root/val/{indoors,outdoor}/scene_XXXXX/scan_XXXXX/<name>.png          RGB, 1024x768
    root/val/.../<name>_depth.npy        (768, 1024, 1) float32 metres
    root/val/.../<name>_depth_mask.npy   (768, 1024) float 0/1, 1 = valid return

``root`` may also be the ``val`` folder. ``split``: ``"all"``, ``"indoors"`` or ``"outdoor"``. An optional
Marigold list (``list_file``, lines "rgb depth mask" relative to the val folder) fixes the sample set.
Sample ids are the path of the RGB file under ``val/`` without extension.

Marigold evaluates with the mask file *only* (no range filter) and clips predictions to [0.6, 350];
ZoeDepth's ``diode_indoor`` applies the NYU crop indices to the 768x1024 GT with range (1e-3, 10) and
ignores the mask file, ``diode_outdoor`` the Garg crop with (1e-3, 80).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..settings import EvalSettings, Family
from .base import DatasetError, EvalDataset, EvalSample, read_list, read_mask, read_npy_depth, read_rgb

DOMAINS = ("indoors", "outdoor")


class DIODE(EvalDataset):
    """DIODE reader (module docstring)."""

    name = "diode"

    def __init__(self, root: str | Path, split: str = "all", list_file: str | Path | None = None) -> None:
        super().__init__(root, split)
        if split not in ("all", *DOMAINS):
            raise DatasetError(f"diode: split must be 'all', 'indoors' or 'outdoor', got {split!r}")
        self.base = self.root / "val" if (self.root / "val").is_dir() else self.root
        self.list_file = Path(list_file) if list_file else None
        self._triples: list[tuple[Path, Path, Path]] = []
        if self.list_file is not None:
            for row in read_list(self.list_file):
                if len(row) < 3:
                    raise DatasetError(f"{self.list_file}: line {' '.join(row)!r} needs 'rgb depth mask'")
                self._triples.append((self.base / row[0], self.base / row[1], self.base / row[2]))
        else:
            for domain in DOMAINS:
                for depth in sorted((self.base / domain).glob("*/*/*_depth.npy")):
                    stem = depth.name[: -len("_depth.npy")]
                    self._triples.append((depth.with_name(stem + ".png"), depth,
                                          depth.with_name(stem + "_depth_mask.npy")))
        self._triples = [t for t in self._triples
                         if split == "all" or t[0].relative_to(self.base).parts[0] == split]
        if not self._triples:
            raise DatasetError(f"diode: no samples for split {split!r} under {self.base}")
        self.ids = [str(t[0].relative_to(self.base).with_suffix("")) for t in self._triples]

    def load(self, index: int) -> EvalSample:
        rgb, depth_path, mask_path = self._triples[index]
        depth = read_npy_depth(depth_path)
        mask = read_mask(mask_path)
        if mask.shape != depth.shape:
            raise DatasetError(f"diode: mask {mask_path} is {mask.shape}, depth {depth_path} is {depth.shape}")
        return EvalSample(self.ids[index], depth, lambda: read_rgb(rgb), mask=mask,
                          meta={"domain": rgb.relative_to(self.base).parts[0], "rgb": str(rgb),
                                "depth": str(depth_path)})

    def settings(self, family: Family) -> EvalSettings:
        if family == "metric":
            if self.split == "indoors":
                return EvalSettings(1e-3, 10.0, "nyu_eigen", mask_mode="range",
                                    source="ZoeDepth config 'diode_indoor': (1e-3, 10), eigen_crop = NYU indices "
                                           "on 768x1024 (quirk reproduced), mask file ignored")
            if self.split == "outdoor":
                return EvalSettings(1e-3, 80.0, "kitti_garg", mask_mode="range",
                                    source="ZoeDepth config 'diode_outdoor': (1e-3, 80), garg_crop, mask file ignored")
            raise DatasetError("diode: the metric protocol has separate indoor/outdoor settings; "
                               "use --split indoors or --split outdoor")
        return EvalSettings(0.6, 350.0, "none", mask_mode="mask_only",
                            source="Marigold diode_dataset.py: mask file only, prediction clip [0.6, 350]")

    def options(self) -> dict[str, Any]:
        return {"list_file": str(self.list_file) if self.list_file else None}
