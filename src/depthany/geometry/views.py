"""Several posed depth maps of one scene as one point cloud in world coordinates.

The any-view Depth Anything 3 models return, per view, a depth map, a confidence map, world-to-camera extrinsics
``[R | t]`` and pinhole intrinsics ``K``, all at the processing resolution. A pixel ``(u, v)`` (integer pixel
coordinates, as the official exporters use them with the predicted ``K``) with depth ``z`` is the camera point
``z * K^-1 (u, v, 1)`` and the world point ``R^T (x_cam - t)``.

The official exporters (ByteDance-Seed/Depth-Anything-3 @ 2c21ea8, ``utils/export/glb.py``, ``colmap.py``) keep
the pixels with finite positive depth whose confidence reaches a threshold taken over all views together: the
40th percentile of the confidences for COLMAP (:func:`confidence_threshold`), and for GLB that percentile clamped
as ``min(max(1.05, p40), p90)`` (:func:`glb_confidence_threshold`). Both are reproduced here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONF_PERCENTILE = 40.0  # official conf_thresh_percentile (GLB and COLMAP exports)
GLB_BASE_CONF = 1.05  # official export_to_glb conf_thresh before the percentile clamp
GLB_UPPER_PERCENTILE = 90.0  # official ensure_thresh_percentile


def confidence_threshold(conf: np.ndarray, percentile: float = CONF_PERCENTILE) -> float:
    """The ``percentile``-th percentile of all views' confidences (numpy's linear interpolation)."""
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    return float(np.percentile(np.asarray(conf), percentile))


def glb_confidence_threshold(conf: np.ndarray, percentile: float = CONF_PERCENTILE,
                             base: float = GLB_BASE_CONF, upper: float = GLB_UPPER_PERCENTILE) -> float:
    """The official GLB threshold: ``min(max(base, p_percentile), p_upper)`` over all confidences."""
    c = np.asarray(conf)
    return float(min(max(base, np.percentile(c, percentile)), np.percentile(c, upper)))


@dataclass
class ViewPoints:
    """Points of several views in one world frame.

    Attributes:
        xyz: (M, 3) float32 world coordinates (the scene's units).
        rgb: (M, 3) uint8 colours, or None.
        view: (M,) int32 index of the view each point comes from.
        pixel: (M, 2) int32 ``(u, v)`` pixel of that view.
    """

    xyz: np.ndarray
    rgb: np.ndarray | None
    view: np.ndarray
    pixel: np.ndarray

    def __len__(self) -> int:
        return int(self.xyz.shape[0])

    def subset(self, index: np.ndarray) -> ViewPoints:
        """The points at ``index`` (an index array or boolean mask)."""
        return ViewPoints(self.xyz[index], None if self.rgb is None else self.rgb[index], self.view[index],
                          self.pixel[index])


def homogeneous(extrinsics: np.ndarray) -> np.ndarray:
    """(..., 3, 4) ``[R | t]`` -> (..., 4, 4) float64 with the last row (0, 0, 0, 1)."""
    e = np.asarray(extrinsics, dtype=np.float64)
    out = np.zeros((*e.shape[:-2], 4, 4))
    out[..., :3, :4] = e[..., :3, :4]
    out[..., 3, 3] = 1.0
    return out


def world_points(depth: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray, rgb: np.ndarray | None = None,
                 conf: np.ndarray | None = None, threshold: float | None = None) -> ViewPoints:
    """Back-project every kept pixel of every view into the world frame.

    Args:
        depth: (N, H, W) z-depth.
        intrinsics: (N, 3, 3) pixel intrinsics of the maps.
        extrinsics: (N, 3, 4) (or (N, 4, 4)) world-to-camera transforms.
        rgb: (N, H, W, 3) uint8 colours of the maps, or None.
        conf: (N, H, W) confidence; with ``threshold``, pixels below it are dropped.
        threshold: the confidence a pixel needs (``conf >= threshold``).

    Returns:
        :class:`ViewPoints`, view by view, each view's pixels in row-major order.
    """
    d = np.asarray(depth)
    if d.ndim != 3:
        raise ValueError(f"depth must be (N, H, W), got shape {d.shape}")
    n, h, w = d.shape
    k = np.asarray(intrinsics, dtype=np.float64)
    if k.shape != (n, 3, 3):
        raise ValueError(f"intrinsics must be ({n}, 3, 3), got shape {k.shape}")
    c2w = np.linalg.inv(homogeneous(extrinsics))
    if c2w.shape != (n, 4, 4):
        raise ValueError(f"extrinsics must be ({n}, 3, 4), got shape {np.shape(extrinsics)}")
    vv, uu = np.mgrid[0:h, 0:w]
    pix = np.stack([uu.ravel(), vv.ravel(), np.ones(h * w)], axis=0).astype(np.float64)  # (3, H*W)
    xyz, cols, views, pixels = [], [], [], []
    for i in range(n):
        di = d[i].reshape(-1)
        keep = np.isfinite(di) & (di > 0)
        if conf is not None and threshold is not None:
            keep &= np.asarray(conf[i]).reshape(-1) >= threshold
        idx = np.flatnonzero(keep)
        cam = (np.linalg.inv(k[i]) @ pix[:, idx]) * di[idx].astype(np.float64)
        world = c2w[i, :3, :3] @ cam + c2w[i, :3, 3:4]
        xyz.append(world.T.astype(np.float32))
        views.append(np.full(idx.size, i, dtype=np.int32))
        pixels.append(np.stack([idx % w, idx // w], axis=1).astype(np.int32))
        if rgb is not None:
            cols.append(np.asarray(rgb[i]).reshape(-1, 3)[idx].astype(np.uint8))
    return ViewPoints(np.concatenate(xyz) if xyz else np.zeros((0, 3), np.float32),
                      np.concatenate(cols) if rgb is not None and cols else None,
                      np.concatenate(views) if views else np.zeros(0, np.int32),
                      np.concatenate(pixels) if pixels else np.zeros((0, 2), np.int32))


def even_subset(n: int, limit: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``limit`` of ``n`` items, drawn without replacement from a seeded generator (the
    official GLB export draws them unseeded: the same count, but a different subset each run)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
