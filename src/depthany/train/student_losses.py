"""Per-image relative losses for the student: region-restricted, optionally trimmed, CutMix area-weighted.

Shapes: ``pred``, ``target``, ``mask`` (B, H, W); ``mask`` bool. Targets are disparity (labels 1 / depth, or the
teacher's affine-invariant output). Each function returns one value per image, so the objective can weight
labeled and pseudo-labeled images separately.

* **Region losses.** Prediction and target are median/MAD-normalised on the region's own pixels
  (:func:`depthany.train.losses.normalize_affine`) before the affine-invariant and gradient-matching terms.
  For CutMix this matters: the teacher's labels of two images have unrelated scales and shifts, so each
  region of a mixed image is aligned to its own label separately.
* **Trimming (V2).** ``trim`` drops each image's largest per-pixel losses |pred_hat - target_hat| (exactly
  floor(trim * M) of its M valid pixels) from both terms, as potentially wrong pseudo-labels. The ranking
  happens after normalisation on all valid pixels; the gradient term keeps neighbour pairs whose two pixels
  are both kept. Whether V2 trims pixels or larger regions is not published.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .losses import gradient_matching_per_image, normalize_affine


def drop_largest(residual: Tensor, mask: Tensor, fraction: float) -> Tensor:
    """``mask`` without the ``floor(fraction * M)`` largest ``residual`` values of each image (M = its valid
    pixels). Ties are broken by position (the earlier pixel is dropped first). (B, H, W) -> (B, H, W) bool."""
    if fraction <= 0.0:
        return mask
    b = residual.shape[0]
    flat = torch.where(mask, residual.detach(), torch.full_like(residual, float("-inf"))).flatten(1)
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand(b, -1).contiguous())
    n_drop = torch.floor(mask.flatten(1).sum(1).to(torch.float64) * fraction).long()
    keep = mask.flatten(1) & (ranks >= n_drop[:, None])
    return keep.view_as(mask)


def region_losses(pred: Tensor, target: Tensor, mask: Tensor, scales: int = 4,
                  trim: float = 0.0) -> tuple[Tensor, Tensor]:
    """Affine-invariant (V1) and gradient-matching (MiDaS) losses of each image on its ``mask`` pixels.

    Returns:
        (ssi, gm), each (B,): mean |pred_hat - target_hat| over the kept pixels, and the multi-scale gradient
        term of the normalised residual over kept neighbour pairs; 0 for an image with no valid pixel.
    """
    pn, tn = normalize_affine(pred, mask), normalize_affine(target, mask)
    residual = (pn - tn).abs()
    kept = drop_largest(residual, mask, trim)
    kf = kept.to(pred.dtype)
    count = kf.flatten(1).sum(1)
    ssi = (residual * kf).flatten(1).sum(1) / count.clamp(min=1)
    gm = gradient_matching_per_image(pn, tn, kept, scales) if scales > 0 else torch.zeros_like(ssi)
    return ssi, gm


def pseudo_losses(pred: Tensor, target: Tensor, target_mix: Tensor, box: Tensor, valid: Tensor,
                  scales: int = 4, trim: float = 0.0) -> tuple[Tensor, Tensor]:
    """Losses of (possibly CutMix-ed) pseudo-labeled images, (B,) each.

    Args:
        pred: (B, H, W) student output on the mixed image.
        target: (B, H, W) teacher disparity of the base image (used outside ``box``).
        target_mix: (B, H, W) teacher disparity of the pasted image (used inside ``box``).
        box: (B, H, W) bool, the pasted region (all False for an image without CutMix).
        valid: (B, H, W) bool label validity.
        scales, trim: as in :func:`region_losses`.

    Returns:
        (ssi, gm): ``a_out * L(outside vs target) + a_in * L(inside vs target_mix)`` with the area fractions
        ``a_in = sum(box) / HW`` and ``a_out = 1 - a_in``. Without a box this is :func:`region_losses`.
    """
    b = pred.shape[0]
    a_in = box.flatten(1).to(pred.dtype).mean(1)
    both_pred = torch.cat([pred, pred])
    both_target = torch.cat([target, target_mix])
    both_mask = torch.cat([valid & ~box, valid & box])
    ssi, gm = region_losses(both_pred, both_target, both_mask, scales, trim)
    weights = torch.cat([1.0 - a_in, a_in])
    ssi, gm = ssi * weights, gm * weights
    return ssi[:b] + ssi[b:], gm[:b] + gm[b:]
