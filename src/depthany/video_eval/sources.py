"""Where a video's predictions come from: a Video Depth Anything model, an image model, or saved ``.npy`` files.

Every source yields one (H, W) float32 map per frame of a scene, at the frame's size, in the frame order, and
says whether the maps are ``"disparity"`` (affine-invariant, aligned in disparity as the benchmark does) or
``"depth"`` (metres; the evaluation inverts it before the same alignment).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..eval.datasets.base import DatasetError
from ..eval.video_data import VideoScene, read_rgb
from ..predictor import DepthPredictor
from ..video.temporal import TemporalAligner
from ..video.vda.predictor import VideoDepthPredictor


class VideoSource(Protocol):
    """What :func:`depthany.video_eval.evaluate_video` reads predictions from."""

    kind: str

    def predict(self, scene: VideoScene) -> Iterator[np.ndarray]:
        """(H, W) float32 per frame of ``scene``, in order."""
        ...

    def describe(self) -> dict[str, Any]:
        """Provenance for the report."""
        ...


def _frames(scene: VideoScene) -> Iterator[np.ndarray]:
    return (read_rgb(f) for f in scene.frames)


class VdaSource:
    """A Video Depth Anything model over each whole scene (``mode`` ``"window"``: the official offline
    inference, as ``benchmark/infer/infer.py`` runs it; ``"streaming"``: one frame at a time)."""

    def __init__(self, predictor: VideoDepthPredictor, mode: str | None = None) -> None:
        self.predictor = predictor
        self.mode = mode or predictor.mode
        self.kind = "depth" if predictor.kind == "metric_depth" else "disparity"

    def predict(self, scene: VideoScene) -> Iterator[np.ndarray]:
        for out in self.predictor.predict(_frames(scene), self.mode):
            yield out.values

    def describe(self) -> dict[str, Any]:
        p = self.predictor
        return {"type": "vda", "model": p.spec.name, "mode": self.mode, "input_size": p.input_size,
                "precision": p.precision}


class ImageModelSource:
    """An image model frame by frame: ``temporal="none"`` (each frame as predicted) or ``"ema"`` (each frame
    aligned to a running reference, exactly as ``depthany video`` does; relative models only)."""

    def __init__(self, predictor: DepthPredictor, temporal: str = "none", momentum: float = 0.1) -> None:
        metric = predictor.spec.arch.head == "metric"
        if temporal not in ("none", "ema"):
            raise ValueError(f"temporal must be 'none' or 'ema', got {temporal!r}")
        if temporal == "ema" and metric:
            raise ValueError(f"temporal 'ema' aligns relative predictions; {predictor.spec.name} is metric")
        self.predictor, self.temporal, self.momentum = predictor, temporal, momentum
        self.kind = "depth" if metric else "disparity"

    def predict(self, scene: VideoScene) -> Iterator[np.ndarray]:
        aligner = TemporalAligner(momentum=self.momentum) if self.temporal == "ema" else None
        for rgb in _frames(scene):
            values = self.predictor.predict(rgb).values
            if aligner is not None:
                values, _ = aligner.align(values)
            yield np.asarray(values, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {"type": "image_model", "model": self.predictor.spec.name, "temporal": self.temporal,
                **({"momentum": self.momentum} if self.temporal == "ema" else {})}


class SavedVideoSource:
    """Saved predictions ``<folder>/<frame's pred_name>.npy`` (the official layout: ``<infer_path>/<dataset>/
    <image path>.npy`` for benchmark lists; ``<folder>/<scene>/<stem>.npy`` for RGB-D sequences)."""

    def __init__(self, folder: str | Path, kind: str = "disparity") -> None:
        if kind not in ("disparity", "depth"):
            raise ValueError(f"kind must be 'disparity' or 'depth', got {kind!r}")
        self.folder, self.kind = Path(folder), kind
        if not self.folder.is_dir():
            raise DatasetError(f"{self.folder}: no such predictions folder")

    def predict(self, scene: VideoScene) -> Iterator[np.ndarray]:
        for f in scene.frames:
            path = self.folder / f"{f.pred_name}.npy"
            if not path.exists():
                raise DatasetError(f"{path}: missing prediction for {scene.name}")
            values = np.load(path)
            if values.ndim != 2:
                raise DatasetError(f"{path}: expected an (H, W) map, got shape {values.shape}")
            yield values.astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"type": "saved", "folder": str(self.folder), "kind": self.kind}
