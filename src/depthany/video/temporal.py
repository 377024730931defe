"""Flicker-free video depth from a single-image model: temporal alignment and a slowly adapting colour range.

A relative model predicts affine-invariant disparity: every frame comes with its own unknown scale and shift,
and they wander from frame to frame even when nothing in the scene moves. The official video scripts then
stretch each frame's own min..max over the colour map, so a few extreme pixels (a speck of sky, a noisy edge)
decide the colours of the whole frame: the video flickers.

Here each frame is instead mapped into the frame of a running reference:

1. :class:`TemporalAligner` fits ``aligned = s * disparity + t`` to an exponential moving average (EMA) of the
   previous aligned frames, by least squares on a coarse grid of *confident* pixels: pixels whose reference is
   stable over time (low EMA variance), with outliers removed by iterated 3-sigma (MAD) trimming. A frame that
   does not fit the reference at all (a scene cut) restarts it, matching percentiles to stay close in colour.
2. :class:`AdaptiveRange` moves the colour range towards each frame's robust 0.5..99.5th percentiles by a small
   fraction per frame, so the colours drift slowly instead of jumping.

Both work on (H, W) float arrays and keep O(grid) state: memory does not depend on the video length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..align import AlignmentError, fit_scale_shift

RangeMode = Literal["adaptive", "frame", "fixed"]
TemporalMode = Literal["ema", "none"]
RANGE_MODES: tuple[str, ...] = ("adaptive", "frame", "fixed")
TEMPORAL_MODES: tuple[str, ...] = ("ema", "none")


def grid_indices(size: int, cells: int) -> np.ndarray:
    """``cells`` evenly spread pixel indices (centres of equal bins) of an axis of ``size`` pixels."""
    n = max(1, min(size, cells))
    return ((np.arange(n) + 0.5) * size / n).astype(np.intp)


def subsample(values: np.ndarray, cells: int) -> np.ndarray:
    """(H, W) -> (h, w) float64 nearest-neighbour samples on a grid of at most ``cells`` per side."""
    v = np.asarray(values)
    out: np.ndarray = v[np.ix_(grid_indices(v.shape[0], cells), grid_indices(v.shape[1], cells))]
    return out.astype(np.float64)


@dataclass
class Alignment:
    """What :meth:`TemporalAligner.align` did to one frame: ``aligned = scale * values + shift``.

    Attributes:
        scale, shift: the affine map applied.
        inliers: fraction of the grid pixels used in the final fit (0..1).
        residual: median absolute residual of the fit over all valid grid pixels, relative to the median
            absolute deviation of the reference (about 1 for an unrelated picture, 0.01..0.1 for the same scene).
        reset: True when the reference was (re)started on this frame (first frame or a scene cut).
        held: True for a constant frame: the previous frame's map was reused and the reference left alone.
    """

    scale: float
    shift: float
    inliers: float
    residual: float
    reset: bool = False
    held: bool = False


class TemporalAligner:
    """Map each frame's relative disparity into a common scale and shift, frame after frame.

    Args:
        momentum: EMA weight of the newest frame in the reference (0 < m <= 1); small = steadier, slower to
            follow real changes. 1 aligns each frame to the previous one only (drift accumulates).
        grid: fit on at most ``grid`` x ``grid`` pixels (a nearest-neighbour sample; the fit has 2 unknowns).
        stable_fraction: fit only on this fraction of grid pixels whose reference varied least so far.
        iterations: rounds of 3-sigma outlier trimming.
        cut_threshold: a residual (see :attr:`Alignment.residual`) above this restarts the reference.

    The first frame is kept as is (scale 1, shift 0), so the aligned values stay in the model's own units.
    """

    def __init__(self, momentum: float = 0.1, grid: int = 96, stable_fraction: float = 0.8, iterations: int = 3,
                 cut_threshold: float = 0.5) -> None:
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1], got {momentum}")
        if not 0 < stable_fraction <= 1:
            raise ValueError(f"stable_fraction must be in (0, 1], got {stable_fraction}")
        if grid < 4:
            raise ValueError(f"grid must be >= 4, got {grid}")
        self.momentum = momentum
        self.grid = grid
        self.stable_fraction = stable_fraction
        self.iterations = iterations
        self.cut_threshold = cut_threshold
        self.reference: np.ndarray | None = None  # (h, w) float64 EMA of aligned frames
        self.variance: np.ndarray | None = None  # (h, w) float64 EMA of squared changes
        self.last = (1.0, 0.0)
        self.frames = 0

    def reset(self) -> None:
        """Forget the reference (the next frame starts a new shot)."""
        self.reference = self.variance = None
        self.last = (1.0, 0.0)

    def _fit(self, d: np.ndarray, ok: np.ndarray) -> tuple[float, float, float, float]:
        """Robust scale and shift of grid ``d`` to the reference: (s, t, inlier fraction, residual).

        Three starting points (least squares on the stable pixels, percentile matching, the previous frame's
        map) compete on their median absolute residual; the best is refined by least squares with iterated
        3-sigma (MAD) trimming. Raises AlignmentError when no start has a positive scale.
        """
        ref = self.reference
        assert ref is not None and self.variance is not None
        valid = ok & np.isfinite(ref)
        mask = valid.copy()
        if self.stable_fraction < 1 and self.frames > 1 and mask.sum() > 16:
            cutoff = np.quantile(self.variance[mask], self.stable_fraction)
            mask &= self.variance <= cutoff
        dm, rm = d[mask], ref[mask]
        starts = [self._percentile_match(d, valid), self.last]
        try:
            starts.append(fit_scale_shift(dm, rm))
        except AlignmentError:
            pass
        starts = [(a, b) for a, b in starts if np.isfinite(a) and np.isfinite(b) and a > 0]
        if not starts:
            raise AlignmentError("no positive scale fits this frame to the reference")
        s, t = min(starts, key=lambda st: float(np.median(np.abs(st[0] * dm + st[1] - rm))))
        fitted = mask
        for _ in range(self.iterations):
            r = s * d + t - ref
            sigma = 1.4826 * float(np.median(np.abs(r[mask])))
            keep = mask & (np.abs(r) <= max(3 * sigma, 1e-12))
            if keep.sum() < 8:
                break
            try:
                s_new, t_new = fit_scale_shift(d[keep], ref[keep])
            except AlignmentError:
                break
            if not s_new > 0:
                break
            s, t, fitted = s_new, t_new, keep
        ref_valid = ref[valid]
        mad = float(np.median(np.abs(ref_valid - np.median(ref_valid))))
        residual = float(np.median(np.abs(s * d[valid] + t - ref_valid))) / max(mad, 1e-12)
        return s, t, float(fitted.sum()) / max(1, int(ok.sum())), residual

    def _percentile_match(self, d: np.ndarray, ok: np.ndarray) -> tuple[float, float]:
        """Scale and shift that put the frame's 5..95th percentiles where the reference's are."""
        assert self.reference is not None
        ref = self.reference[np.isfinite(self.reference)]
        a_lo, a_hi = np.percentile(d[ok], [5, 95])
        b_lo, b_hi = np.percentile(ref, [5, 95])
        if not a_hi > a_lo or not b_hi > b_lo:
            return self.last
        s = float((b_hi - b_lo) / (a_hi - a_lo))
        return s, float(b_lo - s * a_lo)

    def align(self, values: np.ndarray) -> tuple[np.ndarray, Alignment]:
        """Align one frame.

        Args:
            values: (H, W) float relative disparity (or any affine-invariant map; NaN/inf = no value).

        Returns:
            ((H, W) float32 aligned values, the :class:`Alignment` applied).
        """
        v = np.asarray(values, dtype=np.float32)
        if v.ndim != 2:
            raise ValueError(f"expected an (H, W) map, got shape {v.shape}")
        d = subsample(v, self.grid)
        ok = np.isfinite(d)
        self.frames += 1
        if self.reference is None or self.reference.shape != d.shape or ok.sum() < 8:
            info = Alignment(1.0, 0.0, 1.0, 0.0, reset=True)
            if self.reference is not None and self.reference.shape == d.shape and ok.sum() >= 2:
                info.scale, info.shift = self._percentile_match(d, ok)
            self._restart(info.scale * d + info.shift)
        elif not np.ptp(d[ok]) > 0:  # a constant frame (a fade to black): keep the last map, learn nothing
            info = Alignment(*self.last, inliers=0.0, residual=0.0, held=True)
        else:
            try:
                s, t, inliers, residual = self._fit(d, ok)
            except AlignmentError:  # anti-correlated with the reference: certainly another shot
                s, t, inliers, residual = *self.last, 0.0, float("inf")
            info = Alignment(s, t, inliers, residual)
            if residual > self.cut_threshold:  # the frame does not look like the reference: a new shot
                info.scale, info.shift = self._percentile_match(d, ok)
                info.reset = True
                self._restart(info.scale * d + info.shift)
            else:
                self._update(s * d + t)
        self.last = (info.scale, info.shift)
        aligned = (np.float32(info.scale) * v + np.float32(info.shift)).astype(np.float32)
        return aligned, info

    def _restart(self, aligned_grid: np.ndarray) -> None:
        self.reference = aligned_grid.copy()
        self.variance = np.zeros_like(aligned_grid)
        self.frames = 1

    def _update(self, aligned_grid: np.ndarray) -> None:
        assert self.reference is not None and self.variance is not None
        m = self.momentum
        fresh = np.isfinite(aligned_grid)
        change = np.where(fresh, aligned_grid - self.reference, 0.0)
        # A pixel with no reference yet takes the new value; one with no new value keeps its reference.
        missing = ~np.isfinite(self.reference)
        self.reference = np.where(missing, aligned_grid, np.where(fresh, self.reference + m * change, self.reference))
        self.variance = (1 - m) * self.variance + m * np.where(missing, 0.0, change) ** 2


class AdaptiveRange:
    """The value range that the colour map spans, per frame.

    Args:
        mode: ``"adaptive"``: start at the first frame's robust percentiles and move towards each new frame's
            by ``rate`` of the difference; ``"frame"``: each frame's own min..max (the official scripts'
            behaviour, which flickers); ``"fixed"``: ``vmin``..``vmax`` if given, else the first frame's
            robust percentiles for the whole video.
        rate: fraction of the way towards the new frame's range per frame (adaptive mode).
        percentiles: (low, high) percentiles of a frame that define its robust range.
        vmin, vmax: the fixed range (fixed mode).
        grid: percentiles are taken on at most ``grid`` x ``grid`` samples.
    """

    def __init__(self, mode: RangeMode = "adaptive", rate: float = 0.05, percentiles: tuple[float, float] = (0.5, 99.5),
                 vmin: float | None = None, vmax: float | None = None, grid: int = 128) -> None:
        if mode not in RANGE_MODES:
            raise ValueError(f"range mode must be one of {', '.join(RANGE_MODES)}, got {mode!r}")
        if not 0 < rate <= 1:
            raise ValueError(f"range rate must be in (0, 1], got {rate}")
        if (vmin is None) != (vmax is None) or (vmin is not None and vmax is not None and not vmax > vmin):
            raise ValueError(f"give both vmin and vmax with vmax > vmin, got vmin={vmin}, vmax={vmax}")
        self.mode = mode
        self.rate = rate
        self.percentiles = percentiles
        self.grid = grid
        self.lo: float | None = vmin
        self.hi: float | None = vmax
        self._given = vmin is not None

    def update(self, values: np.ndarray) -> tuple[float, float]:
        """Take one (H, W) frame (NaN = no value) and return the (vmin, vmax) to colour it with."""
        v = np.asarray(values)
        if self.mode == "frame":
            finite = v[np.isfinite(v)]
            if finite.size == 0:
                return 0.0, 1.0
            return float(finite.min()), float(finite.max())
        if self.mode == "fixed" and self._given:
            assert self.lo is not None and self.hi is not None
            return self.lo, self.hi
        g = subsample(v, self.grid)
        g = g[np.isfinite(g)]
        if g.size == 0:
            return (self.lo, self.hi) if self.lo is not None and self.hi is not None else (0.0, 1.0)
        lo, hi = (float(x) for x in np.percentile(g, self.percentiles))
        if self.lo is None or self.hi is None:
            self.lo, self.hi = lo, hi
        elif self.mode == "adaptive":
            self.lo += self.rate * (lo - self.lo)
            self.hi += self.rate * (hi - self.hi)
        if not self.hi > self.lo:
            self.hi = self.lo + max(abs(self.lo) * 1e-6, 1e-12)
        return self.lo, self.hi


def normalise(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """(H, W) values -> (H, W) float32 in [0, 1]: the position on the colour map (NaN stays NaN)."""
    span = vmax - vmin if vmax > vmin else 1.0
    with np.errstate(invalid="ignore"):
        out: np.ndarray = np.clip((np.asarray(values, dtype=np.float32) - np.float32(vmin)) / np.float32(span), 0, 1)
    return out
