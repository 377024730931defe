"""The training data of the released Depth Anything V2 metric models, read from their file lists.

V2's ``metric_depth/train.py`` trains the indoor models on Hypersim and the outdoor models on Virtual KITTI 2,
each from a list file with one ``rgb_path depth_path`` pair per line. These sources read such lists with the
official conventions:

``hypersim``
    depth: an HDF5 file whose ``dataset`` holds the **distance along the ray** in metres (1024 x 768);
    converted to planar depth with the official focal length 886.81 px (:func:`hypersim_distance_to_planar`).
    Valid where finite (NaN: no geometry).
``vkitti2``
    depth: a 16-bit PNG in **centimetres** (metres = value / 100); valid where <= 80 m, which drops the sky
    (stored as 65535 cm).

Recipe entry: ``{path: ROOT, kind: hypersim | vkitti2, options: {list_file: FILE, strip_prefix: PREFIX}}``.
``list_file`` defaults to ``ROOT/train.txt``. Paths in the list are taken relative to ``ROOT``; the official
lists hold absolute paths on the authors' machines, so ``strip_prefix`` (e.g.
``/mnt/bn/liheyang/DepthDatasets/vKitti2/``) removes that start first. The metric objective then keeps
``loss.min_depth <= depth <= model.max_depth`` (20 m Hypersim, 80 m VKITTI 2 in the V2 recipes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..eval.datasets.base import DatasetError, read_list, read_png16, read_rgb
from ..zoo import Preprocess
from .augment import training_sample
from .config import DataCfg, RecipeError, SourceCfg
from .data import Batch

HYPERSIM_FOCAL = 886.81  # pixels, for Hypersim's 1024 x 768 frames (V2 metric_depth/dataset/hypersim.py)
VKITTI2_CM_PER_M = 100.0
VKITTI2_MAX_DEPTH = 80.0  # metres; V2 marks deeper pixels (the sky is 655.35 m) invalid


def hypersim_distance_to_planar(distance: np.ndarray, focal: float = HYPERSIM_FOCAL) -> np.ndarray:
    """Hypersim's distance from the camera centre -> planar depth (along the optical axis).

    Pixel (u, v) looks along (u - W/2 + 0.5, v - H/2 + 0.5, focal): the principal point is the image centre.
    ``depth = distance * focal / |(x, y, focal)|``.

    Args:
        distance: (H, W) metres along each pixel's ray (NaN where there is no geometry).
        focal: focal length in pixels (886.81 for the 1024 x 768 release).

    Returns:
        (H, W) float32 planar depth in metres (NaN stays NaN).
    """
    h, w = distance.shape
    x = np.arange(w, dtype=np.float64) - 0.5 * w + 0.5
    y = np.arange(h, dtype=np.float64) - 0.5 * h + 0.5
    norm = np.sqrt(x[None, :] ** 2 + y[:, None] ** 2 + focal**2)
    return (distance.astype(np.float64) * (focal / norm)).astype(np.float32)


def read_hypersim_depth(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A Hypersim ``*.depth_meters.hdf5`` as (planar depth (H, W) float32 metres, 0 where invalid; valid bool)."""
    import h5py  # type: ignore[import-untyped]

    if not path.is_file():
        raise DatasetError(f"hypersim: depth file not found: {path}")
    with h5py.File(path, "r") as f:
        if "dataset" not in f:
            raise DatasetError(f"{path}: no HDF5 dataset 'dataset' (Hypersim depth_meters files have one)")
        distance = np.asarray(f["dataset"], dtype=np.float32)
    if distance.ndim != 2:
        raise DatasetError(f"{path}: expected an (H, W) distance map, got shape {distance.shape}")
    depth = hypersim_distance_to_planar(distance)
    valid = np.isfinite(depth) & (depth > 0)
    return np.where(valid, depth, 0).astype(np.float32), valid


def read_vkitti2_depth(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A Virtual KITTI 2 depth PNG (uint16 centimetres) as (depth (H, W) float32 metres, 0 where invalid; valid
    bool: depth <= 80 m)."""
    depth = read_png16(path, VKITTI2_CM_PER_M)
    valid = (depth > 0) & (depth <= VKITTI2_MAX_DEPTH)
    return np.where(valid, depth, 0).astype(np.float32), valid


class V2ListSource:
    """Base: a ``rgb_path depth_path`` list under a root (module docstring); subclasses decode the depth.

    Raises:
        RecipeError: unknown option, missing list, empty list or a malformed line (naming the recipe key).
    """

    name = ""

    def __init__(self, cfg: SourceCfg, data: DataCfg, pre: Preprocess, key: str = "data.sources") -> None:
        unknown = sorted(set(cfg.options) - {"list_file", "strip_prefix"})
        if unknown:
            raise RecipeError(f"{key}.options: the {self.name} source takes list_file and strip_prefix, got {unknown}")
        self.root = Path(cfg.path)
        lst = Path(cfg.options.get("list_file") or self.root / "train.txt")
        prefix = str(cfg.options.get("strip_prefix") or "")
        try:
            rows = read_list(lst)
        except DatasetError as e:
            raise RecipeError(f"{key}.options.list_file: {e}") from None
        self.pairs: list[tuple[Path, Path]] = []
        for n, row in enumerate(rows, 1):
            if len(row) < 2:
                raise RecipeError(f"{key}.options.list_file: {lst} line {n}: expected 'rgb_path depth_path'")
            rgb, depth = (r[len(prefix):] if prefix and r.startswith(prefix) else r for r in row[:2])
            self.pairs.append((self.root / rgb, self.root / depth))
        if not self.pairs:
            raise RecipeError(f"{key}.options.list_file: {lst} lists no samples")
        self.data, self.pre = data, pre

    def __len__(self) -> int:
        return len(self.pairs)

    def read_depth(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """(depth (H, W) float32 metres, valid (H, W) bool) of one depth file."""
        raise NotImplementedError

    def load(self, index: int, rng: np.random.Generator) -> Batch:
        """Sample ``index`` cropped and flipped with ``rng``: ``image``, ``depth`` (metres), ``valid``."""
        rgb_path, depth_path = self.pairs[index]
        rgb = read_rgb(rgb_path)
        depth, valid = self.read_depth(depth_path)
        if rgb.shape[:2] != depth.shape:
            raise DatasetError(f"{self.name}: image {rgb_path} is {rgb.shape[1]}x{rgb.shape[0]}, depth "
                               f"{depth_path} is {depth.shape[1]}x{depth.shape[0]}")
        return training_sample(rgb, depth, valid, self.data, self.pre, rng)


class HypersimSource(V2ListSource):
    """Hypersim (indoor, V2 metric indoor models): HDF5 ray distance -> planar depth."""

    name = "hypersim"

    def read_depth(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        return read_hypersim_depth(path)


class VKITTI2Source(V2ListSource):
    """Virtual KITTI 2 (outdoor, V2 metric outdoor models): PNG centimetres / 100, valid <= 80 m."""

    name = "vkitti2"

    def read_depth(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        return read_vkitti2_depth(path)
