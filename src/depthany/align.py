"""Aligning a prediction to reference values: least-squares scale and shift, scale only, or median scaling.

Used wherever a relative prediction meets known values: evaluation protocols, validation during training,
metric calibration from anchors, temporal alignment of video frames. All fits are done in float64. ``pred`` and
``target`` are 1-D arrays of the pixels to fit on (the caller builds the fitting mask: for disparity alignment
Marigold uses ``valid & (gt > 0) & (pred > 0)``).
"""

from __future__ import annotations

import numpy as np


class AlignmentError(ValueError):
    """The fit is degenerate (no pixels, or a constant prediction)."""


def fit_scale_shift(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Least squares ``min_{s,t} sum (s * pred + t - target)^2`` via the 2x2 normal equations (float64).

    Returns:
        (s, t).

    Raises:
        AlignmentError: fewer than two pixels or a constant prediction (determinant <= 0).
    """
    p = np.asarray(pred, dtype=np.float64).ravel()
    g = np.asarray(target, dtype=np.float64).ravel()
    if p.size != g.size:
        raise ValueError(f"pred and target differ in size: {p.size} vs {g.size}")
    if p.size < 2:
        raise AlignmentError(f"need at least 2 pixels to fit scale and shift, got {p.size}")
    # Centre first: the same solution as the raw normal equations, with far less cancellation.
    pm, gm = p.mean(), g.mean()
    pc = p - pm
    a00 = float(np.dot(pc, pc))
    if not a00 > 0:
        raise AlignmentError("prediction is constant on the fitting pixels; scale is undetermined")
    s = float(np.dot(pc, g - gm)) / a00
    return s, float(gm - s * pm)


def fit_scale(pred: np.ndarray, target: np.ndarray) -> float:
    """Least-squares scale only: ``min_s sum (s * pred - target)^2``."""
    p = np.asarray(pred, dtype=np.float64).ravel()
    g = np.asarray(target, dtype=np.float64).ravel()
    denom = float(np.dot(p, p))
    if not denom > 0:
        raise AlignmentError("prediction is zero on the fitting pixels")
    return float(np.dot(p, g)) / denom


def median_scale(pred: np.ndarray, target: np.ndarray) -> float:
    """Median scaling: median(target) / median(pred).

    Raises:
        AlignmentError: no pixels, or the median of the prediction is not positive.
    """
    p = np.asarray(pred, dtype=np.float64)
    if p.size == 0:
        raise AlignmentError("no pixels to take the median of")
    mp = float(np.median(p))
    if not mp > 0:
        raise AlignmentError("median of the prediction is not positive")
    return float(np.median(np.asarray(target, dtype=np.float64))) / mp
