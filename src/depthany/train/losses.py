"""Masked training losses for Depth Anything: affine-invariant (V1), gradient matching (MiDaS), SILog (V2 metric).

Shapes: ``pred``, ``target`` and ``mask`` are (B, H, W); ``mask`` is bool (True = valid pixel). Relative losses
work in *disparity* (inverse depth, 1/m, unknown scale and shift); SILog works in *depth* (metres).

Every loss is computed per image and then averaged over the images that have valid pixels. A per-image mean
makes the value independent of how a batch is split across processes or accumulation steps, so DDP with N
ranks optimises exactly what one process with the whole batch would.
"""

from __future__ import annotations

import torch
from torch import Tensor

MAD_EPS = 1e-6  # floor for the mean absolute deviation: a constant map normalises to 0 instead of inf/nan


def depth_to_disparity(depth: Tensor, mask: Tensor) -> Tensor:
    """(B, H, W) depth in metres -> disparity 1/depth (1/m) on valid pixels, 0 elsewhere."""
    safe = torch.where(mask, depth, torch.ones_like(depth))
    return torch.where(mask, 1.0 / safe, torch.zeros_like(depth))


def _mean_over_images(per_image: Tensor, has_pixels: Tensor) -> Tensor:
    """Mean of a (B,) tensor over images with valid pixels; 0 (still attached to the graph) when none have."""
    n = has_pixels.sum().clamp(min=1)
    return torch.where(has_pixels, per_image, torch.zeros_like(per_image)).sum() / n


def masked_median(x: Tensor, mask: Tensor) -> Tensor:
    """Per-image median of the valid pixels, (B, H, W) -> (B,). Even counts take the lower middle value, like
    ``torch.median``. Images without valid pixels get 0."""
    flat = torch.where(mask, x, torch.full_like(x, float("nan"))).flatten(1)
    return torch.nan_to_num(flat.nanmedian(dim=1).values, nan=0.0)


def normalize_affine(x: Tensor, mask: Tensor) -> Tensor:
    """Depth Anything V1 normalisation d_hat = (d - median(d)) / mean(|d - median(d)|), per image on valid pixels.

    Returns:
        (B, H, W), 0 outside the mask. Invariant to ``x -> a * x + b`` for any ``a > 0``.
    """
    m = mask.to(x.dtype)
    count = m.flatten(1).sum(1).clamp(min=1)
    t = masked_median(x, mask)[:, None, None]
    centred = (x - t) * m
    s = centred.abs().flatten(1).sum(1) / count
    return centred / s.clamp(min=MAD_EPS)[:, None, None]


def ssi_loss_normalized(pred_n: Tensor, target_n: Tensor, mask: Tensor) -> Tensor:
    """Mean |pred_n - target_n| over valid pixels of each image, averaged over images (inputs normalised)."""
    m = mask.to(pred_n.dtype)
    count = m.flatten(1).sum(1)
    per_image = ((pred_n - target_n).abs() * m).flatten(1).sum(1) / count.clamp(min=1)
    return _mean_over_images(per_image, count > 0)


def ssi_loss(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Affine-invariant loss of Depth Anything V1 (scale- and shift-invariant MAE).

    ``(1 / M) * sum_i |pred_hat_i - target_hat_i|`` over the M valid pixels, with both maps normalised
    separately by :func:`normalize_affine`, averaged over images. Zero when ``pred = a * target + b``, a > 0.
    """
    return ssi_loss_normalized(normalize_affine(pred, mask), normalize_affine(target, mask), mask)


def gradient_matching_loss(pred: Tensor, target: Tensor, mask: Tensor, scales: int = 4) -> Tensor:
    """MiDaS multi-scale gradient-matching loss on ``diff = pred - target`` (pass *aligned* maps).

    For each scale s = 0 .. scales-1 the maps are subsampled with stride 2**s. The loss at a scale is the
    sum of |diff(x+1) - diff(x)| and |diff(y+1) - diff(y)| over neighbour pairs where both pixels are valid,
    divided by the number of valid pixels at that scale; per-image values are averaged over images with
    valid pixels and summed over scales. Zero when ``pred - target`` is constant on the valid pixels.
    """
    total = pred.new_zeros(())
    for per_image, count in _gradient_matching_scales(pred, target, mask, scales):
        total = total + _mean_over_images(per_image, count > 0)
    return total


def gradient_matching_per_image(pred: Tensor, target: Tensor, mask: Tensor, scales: int = 4) -> Tensor:
    """:func:`gradient_matching_loss` per image, (B,): the sum over scales of each image's own term (an image
    without valid pixels at a scale adds 0 there)."""
    total = pred.new_zeros(pred.shape[0])
    for per_image, _ in _gradient_matching_scales(pred, target, mask, scales):
        total = total + per_image
    return total


def _gradient_matching_scales(pred: Tensor, target: Tensor, mask: Tensor, scales: int) -> list[tuple[Tensor, Tensor]]:
    """Per scale: (per-image gradient-matching term (B,), valid pixel count (B,)); 0 where the count is 0."""
    out = []
    for s in range(scales):
        step = 2**s
        p, t, m = pred[:, ::step, ::step], target[:, ::step, ::step], mask[:, ::step, ::step]
        mf = m.to(pred.dtype)
        diff = (p - t) * mf
        gx = (diff[:, :, 1:] - diff[:, :, :-1]).abs() * (mf[:, :, 1:] * mf[:, :, :-1])
        gy = (diff[:, 1:, :] - diff[:, :-1, :]).abs() * (mf[:, 1:, :] * mf[:, :-1, :])
        count = mf.flatten(1).sum(1)
        out.append(((gx.flatten(1).sum(1) + gy.flatten(1).sum(1)) / count.clamp(min=1), count))
    return out


def ssi_gm_losses(pred: Tensor, target: Tensor, mask: Tensor, scales: int = 4) -> tuple[Tensor, Tensor]:
    """Both relative losses from one normalisation: (affine-invariant loss, gradient matching).

    As in the MiDaS paper, the gradient-matching residual is ``R = pred_hat - target_hat`` on the same
    median/MAD-normalised maps as the affine-invariant term, so both are invariant to the prediction's scale
    and shift, and every image weighs the same whatever its disparity range. (The MiDaS reference code
    aligns the prediction to the target by least squares instead; in our runs on tiny from-scratch networks
    that variant learned more slowly and could drive the output to a constant, see docs/training.md.)
    """
    pn, tn = normalize_affine(pred, mask), normalize_affine(target, mask)
    return ssi_loss_normalized(pn, tn, mask), gradient_matching_loss(pn, tn, mask, scales)


def silog_loss(pred: Tensor, target: Tensor, mask: Tensor, lam: float = 0.5, eps: float = 1e-6) -> Tensor:
    """Scale-invariant log loss of the Depth Anything V2 metric models: sqrt(mean(d^2) - lam * mean(d)^2).

    ``d = ln(target) - ln(pred)`` over valid pixels of each image (depths in metres; ``pred`` is floored at
    ``eps`` before the log), averaged over images. The official code pools all pixels of a GPU's batch; the
    per-image form here does not depend on how the batch is split.
    """
    m = mask.to(pred.dtype)
    count = m.flatten(1).sum(1)
    safe_t = torch.where(mask, target, torch.ones_like(target))
    d = (torch.log(safe_t) - torch.log(pred.clamp(min=eps))) * m
    n = count.clamp(min=1)
    mean_d = d.flatten(1).sum(1) / n
    mean_d2 = (d * d).flatten(1).sum(1) / n
    # The clamp keeps sqrt's gradient finite when the prediction is exact up to the allowed scale.
    per_image = torch.sqrt((mean_d2 - lam * mean_d * mean_d).clamp(min=1e-12))
    return _mean_over_images(per_image, count > 0)


def zoedepth_silog_loss(pred: Tensor, target: Tensor, mask: Tensor, beta: float = 0.15, eps: float = 1e-7) -> Tensor:
    """ZoeDepth's SILog (``zoedepth/trainers/loss.py`` ``SILogLoss``): ``10 sqrt(var(g) + beta mean(g)^2)``.

    ``g = ln(pred + eps) - ln(target + eps)`` over the valid pixels of the *whole batch* pooled together (as the
    official loss, which sees one process's batch), ``var`` the unbiased variance. ``beta = 0.15`` leaves 15 %
    of the squared mean log error (the scale) in the loss. Shapes (B, H, W); with fewer than two valid pixels
    the loss is 0 (still attached to the graph).
    """
    g = torch.log(pred[mask] + eps) - torch.log(target[mask] + eps)
    if g.numel() < 2:
        return pred.sum() * 0.0
    # The clamp keeps sqrt's gradient finite for an exact prediction (the official loss would give NaN there).
    return 10.0 * torch.sqrt((torch.var(g) + beta * g.mean() ** 2).clamp(min=1e-12))
