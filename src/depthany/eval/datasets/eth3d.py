"""ETH3D high-resolution multi-view training set (DSLR), 454 images over 13 scenes in Marigold's list.

Layout (Marigold's ``eth3d.tar``, which unpacks the per-scene archives side by side)::

    root/rgb/<scene>/images/dslr_images/DSC_XXXX.JPG                              distorted DSLR JPEG
    root/depth/<scene>_dslr_depth/<scene>/ground_truth_depth/dslr_images/DSC_XXXX.JPG
    root/eth3d_filename_list.txt   (optional; "rgb_path depth_path" per line, relative to root)

Without a list the reader pairs every ``**/ground_truth_depth/dslr_images/*.JPG`` with
``rgb/<scene>/images/dslr_images/<name>`` or ``<scene>/images/dslr_images/<name>``.

The GT "JPG" is **not** a JPEG: it is raw little-endian float32, ``H*W`` values row-major with no header
(H, W = 4032, 6048 for the DSLR images, 97,542,144 bytes), ``+inf`` = no measurement (set to 0 here, as
Marigold does). ``gt_size`` changes (H, W) for down-sized copies. The GT matches the *distorted* images;
pairing it with the undistorted archive is wrong. Sample ids are ``<scene>/DSC_XXXX``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..settings import EvalSettings, Family
from .base import DatasetError, EvalDataset, EvalSample, read_list, read_rgb

ETH3D_SIZE = (4032, 6048)
LIST_NAME = "eth3d_filename_list.txt"


def read_eth3d_depth(path: str | Path, size: tuple[int, int] = ETH3D_SIZE) -> np.ndarray:
    """Raw float32 ETH3D depth as (H, W) float32 metres with ``inf`` (and NaN) set to 0.

    Raises:
        DatasetError: the file length is not ``H * W * 4`` bytes (wrong ``size`` or not an ETH3D depth file).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"depth file not found: {path}")
    h, w = size
    expected = h * w * 4
    actual = path.stat().st_size
    if actual != expected:
        raise DatasetError(f"{path}: {actual} bytes, but an ETH3D depth map of {h}x{w} float32 has {expected}; "
                           "pass gt_size=(H, W) for down-sized copies")
    depth = np.fromfile(path, dtype="<f4").reshape(h, w).astype(np.float32)
    return np.where(np.isfinite(depth), depth, 0).astype(np.float32)


class ETH3D(EvalDataset):
    """ETH3D reader (module docstring). ``split`` is a label (``"train"``)."""

    name = "eth3d"

    def __init__(self, root: str | Path, split: str = "train", list_file: str | Path | None = None,
                 gt_size: tuple[int, int] = ETH3D_SIZE) -> None:
        super().__init__(root, split)
        if len(gt_size) != 2 or min(gt_size) < 1:
            raise DatasetError(f"eth3d: gt_size must be (H, W) with positive sides, got {gt_size}")
        self.gt_size = (int(gt_size[0]), int(gt_size[1]))
        default = self.root / LIST_NAME
        self.list_file = Path(list_file) if list_file else (default if default.is_file() else None)
        self._pairs: list[tuple[Path, Path]] = []
        if self.list_file is not None:
            for row in read_list(self.list_file):
                if len(row) < 2:
                    raise DatasetError(f"{self.list_file}: line {' '.join(row)!r} needs 'rgb_path depth_path'")
                self._pairs.append((self.root / row[0], self.root / row[1]))
        else:
            for gt in sorted(self.root.glob("**/ground_truth_depth/dslr_images/*")):
                scene = gt.parents[2].name
                cands = [self.root / "rgb" / scene / "images" / "dslr_images" / gt.name,
                         self.root / scene / "images" / "dslr_images" / gt.name]
                rgb = next((c for c in cands if c.is_file()), cands[0])
                self._pairs.append((rgb, gt))
        if not self._pairs:
            raise DatasetError(f"eth3d: no ground_truth_depth/dslr_images files under {self.root}")
        self.ids = [f"{gt.parents[2].name}/{Path(gt.name).stem}" for _, gt in self._pairs]

    def load(self, index: int) -> EvalSample:
        rgb, gt = self._pairs[index]
        depth = read_eth3d_depth(gt, self.gt_size)
        return EvalSample(self.ids[index], depth, lambda: read_rgb(rgb),
                          meta={"scene": gt.parents[2].name, "rgb": str(rgb), "depth": str(gt)})

    def settings(self, family: Family) -> EvalSettings:
        return EvalSettings(1e-5, math.inf, "none", mask_mode="range", alignment_max_res=1024,
                            source="Marigold eth3d_dataset.py (1e-5, inf) and 32_eval_eth3d.sh "
                                   "--alignment_max_res 1024")

    def options(self) -> dict[str, Any]:
        return {"list_file": str(self.list_file) if self.list_file else None, "gt_size": list(self.gt_size)}
