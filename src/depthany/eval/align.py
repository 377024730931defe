"""The evaluation protocols' alignment: least-squares scale and shift on a mask, optionally fitted on a
down-sampled copy (Marigold's ``alignment_max_res``). The plain fits are :mod:`depthany.align`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

from ..align import AlignmentError, fit_scale_shift

# ------------------------------------------------------------------------------------------------------------
# Down-sampled fitting (Marigold ``alignment_max_res``, used for ETH3D at 1024).


def nearest_indices(size: int, scale_factor: float) -> np.ndarray:
    """Source indices that ``torch.nn.Upsample(scale_factor=..., mode="nearest")`` picks along one axis.

    Output length is ``floor(size * scale_factor)``; index ``i`` reads ``floor(float32(i) * float32(1 /
    scale_factor))`` (torch computes the step in float32), clamped to ``size - 1``. Reproduced here so the
    fit needs no torch and matches Marigold index for index.
    """
    n_out = int(np.floor(size * float(scale_factor)))
    if n_out < 1:
        raise ValueError(f"scale_factor {scale_factor} leaves no pixels of an axis of size {size}")
    if n_out == size:
        return np.arange(size)
    step = np.float32(1.0 / float(scale_factor))
    idx = np.floor(np.arange(n_out, dtype=np.float32) * step).astype(np.int64)
    return np.asarray(np.minimum(idx, size - 1))


FitDownsample = Literal["width", "both"]


def downsample_for_fit(array: np.ndarray, max_res: int | None, axes: FitDownsample = "width") -> np.ndarray:
    """Nearest-neighbour copy of an (H, W) array for fitting at reduced resolution.

    ``scale = min(max_res / H, max_res / W)``; nothing happens when ``max_res`` is None or ``scale >= 1``.

    ``axes="width"`` reproduces Marigold exactly: its ``align_depth_least_square`` passes a 3-D (1, H, W)
    tensor to ``nn.Upsample``, which then interpolates the *last axis only*, so only the columns are
    subsampled and all rows are kept. ``axes="both"`` subsamples rows and columns (what the option's name
    suggests). Both give the same fit for an exactly affine prediction.
    """
    if max_res is None:
        return array
    if axes not in ("width", "both"):
        raise ValueError(f"axes must be 'width' or 'both', got {axes!r}")
    h, w = array.shape[:2]
    scale = float(np.min(max_res / np.array([h, w], dtype=np.float64)))
    if scale >= 1:
        return array
    out = array[:, nearest_indices(w, scale)]
    if axes == "both":
        out = out[nearest_indices(h, scale)]
    return out


class AffineFit(NamedTuple):
    """Result of :func:`fit_affine_masked`: ``aligned = scale * pred + shift``."""

    scale: float
    shift: float
    degenerate: bool
    n_fit: int


def fit_affine_masked(pred: np.ndarray, target: np.ndarray, mask: np.ndarray, max_res: int | None = None,
                      axes: FitDownsample = "width") -> AffineFit:
    """Least-squares scale and shift of ``pred`` to ``target`` on ``mask``, optionally fitted down-sampled.

    Args:
        pred, target: (H, W) float arrays (depth or disparity, the caller chooses the space).
        mask: (H, W) bool fitting mask.
        max_res, axes: see :func:`downsample_for_fit`.

    Returns:
        :class:`AffineFit` with the number of fitting pixels used. When the prediction is constant on them the
        problem is rank deficient; then (scale, shift) is the minimum-norm solution that
        ``np.linalg.lstsq(rcond=None)`` (Marigold) returns, whose aligned prediction equals the mean target on
        those pixels, and ``degenerate`` is True.

    Raises:
        AlignmentError: no fitting pixels.
    """
    p = downsample_for_fit(pred, max_res, axes)
    g = downsample_for_fit(target, max_res, axes)
    m = downsample_for_fit(mask, max_res, axes).astype(bool)
    pm, gm = p[m], g[m]
    if pm.size == 0:
        raise AlignmentError("no pixels to fit scale and shift on")
    try:
        s, t = fit_scale_shift(pm, gm)
        return AffineFit(s, t, False, int(pm.size))
    except AlignmentError:
        c = float(np.asarray(pm, dtype=np.float64).ravel()[0])
        mean = float(np.mean(np.asarray(gm, dtype=np.float64)))
        # Minimum-norm solution of [c 1] x = g: x = mean * (c, 1) / (c^2 + 1).
        return AffineFit(mean * c / (c * c + 1.0), mean / (c * c + 1.0), True, int(pm.size))
