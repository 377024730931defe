"""Offline stitching of Video Depth Anything windows: scale/shift alignment, clamping, linear cross-fade.

Pure numpy on full-resolution float32 maps, in the official order of operations (``infer_video_depth`` in
``video_depth.py`` and ``compute_scale_and_shift`` / ``get_interpolate_frames`` in ``utils/util.py``), so the
results are bit-identical to the official ones given the same window outputs. Unlike the official code, which
stitches after predicting the whole video, :class:`WindowStitcher` takes one window at a time and hands back the
frames that can no longer change, holding only ``interp`` pending frames and ``align_frames`` references.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ...zoo import VideoWindows


def fit_scale_shift(prediction: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Least-squares ``scale * prediction + shift ~ target`` over all pixels, in float32 like the official code.

    Normal equations with float32 sums (numpy's pairwise summation); ``(1, 0)`` when the system is singular
    (a constant prediction).

    Args:
        prediction, target: float arrays of the same shape (the official code passes the keyframes stacked
            along the first axis, (2H, W)).
    """
    p = prediction.astype(np.float32)
    t = target.astype(np.float32)
    ones = np.ones_like(p)
    a00, a01, a11 = np.sum(ones * p * p), np.sum(ones * p), np.sum(ones)
    b0, b1 = np.sum(ones * p * t), np.sum(ones * t)
    det = a00 * a11 - a01 * a01
    if det == 0:
        return 1, 0  # type: ignore[return-value]  # ints, as the official code returns; exact either way
    return (a11 * b0 - a01 * b1) / det, (-a01 * b0 + a00 * b1) / det


def crossfade_weights(n: int) -> list[float]:
    """Weights of the later window for ``n`` overlapping frames: 0, 1/(n-1), ..., 1 (``i * step``, as official)."""
    step = 1.0 / (n - 1)
    return [0.0] + [i * step for i in range(1, n - 1)] + [1.0]


def _affine(depth: np.ndarray, scale: float, shift: float) -> np.ndarray:
    out = depth * scale + shift
    out[out < 0] = 0  # negative clamping after the alignment
    return out


@dataclass
class StitchedWindow:
    """What one window settled: ``frames`` (in video order, starting at video index ``first``) and its fit."""

    first: int
    frames: list[np.ndarray]
    scale: float
    shift: float


@dataclass
class WindowStitcher:
    """Feed each window's ``length`` outputs in order with :meth:`add`; call :meth:`finish` at the end.

    Args:
        windows: the schedule.
        metric: no scale/shift alignment (metric models: scale 1, shift 0; outputs still clamped at 0).
    """

    windows: VideoWindows
    metric: bool = False
    count: int = 0
    pending: list[np.ndarray] = field(default_factory=list)  # the last ``interp`` aligned frames
    reference: list[np.ndarray] = field(default_factory=list)  # the ``align_frames`` keyframe targets

    @property
    def held(self) -> int:
        """Full-resolution frames held between windows."""
        return len(self.pending) + len(self.reference)

    def add(self, depths: Sequence[np.ndarray]) -> StitchedWindow:
        """Stitch window ``count``: (H, W) float32 outputs at window positions 0 .. length-1.

        Window 0 settles video frames 0 .. length-interp-1. Window k > 0 settles the ``interp`` frames it shares
        with window k-1 (cross-faded) and its new frames up to length-interp-1; frame index =
        k * step + window position.
        """
        w = self.windows
        if len(depths) != w.length:
            raise ValueError(f"a window has {w.length} frames, got {len(depths)}")
        keys = w.keyframes[: w.align_frames]
        keep = w.length - w.interp
        if self.count == 0:
            scale, shift = 1.0, 0.0
            settled = list(depths[:keep])
            self.pending = [np.array(d) for d in depths[keep:]]
            self.reference = [np.array(depths[k]) for k in keys]
            first = 0
        else:
            if self.metric:
                scale, shift = 1.0, 0.0
            else:
                scale, shift = fit_scale_shift(np.concatenate(list(depths[: w.align_frames])),
                                               np.concatenate(self.reference))
            shared = [_affine(d, scale, shift) for d in depths[w.align_frames: w.overlap]]
            weights = crossfade_weights(w.interp)
            settled = [a * (1 - t) + b * t for a, b, t in zip(self.pending, shared, weights)]
            new = [_affine(depths[i], scale, shift) for i in range(w.overlap, w.length)]
            settled += new[: w.step - w.interp]
            self.pending = new[w.step - w.interp:]
            # the video's first frame stays the first target; the second follows the latest window
            self.reference = self.reference[:1] + [_affine(depths[k], scale, shift) for k in keys[1:]]
            first = self.count * w.step + w.align_frames
        self.count += 1
        return StitchedWindow(first, settled, float(scale), float(shift))

    def finish(self) -> list[np.ndarray]:
        """The last window's final ``interp`` frames (video indices (count-1)*step + length-interp onwards)."""
        out, self.pending, self.reference = self.pending, [], []
        return out
