"""Video benchmarks on disk: the Video Depth Anything benchmark layout and depthany RGB-D sequences.

* **VDA benchmark JSON** (what the official ``benchmark/dataset_extract/*.py`` scripts write; DepthAnything/
  Video-Depth-Anything, commit 4f5ae23172ba60fd7bc11ef671cca678842c7072): ``<root>/<dataset>/<file>.json`` =
  ``{"<dataset>": [{"<scene>": [{"image": ..., "gt_depth": ..., "factor": ..., "K": 3x3, "pose": 4x4}, ...]},
  ...]}`` with paths relative to the JSON's folder; GT depth in metres = the 16-bit PNG (or ``.npy``) value /
  ``factor``. ``K`` (intrinsics of the GT maps) and ``pose`` (camera-to-world) are only in the TAE list
  (``scannet_video_tae.json``). The settings of each official evaluation are :data:`VIDEO_BENCHMARKS`.
* **RGB-D sequences** (``rgbd-video``): ``<root>/<scene>/`` is a depthany RGB-D folder
  (:mod:`depthany.data.rgbd`, frames in the natural order of their stems) whose ``meta/<stem>.json`` holds
  ``"intrinsics": [fx, fy, cx, cy]`` and ``"pose"`` (4x4 camera-to-world, metres); a root that is itself an
  RGB-D folder is one scene. A folder with ``dynamic/<stem>.png`` masks (synthetic sequences with moving objects)
  gives each frame its mask, which TAE excludes (:func:`depthany.eval.tae.temporal_alignment_error`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.rgbd import RGBDFolder
from .datasets.base import DatasetError


@dataclass(frozen=True)
class VideoBenchmark:
    """One official evaluation setting (``benchmark/eval/eval.py`` / ``eval_tae.py`` / ``eval*.sh``).

    Attributes:
        name: the depthany name (``--dataset``).
        key: the dataset key inside the JSON (and the predictions' sub-folder).
        json_file: the JSON under ``<root>/<key>/``.
        max_depth: GT is valid in (1e-3, max_depth) metres; predictions are clipped to it.
        crop: ``(top, bottom, left, right)`` slice bounds applied to the GT (Python slice semantics).
        crop_prediction: the prediction is cropped the same way before resizing to the GT (``--hard_crop``,
            TAE only); otherwise it is resized from its full size to the cropped GT size.
        frames: ``(start, end)`` frames of each scene evaluated (after predicting every listed frame).
        scenes: how many scenes (in the JSON's order) are evaluated, or None for all.
        tae: whether TAE is computed (needs ``K`` and ``pose`` per frame).
    """

    name: str
    key: str
    json_file: str
    max_depth: float
    crop: tuple[int | None, int | None, int | None, int | None]
    crop_prediction: bool = False
    frames: tuple[int | None, int | None] = (None, None)
    scenes: int | None = None
    tae: bool = False


_SCANNET_CROP = (8, -8, 11, -11)
VIDEO_BENCHMARKS: dict[str, VideoBenchmark] = {b.name: b for b in [
    VideoBenchmark("vda-scannet-tae", "scannet", "scannet_video_tae.json", 10.0, _SCANNET_CROP, True, (10, 180),
                   20, tae=True),
    VideoBenchmark("vda-scannet", "scannet", "scannet_video.json", 10.0, _SCANNET_CROP, frames=(None, 90)),
    VideoBenchmark("vda-scannet-500", "scannet", "scannet_video_500.json", 10.0, _SCANNET_CROP, frames=(None, 500)),
    VideoBenchmark("vda-kitti", "kitti", "kitti_video.json", 80.0, (0, 374, 0, 1242), frames=(None, 110)),
    VideoBenchmark("vda-kitti-500", "kitti", "kitti_video_500.json", 80.0, (0, 374, 0, 1242), frames=(None, 500)),
    VideoBenchmark("vda-sintel", "sintel", "sintel_video.json", 70.0, (0, 436, 0, 1024), frames=(None, 100)),
    VideoBenchmark("vda-bonn", "bonn", "bonn_video.json", 10.0, (0, 480, 0, 640), frames=(None, 110)),
    VideoBenchmark("vda-bonn-500", "bonn", "bonn_video_500.json", 10.0, (0, 480, 0, 640), frames=(None, 500)),
    VideoBenchmark("vda-nyuv2-500", "nyuv2", "nyuv2_video_500.json", 10.0, (45, 471, 41, 601), frames=(None, 500)),
]}
RGBD_VIDEO = "rgbd-video"
VIDEO_DATASETS: tuple[str, ...] = (*VIDEO_BENCHMARKS, RGBD_VIDEO)


@dataclass(frozen=True)
class VideoFrameRef:
    """One frame on disk: ``image`` (RGB), ``gt`` (depth), ``factor`` (GT units per metre; for RGB-D folders
    the PNG scale), ``K`` (3, 3) and ``pose`` (4, 4) camera-to-world when known, ``pred_name`` (where saved
    predictions of this frame live, relative to the predictions folder, without ``.npy``), ``dynamic`` (the mask
    of moving-object pixels, RGB-D sequences with moving objects only)."""

    image: Path
    gt: Path
    factor: float
    K: np.ndarray | None
    pose: np.ndarray | None
    pred_name: str
    dynamic: Path | None = None


@dataclass(frozen=True)
class VideoScene:
    """A video: its ``name`` and frames in order."""

    name: str
    frames: tuple[VideoFrameRef, ...]

    @property
    def has_cameras(self) -> bool:
        return all(f.K is not None and f.pose is not None for f in self.frames)

    @property
    def has_dynamic(self) -> bool:
        """Every frame has a moving-object mask."""
        return bool(self.frames) and all(f.dynamic is not None for f in self.frames)


def read_rgb(frame: VideoFrameRef) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a frame (the file as stored)."""
    try:
        with Image.open(frame.image) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{frame.image}: cannot read the frame: {e}") from None


def read_gt(frame: VideoFrameRef) -> np.ndarray:
    """(H, W) float64 GT depth in metres (0 where there is none)."""
    try:
        if frame.gt.suffix == ".npy":
            raw = np.load(frame.gt)
        else:
            with Image.open(frame.gt) as im:
                raw = np.asarray(im)
    except (OSError, ValueError) as e:
        raise DatasetError(f"{frame.gt}: cannot read the ground truth: {e}") from None
    depth = raw.astype(np.float64) / frame.factor
    return np.where(np.isfinite(depth), depth, 0.0)


def read_dynamic(frame: VideoFrameRef) -> np.ndarray:
    """(H, W) bool, True where the frame shows a moving object (all False for a frame without a mask)."""
    if frame.dynamic is None:
        return np.zeros(read_gt(frame).shape, dtype=bool)
    try:
        with Image.open(frame.dynamic) as im:
            return np.asarray(im) > 0
    except (OSError, ValueError) as e:
        raise DatasetError(f"{frame.dynamic}: cannot read the moving-object mask: {e}") from None


def _matrix(value: Any, shape: tuple[int, int], where: str) -> np.ndarray:
    m = np.asarray(value, dtype=np.float64)
    if m.shape != shape:
        raise DatasetError(f"{where}: expected a {shape[0]}x{shape[1]} matrix, got shape {m.shape}")
    return m


def read_vda_json(root: str | Path, benchmark: VideoBenchmark, json_file: str | Path | None = None) -> list[VideoScene]:
    """The scenes of an official benchmark list (every listed frame; :attr:`VideoBenchmark.frames` is applied
    by the evaluation, after prediction, as the official scripts do).

    Args:
        root: the benchmark root (holding ``<key>/<json_file>``), or the dataset folder itself.
        benchmark: the setting.
        json_file: another list file (its folder is then the paths' base).

    Raises:
        DatasetError: a missing or malformed list, naming it.
    """
    root = Path(root)
    path = Path(json_file) if json_file is not None else root / benchmark.key / benchmark.json_file
    if json_file is None and not path.exists() and (root / benchmark.json_file).exists():
        path = root / benchmark.json_file
    if not path.is_file():
        raise DatasetError(f"{path}: no such benchmark list (make it with the official dataset_extract scripts)")
    try:
        data = json.loads(path.read_text())[benchmark.key]
        scenes = []
        for entry in data:
            for name, frames in entry.items():
                refs = []
                for i, f in enumerate(frames):
                    where = f"{path}: {name} frame {i}"
                    refs.append(VideoFrameRef(
                        path.parent / f["image"], path.parent / f["gt_depth"], float(f["factor"]),
                        _matrix(f["K"], (3, 3), where) if "K" in f else None,
                        _matrix(f["pose"], (4, 4), where) if "pose" in f else None,
                        f"{benchmark.key}/{Path(f['image']).with_suffix('')}"))
                scenes.append(VideoScene(name, tuple(refs)))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"{path}: not a Video Depth Anything benchmark list for {benchmark.key!r}: "
                           f"{type(e).__name__}: {e}") from None
    if not scenes:
        raise DatasetError(f"{path}: no scenes under {benchmark.key!r}")
    return scenes


def _natural(stem: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", stem)]


def read_rgbd_sequences(root: str | Path) -> list[VideoScene]:
    """Scenes of RGB-D sequence folders (see the module docstring).

    Raises:
        DatasetError: no RGB-D folder, a frame without intrinsics or pose, naming it.
    """
    root = Path(root)
    folders = [root] if (root / "dataset.json").exists() else sorted(
        (p for p in root.iterdir() if (p / "dataset.json").exists()), key=lambda p: _natural(p.name)) \
        if root.is_dir() else []
    if not folders:
        raise DatasetError(f"{root}: no RGB-D sequence (a folder with dataset.json, or folders of them)")
    scenes = []
    for folder in folders:
        try:
            seq = RGBDFolder(folder)
        except ValueError as e:
            raise DatasetError(str(e)) from None
        if seq.info.get("depth_encoding", "png16") == "npy":
            factor = 1.0
        else:
            factor = seq.png16_scale
        refs = []
        for stem in sorted(seq.stems, key=_natural):
            meta_path = folder / "meta" / f"{stem}.json"
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            if "intrinsics" not in meta or "pose" not in meta:
                raise DatasetError(f"{meta_path}: a sequence frame needs 'intrinsics' and 'pose'")
            fx, fy, cx, cy = (float(v) for v in meta["intrinsics"])
            K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)
            gt = folder / "depth" / (f"{stem}.npy" if factor == 1.0 else f"{stem}.png")
            dynamic = None
            if seq.has_dynamic:
                dynamic = folder / "dynamic" / f"{stem}.png"
                if not dynamic.exists():
                    raise DatasetError(f"{dynamic}: missing (the sequence has moving-object masks for other frames)")
            refs.append(VideoFrameRef(seq.rgb_path(stem), gt, factor, K, _matrix(meta["pose"], (4, 4), str(meta_path)),
                                      f"{folder.name}/{stem}", dynamic))
        scenes.append(VideoScene(folder.name, tuple(refs)))
    return scenes
