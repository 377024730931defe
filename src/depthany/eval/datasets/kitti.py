"""KITTI Eigen test split with the annotated (semi-dense) depth maps.

Layout (the KITTI raw data plus ``data_depth_annotated``; Marigold's ``kitti_eigen_split_test.tar`` has the
same relative paths)::

    root/<date>/<drive>_sync/image_02/data/<frame>.png                       RGB
    root/[data_depth_annotated/][train|val/]<drive>_sync/proj_depth/groundtruth/image_02/<frame>.png
                                                                             uint16, metres * 256, 0 = none
    root/eigen_test_files_with_gt.txt   (or --list FILE; split "eigen_train": eigen_train_files_with_gt.txt)
                                        697 lines of
        "2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.png
         2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/0000000069.png 721.5377"

Lines whose GT is ``None`` (45 of 697) are dropped and counted, leaving the 652 evaluated images. With
``kb_crop`` (default, as ZoeDepth and Marigold) image and GT are cropped to 352x1216 before prediction;
the full frame size and crop offset are kept for ``crop_order="fraction_on_full"``.
Sample ids are ``<drive>/<frame>`` (``<drive>/image_03/<frame>`` for the right camera, which only the
training list uses).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..crops import kb_crop, kb_crop_offset
from ..settings import EvalSettings, Family
from .base import DatasetError, EvalDataset, EvalSample, read_list, read_png16, read_rgb

LIST_NAMES = ("eigen_test_files_with_gt.txt", "kitti_eigen_test_files_with_gt.txt")
# split "eigen_train": the BTS / ZoeDepth training list (same line format; left and right cameras)
TRAIN_LIST_NAMES = ("eigen_train_files_with_gt.txt", "kitti_eigen_train_files_with_gt.txt")
GT_PREFIXES = ("", "train", "val", "data_depth_annotated/train", "data_depth_annotated/val")
KITTI_SCALE = 256.0


class KITTI(EvalDataset):
    """KITTI reader (module docstring).

    Args:
        root: folder holding the raw images and the annotated depth (``image_root`` / ``gt_root`` if separate).
        split: a label recorded with results (``"eigen_test"``); the samples come from the list file.
        list_file: the Eigen list; default: one of :data:`LIST_NAMES` in ``root``.
        kb_crop: crop image and GT to 352x1216 (KITTI benchmark crop).
    """

    name = "kitti"

    def __init__(self, root: str | Path, split: str = "eigen_test", list_file: str | Path | None = None,
                 kb_crop: bool = True, image_root: str | Path | None = None,
                 gt_root: str | Path | None = None) -> None:
        super().__init__(root, split)
        self.kb_crop = kb_crop
        self.image_root = Path(image_root) if image_root else self.root
        self.gt_root = Path(gt_root) if gt_root else self.root
        if list_file is None:
            names = TRAIN_LIST_NAMES if split == "eigen_train" else LIST_NAMES
            found = [self.root / n for n in names if (self.root / n).is_file()]
            if not found:
                raise DatasetError(f"kitti: no Eigen file list in {self.root} (looked for {', '.join(names)}); "
                                   "pass --list FILE")
            list_file = found[0]
        self.list_file = Path(list_file)
        self._entries: list[tuple[str, str, str]] = []
        none = 0
        for row in read_list(self.list_file):
            if len(row) < 2:
                raise DatasetError(f"{self.list_file}: line {' '.join(row)!r} needs 'image_path gt_path [focal]'")
            if row[1] == "None":
                none += 1
                continue
            rgb, gt = row[0], row[1]
            parts = Path(gt).parts
            drive = parts[0] if parts else Path(rgb).parts[1]
            camera = "image_03/" if "image_03" in parts else ""  # the train list has both cameras
            self._entries.append((f"{drive}/{camera}{Path(gt).stem}", rgb, gt))
        if none:
            self.dropped["gt_none"] = none
        self.ids = [e[0] for e in self._entries]

    def _gt_path(self, rel: str) -> Path:
        for prefix in GT_PREFIXES:
            p = self.gt_root / prefix / rel
            if p.is_file():
                return p
        raise DatasetError(f"kitti: GT {rel} not found under {self.gt_root} (tried {', '.join(p or '.' for p in GT_PREFIXES)})")

    def load(self, index: int) -> EvalSample:
        sid, rgb_rel, gt_rel = self._entries[index]
        gt_path = self._gt_path(gt_rel)
        depth = read_png16(gt_path, KITTI_SCALE)
        rgb_path = self.image_root / rgb_rel
        full_shape = (int(depth.shape[0]), int(depth.shape[1]))
        offset = (0, 0)
        if self.kb_crop:
            offset = kb_crop_offset(*full_shape)
            depth = kb_crop(depth)

        def load_rgb() -> np.ndarray:
            image = read_rgb(rgb_path)
            if image.shape[:2] != full_shape:
                raise DatasetError(f"kitti {sid}: image {rgb_path} is {image.shape[1]}x{image.shape[0]}, GT "
                                   f"{gt_path} is {full_shape[1]}x{full_shape[0]}")
            return np.ascontiguousarray(kb_crop(image)) if self.kb_crop else image

        return EvalSample(sid, np.ascontiguousarray(depth), load_rgb, full_shape=full_shape, offset=offset,
                          meta={"rgb": str(rgb_path), "depth": str(gt_path)})

    def settings(self, family: Family) -> EvalSettings:
        if family == "metric":
            return EvalSettings(1e-3, 80.0, "kitti_garg", mask_mode="range",
                                source="ZoeDepth config 'kitti': (1e-3, 80), garg_crop, do_kb_crop")
        return EvalSettings(1e-5, 80.0, "kitti_eigen", mask_mode="range",
                            source="Marigold kitti_dataset.py: (1e-5, 80), kitti_bm_crop, valid_mask_crop eigen")

    def options(self) -> dict[str, Any]:
        return {"list_file": str(self.list_file), "kb_crop": self.kb_crop}
