"""Trivial predictors that show what a model has learned beyond the protocol itself.

Both return *depth* (H, W) float32, so they run under every protocol (their inverse is the disparity).

* ``constant``: the same value everywhere. Least-squares alignment of a constant is rank deficient; the
  protocols then use the minimum-norm solution that ``np.linalg.lstsq`` (Marigold) returns, whose aligned
  prediction is the mean target over the fitting pixels: this baseline scores the *best single depth* (or
  disparity) per image, the floor any model must beat. The report counts these ``degenerate_fit`` images.
* ``ground-plane``: a camera looking horizontally over flat ground sees disparity growing linearly toward
  the image bottom. The prior is ``disparity = (row + 0.5) / H`` (a tiny linear ramp, positive everywhere),
  i.e. ``depth = H / (row + 0.5)``; it is exactly affine in disparity, so the disparity protocols align it
  with a proper fit.
"""

from __future__ import annotations

import numpy as np

BASELINES: tuple[str, ...] = ("constant", "ground-plane")


def constant_depth(shape: tuple[int, int], value: float = 1.0) -> np.ndarray:
    """(H, W) float32 filled with ``value`` (> 0; unitless unless you mean metres)."""
    if not value > 0:
        raise ValueError(f"baseline constant value must be > 0, got {value}")
    return np.full(shape, value, dtype=np.float32)


def ground_plane_depth(shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 depth ``H / (row + 0.5)``: disparity ``(row + 0.5) / H`` rises linearly to the bottom."""
    h, w = shape
    disparity = (np.arange(h, dtype=np.float64) + 0.5) / h
    return np.broadcast_to((1.0 / disparity)[:, None], (h, w)).astype(np.float32)


def baseline_depth(name: str, shape: tuple[int, int], value: float = 1.0) -> np.ndarray:
    """Dispatch by name (one of :data:`BASELINES`).

    Raises:
        ValueError: unknown baseline name.
    """
    if name == "constant":
        return constant_depth(shape, value)
    if name == "ground-plane":
        return ground_plane_depth(shape)
    raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {name!r}")
