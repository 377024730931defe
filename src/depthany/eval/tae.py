"""Video depth metrics of the Video Depth Anything benchmark: per-video alignment, AbsRel / RMSE / δ1, and TAE.

Definitions (read in DepthAnything/Video-Depth-Anything, commit 4f5ae23172ba60fd7bc11ef671cca678842c7072,
``benchmark/eval/eval.py``, ``benchmark/eval/eval_tae.py``, ``benchmark/eval/metric.py``; facts and the
benchmark settings in ``docs/video_depth_anything.md``):

* **Alignment** (:func:`align_video_disparity`): one least-squares scale and shift for the whole video, in
  disparity: predictions (disparity) clipped at 1e-3, fitted in float64 onto the ground truth's disparity
  ``1 / (gt + 1e-8)`` over the pixels with ``1e-3 < gt < max_depth`` of all frames; the aligned disparity is
  clipped at 1e-3, inverted, and the depth clipped to ``[1e-3, max_depth]``.
* **Depth metrics** (:func:`video_depth_metrics`): AbsRel, RMSE and δ1 (< 1.25) per frame over its valid
  pixels, then the mean over the frames that have valid pixels.
* **TAE** (:func:`temporal_alignment_error`): for consecutive frames i, i+1 the aligned *predicted* depth of
  frame i is back-projected with the intrinsics, moved by ``inv(pose[i+1]) @ pose[i]`` (poses are
  camera-to-world 4x4), projected, rounded to the nearest pixel and written into an empty map of frame i+1 (a
  pixel hit twice keeps the later point in row-major order); the error is ``mean(|d2 - proj| / d2)`` over the
  pixels where both are > 0 (and frame i+1's mask). The same from i+1 back to i (frame i's mask, and the
  intrinsics of frame i for both directions, as the official code). A pair with no such pixel counts as 0.
  TAE = 100 x the mean over the 2 (N - 1) terms. Ground truth enters only through the alignment.
* **Moving objects** (a depthany addition; no official benchmark has them): the reprojection with camera poses
  only holds for static points, so for a video with per-frame masks of moving-object pixels (``dynamic``, the
  ``dynamic/`` masks of synthetic sequences) those pixels are excluded in both roles: they are not warped from
  the source frame (so they do not cover static points either) and not compared in the target frame. Without
  masks (every official benchmark) nothing changes.

Everything here is numpy (float64, as the official code's arithmetic).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

MIN_VALUE = 1e-3  # the official clip for predictions, aligned disparity and depth, and the lower GT bound


class VideoAlignment(NamedTuple):
    """The per-video alignment: ``depth`` (N, H, W) float64 metres, clipped to [1e-3, max_depth]; the fitted
    ``scale`` and ``shift`` (disparity units); ``valid`` (N, H, W) bool, the GT pixels used."""

    depth: np.ndarray
    scale: float
    shift: float
    valid: np.ndarray


def valid_gt(gt: np.ndarray, max_depth: float) -> np.ndarray:
    """``1e-3 < gt < max_depth`` (the official validity; NaN is invalid)."""
    with np.errstate(invalid="ignore"):
        return (gt > MIN_VALUE) & (gt < max_depth)


def align_video_disparity(pred: np.ndarray, gt: np.ndarray, max_depth: float) -> VideoAlignment:
    """Fit one scale and shift for a video's disparity predictions and turn them into depth.

    Args:
        pred: (N, H, W) predicted disparity (affine-invariant), any float dtype (the official code reads float32).
        gt: (N, H, W) ground-truth depth in metres (0 or negative = no value).
        max_depth: the dataset's evaluation cap in metres.

    Raises:
        ValueError: shapes differ, or no valid GT pixel in the whole video.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ValueError(f"predictions {pred.shape} and ground truth {gt.shape} must both be (N, H, W)")
    valid = valid_gt(gt, max_depth)
    if not valid.any():
        raise ValueError(f"no ground-truth pixel in ({MIN_VALUE}, {max_depth}) m in the whole video")
    target = 1.0 / (gt[valid].astype(np.float64) + 1e-8)
    clipped = np.clip(pred, MIN_VALUE, None)
    x = clipped[valid].astype(np.float64)
    a = np.stack([x, np.ones_like(x)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(a, target, rcond=None)
    aligned = np.clip(scale * clipped + shift, MIN_VALUE, None)
    depth = np.clip(1.0 / aligned, MIN_VALUE, max_depth)
    return VideoAlignment(depth, float(scale), float(shift), valid)


def video_depth_metrics(depth: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """AbsRel, RMSE (metres) and δ1 of aligned depth, per frame over ``valid`` then averaged over the frames
    with at least one valid pixel (``benchmark/eval/metric.py``). Arrays (N, H, W)."""
    n = valid.sum(axis=(1, 2))
    keep = n > 0
    d, g, v, n = depth[keep].astype(np.float64), gt[keep].astype(np.float64), valid[keep], n[keep]
    safe = np.where(v, g, 1.0)
    abs_rel = np.where(v, np.abs(d - safe) / safe, 0.0).sum(axis=(1, 2)) / n
    rmse = np.sqrt(np.where(v, (d - safe) ** 2, 0.0).sum(axis=(1, 2)) / n)
    ratio = np.maximum(d / safe, safe / d)
    delta1 = (v & (ratio < 1.25)).sum(axis=(1, 2)) / n
    return {"abs_rel": float(abs_rel.mean()), "rmse": float(rmse.mean()), "delta1": float(delta1.mean()),
            "frames": int(keep.sum())}


def reprojection_error(depth1: np.ndarray, depth2: np.ndarray, pose_2_1: np.ndarray, K: np.ndarray,
                       mask2: np.ndarray | None = None, mask1: np.ndarray | None = None) -> float:
    """Mean relative difference between frame 2's depth and frame 1's depth warped into frame 2.

    Args:
        depth1, depth2: (H, W) depth in metres (> 0 where there is a value).
        pose_2_1: (4, 4) rigid transform from camera 1 to camera 2 coordinates.
        K: (3, 3) intrinsics (fx, fy, cx, cy read from it) in pixels of these maps.
        mask2: (H, W) bool, the pixels of frame 2 that count (default all).
        mask1: (H, W) bool, the pixels of frame 1 that are warped (default all; the others are dropped before
            warping, so they cover nothing).

    Returns:
        ``mean(|depth2 - warped| / depth2)`` over the pixels where both are > 0 and ``mask2``; 0 when none.
    """
    h, w = depth1.shape
    fx, fy, cx, cy = float(K[0][0]), float(K[1][1]), float(K[0][2]), float(K[1][2])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    z = depth1.astype(np.float64)
    points = np.stack([((xx - cx) * z / fx).ravel(), ((yy - cy) * z / fy).ravel(), z.ravel()], axis=1)
    pose = np.asarray(pose_2_1, dtype=np.float64)
    if mask1 is not None:
        points = points[np.asarray(mask1, dtype=bool).ravel()]
    moved = points @ pose[:3, :3].T + pose[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = moved[:, 0] * fx / moved[:, 2] + cx
        v = moved[:, 1] * fy / moved[:, 2] + cy
    ok = np.isfinite(u) & np.isfinite(v)
    u, v, zz = np.round(u[ok]), np.round(v[ok]), moved[ok, 2]
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    if not inside.any():
        return 0.0
    warped = np.zeros((h, w), dtype=np.float64)
    warped[v[inside].astype(np.int64), u[inside].astype(np.int64)] = zz[inside]  # later points win
    d2 = depth2.astype(np.float64)
    both = (warped > 0) & (d2 > 0)
    if mask2 is not None:
        both &= mask2
    if not both.any():
        return 0.0
    return float(np.mean(np.abs(d2[both] - warped[both]) / d2[both]))


def relative_pose(pose_from: np.ndarray, pose_to: np.ndarray) -> np.ndarray:
    """``inv(pose_to) @ pose_from``: camera ``from`` coordinates -> camera ``to`` coordinates, for
    camera-to-world 4x4 poses."""
    return np.linalg.inv(np.asarray(pose_to, dtype=np.float64)) @ np.asarray(pose_from, dtype=np.float64)


def temporal_alignment_error(depth: np.ndarray, poses: np.ndarray, intrinsics: np.ndarray,
                             masks: np.ndarray | None = None, dynamic: np.ndarray | None = None) -> float:
    """TAE in percent for one video (see the module docstring).

    Args:
        depth: (N, H, W) aligned predicted depth in metres (:func:`align_video_disparity`), N >= 2.
        poses: (N, 4, 4) camera-to-world poses.
        intrinsics: (N, 3, 3) or (3, 3) pixel intrinsics of the maps (frame i's are used for pair i, i+1).
        masks: optional (N, H, W) bool, the pixels that count in each frame.
        dynamic: optional (N, H, W) bool, pixels showing moving objects: excluded as sources and as targets.

    Raises:
        ValueError: fewer than two frames or mismatched lengths.
    """
    n = len(depth)
    poses = np.asarray(poses, dtype=np.float64)
    ks = np.asarray(intrinsics, dtype=np.float64)
    if ks.ndim == 2:
        ks = np.broadcast_to(ks, (n, 3, 3))
    if n < 2 or len(poses) != n or len(ks) != n or any(m is not None and len(m) != n for m in (masks, dynamic)):
        raise ValueError(f"TAE needs >= 2 frames with one pose and intrinsics each: {n} maps, {len(poses)} poses, "
                         f"{len(ks)} intrinsics")
    static = None if dynamic is None else ~np.asarray(dynamic, dtype=bool)
    if static is not None:
        masks = static if masks is None else np.asarray(masks, dtype=bool) & static
    total = 0.0
    for i in range(n - 1):
        forward = relative_pose(poses[i], poses[i + 1])
        total += reprojection_error(depth[i], depth[i + 1], forward, ks[i], None if masks is None else masks[i + 1],
                                    None if static is None else static[i])
        total += reprojection_error(depth[i + 1], depth[i], np.linalg.inv(forward), ks[i],
                                    None if masks is None else masks[i], None if static is None else static[i + 1])
    return 100.0 * total / (2 * (n - 1))
