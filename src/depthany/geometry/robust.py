"""Robust fit of ``1/depth ~= s * d + t`` (or ``s * d``) from anchors with outliers.

Method (MSAC, then least squares on the inliers):

1. Hypotheses from minimal samples: every pair of anchors (scale and shift) or every single anchor (scale
   only) when there are few, otherwise ``max_trials`` random ones (seeded, so results are reproducible).
   Hypotheses with ``s <= 0`` are discarded: disparity grows as things get nearer.
2. Each hypothesis is scored on the relative depth error of every anchor, ``e = z_pred / z_true - 1``, with
   the truncated quadratic cost ``sum(min(e^2, tol^2))`` (MSAC: RANSAC that also prefers the tighter fit
   among equal inlier counts). ``tol`` is ``inlier_tol``, default 0.1 = 10 % depth error.
3. The inliers (``|e| <= tol``) of the best hypothesis are refit by ordinary least squares in disparity space
   (:func:`depthany.align.fit_scale_shift` / :func:`~depthany.align.fit_scale`, the standard
   alignment), the inliers are recomputed, and this repeats until the inlier set stops changing.

The relative error makes the inlier test independent of the scene's scale: 10 % is 10 cm at 1 m and 1 m at
10 m, which matches how monocular depth errors grow with distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..align import AlignmentError, fit_scale, fit_scale_shift

FitMode = Literal["scale_shift", "scale"]
_EXHAUSTIVE_PAIRS = 160  # up to this many points every pair is tried (12,720 hypotheses)
_SCORE_POINTS = 4000  # hypotheses are scored on at most this many points (all points decide the inliers)


class CalibrationError(ValueError):
    """The anchors cannot determine a calibration (too few, degenerate, or no consistent subset)."""


@dataclass
class RobustFit:
    """Result of :func:`robust_disparity_fit`.

    Attributes:
        scale, shift: ``1/depth = scale * d + shift`` (shift 0 for scale-only), 1/m per unit of ``d``.
        inliers: (N,) bool.
        n_hypotheses: how many minimal-sample hypotheses were scored.
        refits: least-squares refits until the inlier set was stable.
    """

    scale: float
    shift: float
    inliers: np.ndarray
    n_hypotheses: int
    refits: int


def relative_errors(d: np.ndarray, inv_depth: np.ndarray, s: np.ndarray | float, t: np.ndarray | float
                    ) -> np.ndarray:
    """``z_pred / z_true - 1`` for hypotheses (K,) x points (N,) -> (K, N); +inf where ``s*d + t <= 0``."""
    pred = np.multiply.outer(np.atleast_1d(s), d) + np.atleast_1d(t)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        e = inv_depth[None, :] / pred - 1.0
    return np.where(pred > 0, e, np.inf)


def _hypotheses(d: np.ndarray, inv: np.ndarray, mode: FitMode, max_trials: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    n = d.size
    if mode == "scale":
        idx = np.arange(n) if n <= max_trials else rng.choice(n, max_trials, replace=False)
        idx = idx[d[idx] > 0]
        return inv[idx] / d[idx], np.zeros(idx.size)
    if n <= _EXHAUSTIVE_PAIRS:
        i, j = np.triu_indices(n, k=1)
    else:
        i = rng.integers(0, n, max_trials)
        j = rng.integers(0, n - 1, max_trials)
        j = j + (j >= i)  # a different point than i
    dd = d[i] - d[j]
    ok = np.abs(dd) > 1e-12 * np.maximum(np.abs(d[i]), np.abs(d[j])).clip(min=1e-300)
    i, j, dd = i[ok], j[ok], dd[ok]
    s = (inv[i] - inv[j]) / dd
    t = inv[i] - s * d[i]
    return s, t


def _least_squares(d: np.ndarray, inv: np.ndarray, mode: FitMode) -> tuple[float, float]:
    try:
        if mode == "scale":
            return fit_scale(d, inv), 0.0
        return fit_scale_shift(d, inv)
    except AlignmentError as e:
        raise CalibrationError(f"least-squares refit failed: {e}") from e


def robust_disparity_fit(d: np.ndarray, depth: np.ndarray, mode: FitMode = "scale_shift", *,
                         inlier_tol: float = 0.1, max_trials: int = 2000, seed: int = 0) -> RobustFit:
    """Fit ``1/depth ~= s * d + t`` robustly (see the module docstring).

    Args:
        d: (N,) prediction at the anchors (relative disparity, or 1/depth of a metric prediction).
        depth: (N,) known z-depth in metres, > 0.
        mode: ``"scale_shift"`` (needs >= 2 anchors with different ``d``) or ``"scale"`` (>= 1).
        inlier_tol: relative depth error that still counts as an inlier.
        max_trials: random minimal samples when there are too many anchors to try all.
        seed: for the random samples.

    Raises:
        CalibrationError: too few anchors, all with the same prediction, or no hypothesis with s > 0.
    """
    d = np.asarray(d, dtype=np.float64).ravel()
    z = np.asarray(depth, dtype=np.float64).ravel()
    if d.size != z.size:
        raise ValueError(f"d and depth differ in length: {d.size} vs {z.size}")
    if mode not in ("scale_shift", "scale"):
        raise ValueError(f"mode must be 'scale_shift' or 'scale', got {mode!r}")
    if not inlier_tol > 0:
        raise ValueError(f"inlier_tol must be positive, got {inlier_tol}")
    need = 2 if mode == "scale_shift" else 1
    if d.size < need:
        raise CalibrationError(f"{mode} needs at least {need} known point(s), got {d.size}")
    inv = 1.0 / z
    if mode == "scale_shift" and np.ptp(d) <= 1e-12 * max(float(np.abs(d).max()), 1e-300):
        raise CalibrationError("all known points have the same predicted disparity, so a shift cannot be "
                               "separated from the scale; use mode='scale' or points at different distances")

    rng = np.random.default_rng(seed)
    s_h, t_h = _hypotheses(d, inv, mode, max_trials, rng)
    keep = s_h > 0
    s_h, t_h = s_h[keep], t_h[keep]
    if s_h.size == 0:
        raise CalibrationError("no pair of known points is consistent with disparity growing as depth shrinks "
                               "(every candidate scale is <= 0); check that the points match the image")
    score_idx = np.arange(d.size) if d.size <= _SCORE_POINTS else rng.choice(d.size, _SCORE_POINTS, replace=False)
    best_cost, best = np.inf, 0
    tol2 = inlier_tol ** 2
    for start in range(0, s_h.size, 512):
        e = relative_errors(d[score_idx], inv[score_idx], s_h[start:start + 512], t_h[start:start + 512])
        cost = np.minimum(e * e, tol2).sum(axis=1)
        k = int(np.argmin(cost))
        if cost[k] < best_cost:
            best_cost, best = float(cost[k]), start + k

    s, t = float(s_h[best]), float(t_h[best])
    inl = np.abs(relative_errors(d, inv, s, t)[0]) <= inlier_tol
    refits = 0
    for refits in range(1, 21):  # noqa: B007 - the count is reported
        if inl.sum() < need or (mode == "scale_shift" and np.ptp(d[inl]) == 0):
            break
        s_new, t_new = _least_squares(d[inl], inv[inl], mode)
        if not s_new > 0:
            break
        new_inl = np.abs(relative_errors(d, inv, s_new, t_new)[0]) <= inlier_tol
        if new_inl.sum() < need:
            break
        s, t = s_new, t_new
        if np.array_equal(new_inl, inl):
            break
        inl = new_inl
    return RobustFit(s, t, inl, int(s_h.size), refits)
