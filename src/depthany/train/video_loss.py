"""The Video Depth Anything training loss: a scale-and-shift-invariant spatial loss plus temporal gradient matching.

Facts (DepthAnything/Video-Depth-Anything, commit 4f5ae23172ba60fd7bc11ef671cca678842c7072, ``loss/loss.py``,
``VideoDepthLoss(alpha=0.5, scales=4, trim=0.0, stable_scale=10)``; ``docs/video_depth_anything.md`` section 5):

* **spatial** (``TrimmedProcrustesLoss``) on every frame as an image: prediction and target each normalised by
  ``(x - median) / mean|x - median|`` (the median taken over *all* pixels of ``mask * x``, so masked pixels count
  as zeros, torch's lower median; the mean absolute deviation over the mask, clamped at 1e-6), then the trimmed
  mean absolute error (``trim`` = 0 by default: nothing trimmed; batch-based: the sum of the kept residuals over
  the number of mask pixels) + ``alpha`` x the gradient-matching term at ``scales`` scales (every 2^s-th pixel,
  |x/y differences of the masked residual| on pixel pairs valid in both, summed and divided by the mask count of
  that scale; the batch-based sum over all frames);
* **temporal** (``TemporalGradientMatchingLoss``, one temporal scale): the prediction aligned to the target per
  clip by least squares (``compute_scale_and_shift`` over all valid pixels of the clip; a zero determinant gives
  scale 0 and shift 0, the determinant is regularised by 1e-6 as the official code), then the trimmed MAE between
  frame-to-frame differences of prediction and target, on pixels valid in both frames whose target change is
  below ``diff_depth_th`` (0.05) x the later frame's target range (max - min over its valid pixels);
  x ``stable_scale`` (10).

Shapes: ``prediction``, ``target`` (B, T, H, W) float (disparity, as the model outputs), ``mask`` (B, T, H, W)
bool. The loss is a 0-d tensor with gradients to ``prediction``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class VideoLossTerms(NamedTuple):
    """``total`` = ``spatial`` + ``stable_scale`` x temporal (``stable`` holds the scaled term)."""

    total: Tensor
    spatial: Tensor
    stable: Tensor


def robust_normalize(x: Tensor, mask: Tensor) -> Tensor:
    """(N, H, W) -> ``(x - median) / mean|x - median|`` per image (the official quirks: see the module docstring)."""
    m = mask.to(x.dtype)
    count = m.sum(dim=(1, 2))
    valid = count > 0
    median = torch.zeros_like(count)
    scale = torch.ones_like(count)
    if valid.any():
        median[valid] = torch.median((m[valid] * x[valid]).flatten(1), dim=1).values
    centred = x - median.view(-1, 1, 1)
    mad = (m * centred.abs()).sum(dim=(1, 2))
    scale[valid] = torch.clamp(mad[valid] / count[valid], min=1e-6)
    return centred / scale.view(-1, 1, 1)


def trimmed_mae(pred: Tensor, target: Tensor, mask: Tensor, trim: float = 0.0) -> Tensor:
    """Sum of the smallest ``(1 - trim)`` share of |pred - target| over the mask, divided by the mask count."""
    m = mask.bool()
    count = m.sum()
    if count == 0:
        return pred.sum() * 0.0
    residual = (pred - target)[m].abs()
    keep = int(residual.numel() * (1.0 - trim))
    if keep <= 0:
        return pred.sum() * 0.0
    kept = torch.sort(residual).values[:keep] if trim > 0 else residual
    return kept.sum() / count.to(pred.dtype)


def gradient_matching(pred: Tensor, target: Tensor, mask: Tensor, scales: int = 4) -> Tensor:
    """Multi-scale gradient matching of the residual, batch-based (N, H, W)."""
    total = pred.new_zeros(())
    for s in range(scales):
        step = 2 ** s
        p, t, m = pred[:, ::step, ::step], target[:, ::step, ::step], mask[:, ::step, ::step].to(pred.dtype)
        count = m.sum()
        diff = m * (p - t)
        gx = (diff[:, :, 1:] - diff[:, :, :-1]).abs() * m[:, :, 1:] * m[:, :, :-1]
        gy = (diff[:, 1:] - diff[:, :-1]).abs() * m[:, 1:] * m[:, :-1]
        summed = gx.sum() + gy.sum()
        total = total + (summed / count if count > 0 else summed * 0.0)
    return total


def spatial_loss(pred: Tensor, target: Tensor, mask: Tensor, alpha: float = 0.5, scales: int = 4,
                 trim: float = 0.0) -> Tensor:
    """The scale-and-shift-invariant image loss over (N, H, W) images."""
    p, t = robust_normalize(pred, mask), robust_normalize(target, mask)
    loss = trimmed_mae(p, t, mask, trim)
    if alpha > 0:
        loss = loss + alpha * gradient_matching(p, t, mask, scales)
    return loss


def clip_scale_shift(pred: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Least-squares scale and shift per clip (B, ...) over the mask, as the official normal equations."""
    m = mask.to(pred.dtype).flatten(1)
    p, t = pred.flatten(1), target.flatten(1)
    a00, a01, a11 = (m * p * p).sum(1), (m * p).sum(1), m.sum(1)
    b0, b1 = (m * p * t).sum(1), (m * t).sum(1)
    det = a00 * a11 - a01 * a01
    ok = det != 0
    scale = torch.where(ok, (a11 * b0 - a01 * b1) / (det + 1e-6), torch.zeros_like(det))
    shift = torch.where(ok, (-a01 * b0 + a00 * b1) / (det + 1e-6), torch.zeros_like(det))
    return scale, shift


def temporal_gradient_loss(pred: Tensor, target: Tensor, mask: Tensor, trim: float = 0.0,
                           diff_depth_th: float = 0.05) -> Tensor:
    """MAE of frame-to-frame changes (B, T, H, W), on pixels valid in both frames whose target change is small."""
    m = mask.bool()
    lo = torch.where(m, target, torch.inf).amin(dim=(-2, -1))
    hi = torch.where(m, target, -torch.inf).amax(dim=(-2, -1))
    threshold = (hi - lo) * diff_depth_th  # (B, T)
    dp, dt = torch.diff(pred, dim=1), torch.diff(target, dim=1)
    keep = m[:, 1:] & m[:, :-1] & (dt.abs() < threshold[:, 1:, None, None])
    return trimmed_mae(dp.flatten(0, 1), dt.flatten(0, 1), keep.flatten(0, 1), trim)


def video_depth_loss(pred: Tensor, target: Tensor, mask: Tensor, alpha: float = 0.5, scales: int = 4,
                     trim: float = 0.0, stable_scale: float = 10.0) -> VideoLossTerms:
    """The official ``VideoDepthLoss`` on (B, T, H, W) clips (see the module docstring)."""
    if pred.shape != target.shape or pred.shape != mask.shape or pred.ndim != 4:
        raise ValueError(f"prediction {tuple(pred.shape)}, target {tuple(target.shape)} and mask "
                         f"{tuple(mask.shape)} must all be (B, T, H, W)")
    spatial = spatial_loss(pred.flatten(0, 1), target.flatten(0, 1), mask.flatten(0, 1), alpha, scales, trim)
    scale, shift = clip_scale_shift(pred, target, mask)
    aligned = scale.view(-1, 1, 1, 1) * pred + shift.view(-1, 1, 1, 1)
    stable = temporal_gradient_loss(aligned, target, mask, trim) * stable_scale
    return VideoLossTerms(spatial + stable, spatial, stable)
