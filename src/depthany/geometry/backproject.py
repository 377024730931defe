"""Depth maps in metres to 3D points in camera coordinates, and back.

Camera coordinates follow OpenCV: ``x`` right, ``y`` down, ``z`` forward, metres; pixel centres at integer
coordinates (see :mod:`depthany.geometry.intrinsics`). Depth is **z-depth** (distance along the optical axis,
what the metric Depth Anything models predict), not the distance along the ray. For a pixel ``(u, v)`` with
depth ``z``::

    x = (u - cx) / fx * z,   y = (v - cy) / fy * z.

Only depth can be back-projected: metric depth, or relative depth (Depth Anything 3 mono: depth up to one
unknown scale, giving a scaled copy of the scene). A relative V1/V2 prediction is affine-invariant *disparity*
with an unknown scale and shift; inverting it gives a shape that is not even a scaled copy of the scene (planes
bend), so it is refused. Calibrate it first (:mod:`depthany.geometry.calibrate`).

Flying pixels: at a depth discontinuity the network output is smooth, so pixels between a foreground edge and
the background get in-between depths and float in space as streaks. :func:`flying_pixel_mask` flags a pixel
when, inside its ``(2r + 1) x (2r + 1)`` window of valid pixels, the largest depth exceeds the smallest by
more than a factor ``1 + rtol`` (default ``rtol = 0.05``, ``r = 1``). This removes every pixel next to a jump of
more than 5 % (both sides of it: the edge gets one pixel thinner) and keeps flat or gently curved surfaces.
A surface seen at a grazing angle also changes depth quickly: a floor is removed within about ``2 r / rtol``
(40) pixels of the horizon. Raise ``rtol`` to keep more, lower it to clean harder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .intrinsics import Intrinsics

DEFAULT_FLYING_RTOL = 0.05


def metric_depth_array(depth: Any, name: str = "depth") -> np.ndarray:
    """(H, W) float array of metres from an array or a metric :class:`~depthany.result.DepthResult`; a
    relative-depth result (DA3Mono: depth up to scale) passes too, and back-projects to a scaled copy of the scene
    in unknown units.

    Raises:
        ValueError: a relative-disparity result (calibrate it first), or not a 2-D array.
    """
    kind = getattr(depth, "kind", None)
    if kind is not None:
        if kind not in ("metric_depth", "relative_depth"):
            raise ValueError(
                f"{name} is {kind!r} from model {getattr(depth, 'model', '?')!r}: relative disparity has an "
                "unknown scale and shift, so it has no metres to project. Use a metric model "
                "(da2-metric-indoor-*/da2-metric-outdoor-*, da3-metric-large) or calibrate it with known distances "
                "first (depthany calibrate fit ..., or depthany.geometry.fit_calibration)")
        depth = depth.values
    arr = np.asarray(depth)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be an (H, W) depth map in metres, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr


def _check_size(depth: np.ndarray, k: Intrinsics) -> None:
    if depth.shape != (k.height, k.width):
        raise ValueError(f"intrinsics are for {k.width}x{k.height} px but the depth map is {depth.shape[1]}x"
                         f"{depth.shape[0]}; use intrinsics.scaled(width=..., height=...) for a resized image")


def backproject(depth: Any, intrinsics: Intrinsics) -> np.ndarray:
    """Every pixel to a 3D point, no filtering.

    Args:
        depth: (H, W) z-depth in metres (array or metric DepthResult).
        intrinsics: for an image of exactly W x H pixels.

    Returns:
        (H, W, 3) float32 points (x, y, z) in metres, camera coordinates; non-finite depth stays non-finite.
    """
    z = metric_depth_array(depth).astype(np.float64)
    _check_size(z, intrinsics)
    h, w = z.shape
    u = np.arange(w, dtype=np.float64)[None, :]
    v = np.arange(h, dtype=np.float64)[:, None]
    x = (u - intrinsics.cx) / intrinsics.fx * z
    y = (v - intrinsics.cy) / intrinsics.fy * z
    return np.stack([x, y, z], axis=-1).astype(np.float32)


def project(points: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """3D camera-frame points to pixel coordinates.

    Args:
        points: (..., 3) x, y, z in metres; z must be > 0 (in front of the camera).

    Returns:
        (..., 2) float64 (u, v) in pixels, pixel centres at integers.

    Raises:
        ValueError: a point with z <= 0.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.shape[-1] != 3:
        raise ValueError(f"points must have shape (..., 3), got {p.shape}")
    if np.any(~(p[..., 2] > 0)):
        raise ValueError("points behind or on the camera plane (z <= 0) cannot be projected")
    u = intrinsics.fx * p[..., 0] / p[..., 2] + intrinsics.cx
    v = intrinsics.fy * p[..., 1] / p[..., 2] + intrinsics.cy
    return np.stack([u, v], axis=-1)


def valid_depth_mask(depth: np.ndarray, *, min_depth: float = 0.0, max_depth: float | None = None,
                     mask: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: finite, ``> min_depth``, ``< max_depth`` (if given) and inside ``mask`` (if given).

    Args:
        depth: (H, W) metres.
        min_depth, max_depth: metres; metric models saturate near their maximum (20 m indoor, 80 m outdoor),
            which is where sky ends up, so a ``max_depth`` a little below it removes the sky.
        mask: (H, W) bool, True = keep (e.g. not sky).
    """
    z = np.asarray(depth)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(z) & (z > min_depth)
        if max_depth is not None:
            if not max_depth > min_depth:
                raise ValueError(f"max_depth must be greater than min_depth ({min_depth}), got {max_depth}")
            ok &= z < max_depth
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != z.shape:
            raise ValueError(f"mask has shape {m.shape} but the depth map has shape {z.shape}")
        if m.dtype != bool:
            raise ValueError(f"mask must be a boolean array (True = keep), got dtype {m.dtype}")
        ok &= m
    return ok


def flying_pixel_mask(depth: np.ndarray, *, rtol: float = DEFAULT_FLYING_RTOL, radius: int = 1,
                      valid: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool, True where a pixel sits on a depth discontinuity (see the module docstring).

    Args:
        depth: (H, W) metres (any positive depth-like quantity: the test is a ratio).
        rtol: relative jump that counts as a discontinuity: flagged when max/min over the window > 1 + rtol.
        radius: window half-size in pixels (1 = 3 x 3).
        valid: (H, W) bool of pixels that take part; default finite and > 0. Invalid pixels are never flagged
            and do not count as neighbours.
    """
    if not rtol > 0:
        raise ValueError(f"flying-pixel rtol must be positive, got {rtol}")
    if not (isinstance(radius, (int, np.integer)) and radius >= 1):
        raise ValueError(f"flying-pixel radius must be a positive integer, got {radius!r}")
    z = np.asarray(depth, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(z) & (z > 0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    r = int(radius)
    hi_src = np.pad(np.where(ok, z, -np.inf), r, constant_values=-np.inf)
    lo_src = np.pad(np.where(ok, z, np.inf), r, constant_values=np.inf)
    h, w = z.shape
    hi = np.full((h, w), -np.inf, dtype=np.float32)
    lo = np.full((h, w), np.inf, dtype=np.float32)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            np.maximum(hi, hi_src[dy:dy + h, dx:dx + w], out=hi)
            np.minimum(lo, lo_src[dy:dy + h, dx:dx + w], out=lo)
    with np.errstate(invalid="ignore"):
        return ok & (hi > lo * np.float32(1.0 + rtol))


@dataclass
class PointCloud:
    """Points kept from a depth map.

    Attributes:
        xyz: (N, 3) float32, metres, camera coordinates (x right, y down, z forward).
        keep: (H, W) bool, the pixels the points came from, in row-major order (``xyz == grid[keep]``).
        intrinsics: the camera used.
        n_invalid: pixels dropped as non-finite, out of range or masked.
        n_flying: pixels dropped as flying pixels.
    """

    xyz: np.ndarray
    keep: np.ndarray
    intrinsics: Intrinsics
    n_invalid: int = 0
    n_flying: int = 0

    def colors(self, rgb: np.ndarray) -> np.ndarray:
        """(N, 3) uint8 colours of the kept pixels from an (H, W, 3) uint8 RGB image."""
        im = np.asarray(rgb)
        if im.ndim != 3 or im.shape[:2] != self.keep.shape or im.shape[2] < 3:
            raise ValueError(f"rgb must be (H, W, 3) with H, W = {self.keep.shape}, got shape {im.shape}")
        if im.dtype != np.uint8:
            raise ValueError(f"rgb must be uint8, got dtype {im.dtype}")
        return np.ascontiguousarray(im[..., :3][self.keep])


def depth_to_points(
    depth: Any,
    intrinsics: Intrinsics,
    *,
    mask: np.ndarray | None = None,
    min_depth: float = 0.0,
    max_depth: float | None = None,
    drop_flying: bool = True,
    flying_rtol: float = DEFAULT_FLYING_RTOL,
    flying_radius: int = 1,
) -> PointCloud:
    """Back-project the valid pixels of a metric depth map.

    Args:
        depth: (H, W) z-depth in metres, or a metric :class:`~depthany.result.DepthResult`.
        intrinsics: for exactly W x H pixels.
        mask: (H, W) bool, True = keep (e.g. a non-sky mask).
        min_depth, max_depth: keep ``min_depth < z < max_depth`` (metres).
        drop_flying: drop pixels on depth discontinuities (:func:`flying_pixel_mask`).
        flying_rtol, flying_radius: its threshold and window.

    Raises:
        ValueError: relative disparity (calibrate first), size mismatch, bad mask.
    """
    z = metric_depth_array(depth)
    _check_size(z, intrinsics)
    ok = valid_depth_mask(z, min_depth=min_depth, max_depth=max_depth, mask=mask)
    n_invalid = int(ok.size - ok.sum())
    n_flying = 0
    if drop_flying:
        fly = flying_pixel_mask(z, rtol=flying_rtol, radius=flying_radius, valid=ok)
        n_flying = int(fly.sum())
        ok &= ~fly
    v, u = np.nonzero(ok)
    zz = z[v, u].astype(np.float64)
    xyz = np.stack([(u - intrinsics.cx) / intrinsics.fx * zz, (v - intrinsics.cy) / intrinsics.fy * zz, zz], -1)
    return PointCloud(xyz.astype(np.float32).reshape(-1, 3), ok, intrinsics, n_invalid, n_flying)
