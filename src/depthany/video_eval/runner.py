"""Score predicted videos: per scene, predict every listed frame, keep the evaluated ones, align once per video,
then AbsRel / RMSE / δ1 and (with cameras) TAE; the dataset score is the mean over scenes, as the official
``benchmark/eval/eval.py`` and ``eval_tae.py`` report it.

Memory: one scene's evaluated predictions and ground truth are held at a time (the per-video alignment fits all
of them at once, as the official protocol does); the models themselves run in constant memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..eval.datasets.base import DatasetError
from ..eval.report import software_versions, utc_now, write_csv, write_json
from ..eval.tae import align_video_disparity, temporal_alignment_error, video_depth_metrics
from ..eval.video_data import VideoBenchmark, VideoScene, read_dynamic, read_gt
from .sources import VideoSource

COLUMNS = ["scene", "frames", "tae", "abs_rel", "delta1", "rmse", "scale", "shift", "seconds"]


@dataclass(frozen=True)
class VideoEvalSettings:
    """How scenes are scored (see :class:`depthany.eval.video_data.VideoBenchmark` for the fields)."""

    max_depth: float
    crop: tuple[int | None, int | None, int | None, int | None] = (None, None, None, None)
    crop_prediction: bool = False
    frames: tuple[int | None, int | None] = (None, None)
    scenes: int | None = None
    tae: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"max_depth": self.max_depth, "crop": list(self.crop), "crop_prediction": self.crop_prediction,
                "frames": list(self.frames), "scenes": self.scenes, "tae": self.tae}


def settings_for(benchmark: VideoBenchmark) -> VideoEvalSettings:
    """The settings of an official benchmark entry."""
    return VideoEvalSettings(benchmark.max_depth, benchmark.crop, benchmark.crop_prediction, benchmark.frames,
                             benchmark.scenes, benchmark.tae)


def _crop(a: np.ndarray, crop: tuple[int | None, int | None, int | None, int | None]) -> np.ndarray:
    return a[..., crop[0]:crop[1], crop[2]:crop[3]]


def _resize(pred: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``cv2.resize(pred, (W, H))`` (bilinear), as the official ``get_infer``."""
    if pred.shape == size:
        return pred
    try:
        import cv2
    except ImportError:
        raise DatasetError("predictions of another size than the ground truth need OpenCV to be resized as the "
                           "benchmark does: pip install opencv-python-headless") from None
    return np.asarray(cv2.resize(pred, (size[1], size[0])))


def _as_disparity(pred: np.ndarray, kind: str) -> np.ndarray:
    if kind == "disparity":
        return pred
    with np.errstate(divide="ignore"):
        return np.where(pred > 0, 1.0 / pred, 0.0).astype(np.float32)


def evaluate_scene(scene: VideoScene, predictions: Sequence[np.ndarray | None], settings: VideoEvalSettings,
                   kind: str = "disparity") -> dict[str, Any]:
    """One scene's row: ``frames``, ``abs_rel``, ``rmse`` (m), ``delta1``, ``tae`` (percent, None without cameras
    or with TAE off; over static pixels only when every frame has a moving-object mask, and then
    ``tae_dynamic_excluded`` is the share of pixels left out), ``scale``/``shift`` of the alignment.

    Args:
        scene: the video (every listed frame).
        predictions: one (H, W) map per listed frame (disparity, or depth in metres with ``kind="depth"``);
            None for frames outside ``settings.frames``.
        settings: crop, frame range, depth cap.

    Raises:
        DatasetError: a count mismatch, or no valid GT pixel in the evaluated frames.
    """
    if len(predictions) != len(scene.frames):
        raise DatasetError(f"{scene.name}: {len(predictions)} predictions for {len(scene.frames)} frames")
    start, end = settings.frames
    refs = scene.frames[start:end]
    preds = list(predictions)[start:end]
    if not refs:
        raise DatasetError(f"{scene.name}: no frame in the range {start}:{end}")
    gts, infs = [], []
    for ref, pred in zip(refs, preds):
        if pred is None:
            raise DatasetError(f"{scene.name}: no prediction for {ref.image}")
        gt = _crop(read_gt(ref), settings.crop)
        p = _crop(pred, settings.crop) if settings.crop_prediction else pred
        infs.append(_resize(np.asarray(p, dtype=np.float32), gt.shape))
        gts.append(gt)
    gt_all = np.stack(gts)
    try:
        aligned = align_video_disparity(_as_disparity(np.stack(infs), kind), gt_all, settings.max_depth)
    except ValueError as e:
        raise DatasetError(f"{scene.name}: {e}") from None
    row: dict[str, Any] = {"scene": scene.name, "frames": len(refs), "scale": aligned.scale,
                           "shift": aligned.shift}
    metrics = video_depth_metrics(aligned.depth, gt_all, aligned.valid)
    row.update({k: metrics[k] for k in ("abs_rel", "rmse", "delta1")})
    sub = VideoScene(scene.name, tuple(refs))
    row["tae"] = None
    if settings.tae and sub.has_cameras and len(refs) > 1:
        poses = np.stack([r.pose for r in refs])  # type: ignore[misc]
        ks = np.stack([r.K for r in refs])  # type: ignore[misc]
        dynamic = np.stack([_crop(read_dynamic(r), settings.crop) for r in refs]) if sub.has_dynamic else None
        if dynamic is not None and dynamic.shape != gt_all.shape:
            raise DatasetError(f"{scene.name}: moving-object masks {dynamic.shape[1:]} and ground truth "
                               f"{gt_all.shape[1:]} sizes differ")
        row["tae"] = temporal_alignment_error(aligned.depth, poses, ks, dynamic=dynamic)
        if dynamic is not None:
            row["tae_dynamic_excluded"] = float(dynamic.mean())  # share of pixels TAE left out (moving objects)
    return row


@dataclass
class VideoEvalReport:
    """Per-scene rows (failed scenes carry ``error``) and provenance; :meth:`mean` is the mean over scenes."""

    dataset: str
    source: dict[str, Any]
    settings: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def mean(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key in ("tae", "abs_rel", "delta1", "rmse"):
            values = [r[key] for r in self.rows if r.get(key) is not None and "error" not in r]
            if values:
                out[key] = float(np.mean(values))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "source": self.source, "settings": self.settings, "mean": self.mean(),
                "scenes": {"evaluated": sum("error" not in r for r in self.rows),
                           "failed": sum("error" in r for r in self.rows)},
                "rows": self.rows, "provenance": self.provenance}

    def save(self, out_dir: str | Path) -> tuple[Path, Path]:
        """``metrics.json`` and ``per_scene.csv`` under ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "metrics.json", self.to_dict())
        write_csv(out / "per_scene.csv", self.rows, [*COLUMNS, "error"])
        return out / "metrics.json", out / "per_scene.csv"

    def table(self) -> str:
        m = self.mean()
        head = f"{self.dataset}: {sum('error' not in r for r in self.rows)} scenes"
        return head + "".join(f"\n  {k:8s} {m[k]:.4f}" for k in ("tae", "abs_rel", "delta1", "rmse") if k in m)


def evaluate_video(scenes: Sequence[VideoScene], settings: VideoEvalSettings, source: VideoSource,
                   dataset: str = "video", limit: int | None = None,
                   progress: Callable[[int, int, str], None] | None = None,
                   extra_provenance: dict[str, Any] | None = None) -> VideoEvalReport:
    """Score ``source`` on ``scenes`` (the first ``settings.scenes``, then at most ``limit``).

    A scene that fails (unreadable file, no valid GT) gets a row with ``error`` and the run carries on.
    """
    chosen = list(scenes)[:settings.scenes]
    if limit is not None:
        chosen = chosen[:limit]
    report = VideoEvalReport(dataset, source.describe(), settings.to_dict(),
                             provenance={"started": utc_now(), "software": software_versions(),
                                         **(extra_provenance or {})})
    for i, scene in enumerate(chosen):
        t0 = time.perf_counter()
        try:
            keep = set(range(len(scene.frames))[slice(*settings.frames)])  # hold only the evaluated frames
            predictions = [p if j in keep else None for j, p in enumerate(source.predict(scene))]
            row = evaluate_scene(scene, predictions, settings, source.kind)
        except (DatasetError, ValueError, OSError) as e:
            row = {"scene": scene.name, "error": str(e)}
        row["seconds"] = round(time.perf_counter() - t0, 3)
        report.rows.append(row)
        if progress is not None:
            progress(i + 1, len(chosen), scene.name)
    report.provenance["finished"] = utc_now()
    return report
