"""Depth metrics as small pure functions of valid-pixel arrays.

Every function takes ``gt`` and ``pred``: 1-D (or any-shape) float arrays of the *valid* pixels only, in the
same unit (metres for depth protocols, 1/m or unitless for disparity protocols), all > 0 for the log and
ratio metrics. Reference implementations (Marigold ``metric.py``, ZoeDepth ``compute_errors``) compute them
per image and average over images; see :func:`compute_all`.
"""

from __future__ import annotations

import numpy as np

ArrayLike = np.ndarray


def _f64(gt: ArrayLike, pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(gt, dtype=np.float64).ravel()
    p = np.asarray(pred, dtype=np.float64).ravel()
    if g.shape != p.shape:
        raise ValueError(f"gt and pred differ in size: {g.size} vs {p.size}")
    if g.size == 0:
        raise ValueError("no valid pixels")
    return g, p


def abs_rel(gt: ArrayLike, pred: ArrayLike) -> float:
    """mean(|pred - gt| / gt)."""
    g, p = _f64(gt, pred)
    return float(np.mean(np.abs(p - g) / g))


def sq_rel(gt: ArrayLike, pred: ArrayLike) -> float:
    """mean((pred - gt)^2 / gt)."""
    g, p = _f64(gt, pred)
    return float(np.mean((p - g) ** 2 / g))


def rmse(gt: ArrayLike, pred: ArrayLike) -> float:
    """sqrt(mean((pred - gt)^2)), in the unit of the inputs."""
    g, p = _f64(gt, pred)
    return float(np.sqrt(np.mean((p - g) ** 2)))


def rmse_log(gt: ArrayLike, pred: ArrayLike) -> float:
    """sqrt(mean((ln pred - ln gt)^2)), natural log."""
    g, p = _f64(gt, pred)
    return float(np.sqrt(np.mean((np.log(p) - np.log(g)) ** 2)))


def log10(gt: ArrayLike, pred: ArrayLike) -> float:
    """mean(|log10 pred - log10 gt|)."""
    g, p = _f64(gt, pred)
    return float(np.mean(np.abs(np.log10(p) - np.log10(g))))


def delta(gt: ArrayLike, pred: ArrayLike, k: int = 1, base: float = 1.25) -> float:
    """Fraction of pixels with max(pred/gt, gt/pred) < base**k (strict, as in every reference)."""
    g, p = _f64(gt, pred)
    return float(np.mean(np.maximum(p / g, g / p) < base**k))


def irmse(gt: ArrayLike, pred: ArrayLike) -> float:
    """sqrt(mean((1/pred - 1/gt)^2)) (Marigold's inverse RMSE)."""
    g, p = _f64(gt, pred)
    return float(np.sqrt(np.mean((1.0 / p - 1.0 / g) ** 2)))


def silog_bts(gt: ArrayLike, pred: ArrayLike) -> float:
    """Scale-invariant log error as ZoeDepth/BTS/Marigold report it: 100 * sqrt(mean(e^2) - mean(e)^2), e = ln p - ln g."""
    g, p = _f64(gt, pred)
    e = np.log(p) - np.log(g)
    return float(100.0 * np.sqrt(max(np.mean(e**2) - np.mean(e) ** 2, 0.0)))


def silog_dav2(gt: ArrayLike, pred: ArrayLike) -> float:
    """Depth Anything V2 ``metric_depth`` validation SILog: sqrt(mean(d^2) - 0.5 mean(d)^2), no x100."""
    g, p = _f64(gt, pred)
    d = np.log(g) - np.log(p)
    return float(np.sqrt(max(np.mean(d**2) - 0.5 * np.mean(d) ** 2, 0.0)))


def silog_loss_085(gt: ArrayLike, pred: ArrayLike) -> float:
    """ZoeDepth/AdaBins SILog *loss* form (biased variance): 10 * sqrt(mean(g^2) - 0.85 mean(g)^2)."""
    g, p = _f64(gt, pred)
    e = np.log(p) - np.log(g)
    return float(10.0 * np.sqrt(max(np.mean(e**2) - 0.85 * np.mean(e) ** 2, 0.0)))


METRICS = {
    "abs_rel": abs_rel,
    "sq_rel": sq_rel,
    "rmse": rmse,
    "rmse_log": rmse_log,
    "log10": log10,
    "delta1": lambda g, p: delta(g, p, 1),
    "delta2": lambda g, p: delta(g, p, 2),
    "delta3": lambda g, p: delta(g, p, 3),
    "silog_bts": silog_bts,
    "silog_dav2": silog_dav2,
    "silog_loss_085": silog_loss_085,
    "irmse": irmse,
}


def compute_all(gt: ArrayLike, pred: ArrayLike, names: list[str] | None = None) -> dict[str, float]:
    """Every metric (or the named ones) for one image's valid pixels."""
    return {n: METRICS[n](gt, pred) for n in (names or list(METRICS))}
