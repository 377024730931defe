"""Any RGB-D data described by a Marigold-style file list.

Each non-empty line is ``rgb_path depth_path [mask_path]``, relative to ``root`` (extra columns such as a
focal length are ignored; lines whose depth is ``None`` are dropped and counted; a leading ``/`` that names no
existing file is relative to ``root`` too, as in the BTS / ZoeDepth NYUv2 lists). Depth is decoded by
extension:

* ``.png``: 16-bit, metres = value / ``depth_scale`` (required: 256 for KITTI-style, 1000 for mm);
* ``.npy``: float metres, (H, W) or (H, W, 1);
* ``.dpt``: Sintel format.

Masks (``.npy`` or image, nonzero = valid) are ANDed with the depth range. Sample ids are the RGB path
without extension. There are no reference settings: the default range is (1e-3, inf) with no crop; set
``--min-depth/--max-depth/--crop`` to match the protocol you need.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..settings import EvalSettings, Family
from .base import (
    DatasetError,
    EvalDataset,
    EvalSample,
    read_list,
    read_mask,
    read_npy_depth,
    read_png16,
    read_rgb,
)
from .sintel import read_dpt


class FileList(EvalDataset):
    """File-list reader (module docstring). ``split`` is a label; ``list_file`` is required."""

    name = "filelist"

    def __init__(self, root: str | Path, split: str = "list", list_file: str | Path | None = None,
                 depth_scale: float | None = None) -> None:
        super().__init__(root, split)
        if list_file is None:
            raise DatasetError("filelist: pass the list with --list FILE (lines 'rgb_path depth_path [mask_path]')")
        self.list_file = Path(list_file)
        self.depth_scale = depth_scale
        self._rows: list[tuple[Path, Path, Path | None]] = []
        ids: list[str] = []
        none = 0
        for row in read_list(self.list_file):
            if len(row) < 2:
                raise DatasetError(f"{self.list_file}: line {' '.join(row)!r} needs 'rgb_path depth_path'")
            if row[1] == "None":
                none += 1
                continue
            mask = self._path(row[2]) if len(row) > 2 and Path(row[2]).suffix in (".npy", ".png") else None
            self._rows.append((self._path(row[0]), self._path(row[1]), mask))
            ids.append(str(Path(row[0]).with_suffix("")).lstrip("/"))
        if none:
            self.dropped["gt_none"] = none
        if not self._rows:
            raise DatasetError(f"filelist: {self.list_file} lists no samples")
        if depth_scale is None and any(r[1].suffix == ".png" for r in self._rows):
            raise DatasetError("filelist: 16-bit PNG depth needs --depth-scale (units per metre: 256 KITTI, 1000 mm)")
        self.ids = ids

    def _path(self, text: str) -> Path:
        """A list entry relative to ``root``. An absolute path that does not exist is taken relative to ``root``
        too: the BTS / ZoeDepth lists write ``/kitchen_0028b/rgb_00045.jpg`` (their loaders strip the slash)."""
        p = Path(text)
        if p.is_absolute() and not p.exists():
            return self.root / text.lstrip("/")
        return self.root / p

    def _read_depth(self, path: Path) -> np.ndarray:
        if path.suffix == ".png":
            if self.depth_scale is None:
                raise DatasetError(f"filelist: {path} is a PNG but no --depth-scale was given")
            return read_png16(path, self.depth_scale)
        if path.suffix == ".npy":
            return read_npy_depth(path)
        if path.suffix == ".dpt":
            d = read_dpt(path)
            return np.where(np.isfinite(d), d, 0).astype(np.float32)
        raise DatasetError(f"filelist: unsupported depth file type {path.suffix!r} ({path}); use .png, .npy or .dpt")

    def load(self, index: int) -> EvalSample:
        rgb, depth_path, mask_path = self._rows[index]
        depth = self._read_depth(depth_path)
        mask = read_mask(mask_path) if mask_path is not None else None
        if mask is not None and mask.shape != depth.shape:
            raise DatasetError(f"filelist: mask {mask_path} is {mask.shape}, depth {depth_path} is {depth.shape}")
        return EvalSample(self.ids[index], depth, lambda: read_rgb(rgb), mask=mask,
                          meta={"rgb": str(rgb), "depth": str(depth_path)})

    def settings(self, family: Family) -> EvalSettings:
        return EvalSettings(1e-3, math.inf, "none", mask_mode="range_and_mask",
                            source="file list: no reference settings; defaults (1e-3, inf), no crop")

    def options(self) -> dict[str, Any]:
        return {"list_file": str(self.list_file), "depth_scale": self.depth_scale}
