"""Error measures between an output and the exact path's output (same input, same weights), and the bounds stated
in them. Used by the inference backends, the export parity report and the benchmarks.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

ArrayLike = np.ndarray | Tensor

# Stated accuracy against the exact path (PyTorch eager fp32 on the same weights and input):
# fp32 (backends, exported files): max |out - ref| / (max(ref) - min(ref)), the output's range; see max_rel_error;
# reduced precision: AbsRel with the fp32 output as ground truth, see absrel.
EXACT_TOLERANCE = 1e-5
REDUCED_TOLERANCE = 0.015

# Pixels whose reference value is below this fraction of the reference maximum are left out of AbsRel:
# relative disparity is ~0 for sky and far background, where any absolute error is an infinite ratio.
ABSREL_FLOOR = 0.01


def _pair(out: ArrayLike, ref: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    o = out.detach().float().cpu().numpy() if isinstance(out, Tensor) else np.asarray(out)
    r = ref.detach().float().cpu().numpy() if isinstance(ref, Tensor) else np.asarray(ref)
    if o.shape != r.shape:
        raise ValueError(f"output and reference shapes differ: {o.shape} vs {r.shape}")
    return o.astype(np.float64), r.astype(np.float64)


def max_rel_error(out: ArrayLike, ref: ArrayLike) -> float:
    """max |out - ref| / (max(ref) - min(ref)): the largest error relative to the reference's range.

    This is the "exact" criterion: fp32 backends stay below 1e-5. The range, not max |ref|, is the scale:
    a map that sits on a large offset (metric depth far from the camera, a disparity with a constant bias)
    would otherwise hide errors that are large compared with its actual variation. A constant reference
    falls back to max |ref| (and an all-zero one to max |out|), so the measure is always defined.
    """
    o, r = _pair(out, ref)
    err = float(np.abs(o - r).max())
    scale = float(r.max() - r.min())
    if scale == 0.0:
        scale = float(np.abs(r).max())
    return err / scale if scale > 0.0 else err


def absrel(out: ArrayLike, ref: ArrayLike, floor: float = ABSREL_FLOOR) -> float:
    """AbsRel with the fp32 output as ground truth: mean(|out - ref| / ref) over pixels where
    ref > ``floor`` * max(ref) (each map in the batch gets its own floor).

    Normalising by the reference value makes the number comparable across models and scales; it is the
    reduced-precision criterion (stated bound 1.5 %).
    """
    o, r = _pair(out, ref)
    if r.ndim == 2:
        o, r = o[None], r[None]
    vals = []
    for oi, ri in zip(o.reshape(o.shape[0], -1), r.reshape(r.shape[0], -1)):
        m = ri > floor * ri.max()
        if m.any():
            vals.append(np.abs(oi[m] - ri[m]) / ri[m])
    return float(np.concatenate(vals).mean()) if vals else 0.0


def delta1(out: ArrayLike, ref: ArrayLike, floor: float = ABSREL_FLOOR, threshold: float = 1.25) -> float:
    """Share of pixels with max(out / ref, ref / out) < ``threshold``, over the pixels :func:`absrel` uses
    (ref > ``floor`` * max(ref), per map); a non-positive ``out`` there counts as a miss.

    With the fp32 output as ground truth this is the evaluation protocol's delta1 without alignment: both maps
    come from the same model, so they share scale and shift.
    """
    o, r = _pair(out, ref)
    if r.ndim == 2:
        o, r = o[None], r[None]
    hits, total = 0, 0
    for oi, ri in zip(o.reshape(o.shape[0], -1), r.reshape(r.shape[0], -1)):
        m = ri > floor * ri.max()
        if m.any():
            om, rm = oi[m], ri[m]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(om > 0, np.maximum(om / rm, rm / om), np.inf)
            hits += int((ratio < threshold).sum())
            total += int(m.sum())
    return hits / total if total else 1.0


def error_report(out: ArrayLike, ref: ArrayLike) -> dict[str, float]:
    """The error numbers written into parity reports and benchmark JSON."""
    o, r = _pair(out, ref)
    return {
        "max_abs": float(np.abs(o - r).max()),
        "mean_abs": float(np.abs(o - r).mean()),
        "max_rel": max_rel_error(o, r),
        "absrel": absrel(o, r),
    }
