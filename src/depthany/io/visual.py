"""8-bit pictures of a depth result: colour map, gray, ControlNet conditioning and side by side.

Every picture shows *nearness*, so near is bright (gray, ControlNet) or warm (``Spectral_r``: red) whatever
the model: relative V1/V2 models output disparity (bigger = nearer) which is shown as is; metric models (metres)
and Depth Anything 3's relative depth (bigger = farther) are shown as inverse depth 1/d (pixels with d <= 0 or
non-finite count as invalid), the way the official DA3 ``visualize_depth`` shows depth. Each
picture is normalised to its own min..max, the way the official scripts do it, so colours are not comparable
across images.
"""

from __future__ import annotations

import numpy as np

from ..result import DepthResult
from .colormap import DEFAULT_CMAP, colorize, normalize_u8

SBS_MARGIN = 50  # white gap between the image and the depth picture, as in the official run.py


def nearness(result: DepthResult) -> np.ndarray:
    """(H, W) float32 that grows towards the camera: the values of relative disparity, 1/depth for depth
    (metric: 1/m; relative depth: up to scale), NaN where depth <= 0 or not finite."""
    v = np.asarray(result.values, dtype=np.float32)
    if not result.is_depth:
        return v
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(v) & (v > 0), 1.0 / v, np.nan).astype(np.float32)


def depth_color(result: DepthResult, cmap: str = DEFAULT_CMAP) -> np.ndarray:
    """(H, W, 3) uint8 RGB: per-image min..max of :func:`nearness` through colour map ``cmap``
    (invalid pixels black). For a relative V2 model and ``Spectral_r`` this equals the official V2 picture."""
    return colorize(nearness(result), cmap)


def depth_gray(result: DepthResult) -> np.ndarray:
    """(H, W) uint8: per-image min..max of :func:`nearness` to 0..255, truncated (near = white, invalid = 0)."""
    return normalize_u8(nearness(result))[0]


def controlnet_image(result: DepthResult) -> np.ndarray:
    """(H, W, 3) uint8 ControlNet depth conditioning: :func:`depth_gray` on all three channels (near = bright)."""
    return np.repeat(depth_gray(result)[..., None], 3, axis=2)


def side_by_side(rgb: np.ndarray, picture: np.ndarray, margin: int = SBS_MARGIN) -> np.ndarray:
    """``rgb | white margin | picture``, like the official ``run.py`` without ``--pred-only``.

    Args:
        rgb: (H, W, 3) uint8 input image.
        picture: (H, W, 3) or (H, W) uint8 depth picture of the same size.
        margin: width in pixels of the white gap.

    Returns:
        (H, 2W + margin, 3) uint8.
    """
    pic = np.repeat(picture[..., None], 3, axis=2) if picture.ndim == 2 else picture
    if rgb.shape[:2] != pic.shape[:2] or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"side_by_side needs an (H, W, 3) image and an (H, W) picture of the same size, "
                         f"got {rgb.shape} and {picture.shape}")
    gap = np.full((rgb.shape[0], margin, 3), 255, dtype=np.uint8)
    return np.concatenate([rgb.astype(np.uint8, copy=False), gap, pic], axis=1)
