"""NYU Depth V2, Eigen test split (654 images) or train split (795), in three on-disk layouts.

``layout="mat"`` (the original release)::

    root/nyu_depth_v2_labeled.mat   MATLAB v7.3 = HDF5. h5py reads MATLAB's axes reversed:
                                    images (1449, 3, 640, 480) uint8 = (N, C, W, H);
                                    rawDepths / depths (1449, 640, 480) float32 metres = (N, W, H)
    root/splits.mat                 MATLAB v5 (scipy): testNdxs (654, 1), trainNdxs (795, 1), **1-based**

``layout="bts"`` (BTS ``extract_official_train_test_set_from_mat.py``, used by ZoeDepth)::

    root/official_splits/test/<scene>/rgb_XXXXX.jpg, sync_depth_XXXXX.png   uint16 mm; XXXXX is **0-based**
    (optional list: root/nyudepthv2_test_files_with_gt.txt, "scene/rgb_X.jpg scene/sync_depth_X.png focal")

``layout="marigold"`` (Marigold ``nyu_labeled_extracted.tar``)::

    root/test/<scene>/rgb_XXXX.png, depth_XXXX.png (raw), filled_XXXX.png    uint16 mm; XXXX is **1-based**
    (optional list: root/filename_list_test.txt)

Sample ids are the **1-based** labeled-set index, ``"%04d"``, in every layout, so saved predictions are
interchangeable between layouts. ``depth="raw"`` (default; BTS/ZoeDepth/MiDaS use ``rawDepths``) or
``"filled"`` (the in-painted ``depths``; not in the BTS export).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..settings import EvalSettings, Family
from .base import DatasetError, EvalDataset, EvalSample, read_list, read_png16, read_rgb

MAT_NAME = "nyu_depth_v2_labeled.mat"
SPLITS_NAME = "splits.mat"
NYU_SHAPE = (480, 640)


def bts_id(index0: int) -> str:
    """Sample id of BTS file number ``index0`` (0-based enumerate index of the .mat)."""
    return f"{index0 + 1:04d}"


def marigold_id(index1: int) -> str:
    """Sample id of Marigold file number ``index1`` (already 1-based)."""
    return f"{index1:04d}"


def read_split_indices(path: Path, split: str) -> list[int]:
    """0-based indices of ``split`` ("test" or "train") from ``splits.mat`` (which stores them 1-based)."""
    import scipy.io

    key = {"test": "testNdxs", "train": "trainNdxs"}.get(split)
    if key is None:
        raise DatasetError(f"nyuv2: split must be 'test' or 'train', got {split!r}")
    if not path.is_file():
        raise DatasetError(f"nyuv2: split file not found: {path}")
    mat = scipy.io.loadmat(str(path))
    if key not in mat:
        raise DatasetError(f"{path}: no {key!r} variable (has {sorted(k for k in mat if not k.startswith('__'))})")
    one_based = np.asarray(mat[key]).astype(np.int64).ravel()
    if one_based.size and one_based.min() < 1:
        raise DatasetError(f"{path}: {key} contains index {one_based.min()}; MATLAB indices start at 1")
    return [int(i) - 1 for i in one_based]


class NYUv2(EvalDataset):
    """NYUv2 reader (module docstring). ``list_file`` overrides the default list of the bts/marigold layouts."""

    name = "nyuv2"

    def __init__(self, root: str | Path, split: str = "test", layout: str = "auto", depth: str = "raw",
                 list_file: str | Path | None = None) -> None:
        super().__init__(root, split)
        if depth not in ("raw", "filled"):
            raise DatasetError(f"nyuv2: depth must be 'raw' or 'filled', got {depth!r}")
        if split not in ("test", "train"):
            raise DatasetError(f"nyuv2: split must be 'test' or 'train', got {split!r}")
        self.depth_kind = depth
        self.layout = self._detect() if layout == "auto" else layout
        self.list_file = Path(list_file) if list_file else None
        self._entries: list[tuple[Any, ...]] = []
        if self.layout == "mat":
            self._index_mat()
        elif self.layout == "bts":
            if depth == "filled":
                raise DatasetError("nyuv2: the BTS export has raw depth only (sync_depth); use depth='raw'")
            self._index_bts()
        elif self.layout == "marigold":
            self._index_marigold()
        else:
            raise DatasetError(f"nyuv2: layout must be auto, mat, bts or marigold, got {layout!r}")
        self.ids = [e[0] for e in self._entries]
        self._h5: Any = None

    # ---------------------------------------------------------------------------------------- indexing

    def _detect(self) -> str:
        r = self.root
        if r.is_file() or (r / MAT_NAME).is_file():
            return "mat"
        if (r / "official_splits").is_dir() or (r / "nyudepthv2_test_files_with_gt.txt").is_file():
            return "bts"
        if (r / "test").is_dir() or (r / "train").is_dir() or (r / "filename_list_test.txt").is_file():
            return "marigold"
        raise DatasetError(f"nyuv2: cannot tell the layout of {r}: expected {MAT_NAME} (+ {SPLITS_NAME}), "
                           "official_splits/ (BTS) or test/ (Marigold); see docs/evaluation.md")

    def _index_mat(self) -> None:
        self.mat_path = self.root if self.root.is_file() else self.root / MAT_NAME
        splits = self.mat_path.parent / SPLITS_NAME
        for i0 in read_split_indices(splits, self.split):
            self._entries.append((bts_id(i0), i0))

    def _index_bts(self) -> None:
        base = self.root / "official_splits" / self.split
        if not base.is_dir():
            base = self.root  # root already points at official_splits/<split>
        default_list = self.root / ("nyudepthv2_test_files_with_gt.txt" if self.split == "test"
                                    else "nyudepthv2_train_files_with_gt.txt")
        lst = self.list_file or (default_list if default_list.is_file() else None)
        if lst is not None:
            pairs = [(line[0], line[1]) for line in read_list(lst) if len(line) >= 2]
        else:
            pairs = [(str(p.relative_to(base)), str(p.relative_to(base)).replace("rgb_", "sync_depth_")
                      .replace(".jpg", ".png")) for p in sorted(base.glob("*/rgb_*.jpg"))]
        if not pairs:
            raise DatasetError(f"nyuv2 (bts): no samples under {base}")
        for rgb, dep in pairs:
            m = re.search(r"rgb_(\d+)\.", rgb)
            if not m:
                raise DatasetError(f"nyuv2 (bts): cannot read the index from {rgb!r}")
            self._entries.append((bts_id(int(m.group(1))), base / rgb, base / dep))

    def _index_marigold(self) -> None:
        default_list = self.root / f"filename_list_{self.split}.txt"
        lst = self.list_file or (default_list if default_list.is_file() else None)
        if lst is not None:
            rows = [line for line in read_list(lst) if len(line) >= 2]
        else:
            rows = []
            for p in sorted((self.root / self.split).glob("*/rgb_*.png")):
                rel = str(p.relative_to(self.root))
                rows.append([rel, rel.replace("rgb_", "depth_"), rel.replace("rgb_", "filled_")])
        if not rows:
            raise DatasetError(f"nyuv2 (marigold): no samples under {self.root / self.split}")
        for row in rows:
            m = re.search(r"rgb_(\d+)\.", row[0])
            if not m:
                raise DatasetError(f"nyuv2 (marigold): cannot read the index from {row[0]!r}")
            depth_rel = row[1] if self.depth_kind == "raw" else (row[2] if len(row) > 2 else
                                                                   row[1].replace("depth_", "filled_"))
            self._entries.append((marigold_id(int(m.group(1))), self.root / row[0], self.root / depth_rel))

    # ---------------------------------------------------------------------------------------- loading

    def _h5file(self) -> Any:
        if self._h5 is None:
            import h5py

            if not self.mat_path.is_file():
                raise DatasetError(f"nyuv2: {self.mat_path} not found")
            self._h5 = h5py.File(self.mat_path, "r")
            for key in ("images", "rawDepths" if self.depth_kind == "raw" else "depths"):
                if key not in self._h5:
                    raise DatasetError(f"{self.mat_path}: no dataset {key!r}")
        return self._h5

    def load(self, index: int) -> EvalSample:
        entry = self._entries[index]
        if self.layout == "mat":
            i0 = entry[1]
            f = self._h5file()
            key = "rawDepths" if self.depth_kind == "raw" else "depths"
            depth = np.asarray(f[key][i0], dtype=np.float32).T  # (W, H) -> (H, W)

            def load_rgb() -> np.ndarray:
                return np.ascontiguousarray(np.asarray(f["images"][i0], dtype=np.uint8).transpose(2, 1, 0))

            meta = {"mat_index0": i0}
        else:
            _, rgb_path, depth_path = entry
            depth = read_png16(depth_path, 1000.0)

            def load_rgb() -> np.ndarray:
                return read_rgb(rgb_path)

            meta = {"scene": rgb_path.parent.name, "rgb": str(rgb_path), "depth": str(depth_path)}
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
        return EvalSample(entry[0], depth, load_rgb, meta=meta)

    def settings(self, family: Family) -> EvalSettings:
        if family == "metric":
            return EvalSettings(1e-3, 10.0, "nyu_eigen", mask_mode="range",
                                source="ZoeDepth config 'nyu': min_depth_eval 1e-3, max_depth_eval 10, eigen_crop")
        return EvalSettings(1e-3, 10.0, "nyu_eigen", mask_mode="range",
                            source="Marigold nyu_dataset.py: (1e-3, 10), eigen_valid_mask [45:471, 41:601]")

    def options(self) -> dict[str, Any]:
        return {"layout": self.layout, "depth": self.depth_kind,
                "list_file": str(self.list_file) if self.list_file else None}
