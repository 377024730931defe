"""Segmentation losses: per-pixel cross-entropy for the linear head, Mask2Former's matched mask losses.

Linear head (mmseg ``BaseDecodeHead.loss_by_feat`` + ``CrossEntropyLoss``): logits resized to the label size
(bilinear, ``align_corners=False``), cross-entropy with ``ignore_index`` 255; mmseg's default
``avg_non_ignore=False`` divides by *all* pixels (ignored ones contribute 0), kept here as the default.

Mask2Former (mmdet ``Mask2FormerHead._loss_by_feat_single``, per decoder stage, summed over stages):

* targets: mmseg ``Mask2FormerHead._seg_data_to_instance_data`` turns a label map into one binary mask per
  class present (ignore excluded; ignored pixels are 0 in every mask);
* matching, per image: ``torch.rand(1, num_points, 2)`` points shared by predictions and targets, cost =
  ``class_weight * (-softmax prob of the target class) + mask_weight * pairwise BCE / num_points +
  dice_weight * (1 - (2 p.t + 1) / (sum p + sum t + 1))`` (``ClassificationCost``, ``CrossEntropyLossCost``,
  ``DiceCost`` with eps 1), then ``scipy.optimize.linear_sum_assignment``;
* class loss: cross-entropy over all queries, unmatched ones target "no object", class weights
  ``[1] * C + [no_object_weight]``, averaged by the summed weights of the targets;
* mask losses on matched queries, at ``num_points`` points per mask drawn by importance sampling
  (``oversample_ratio`` x as many uniform candidates, the ``importance_sample_ratio`` share with the least
  certain logits kept, the rest uniform): sigmoid BCE averaged over masks x points, and the "naive" dice loss
  (eps 1) averaged over masks; the mask count is averaged over processes (``reduce_mean``) and at least 1.

The random calls are made in mmdet's order (per stage: one per image for matching, then two for the mask
points), so with the same generator state the losses equal a transformers ``Mask2FormerLoss`` evaluated on
one stage (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from .spec import Mask2FormerCfg

IGNORE_INDEX = 255


def linear_seg_loss(logits: Tensor, labels: Tensor, ignore_index: int = IGNORE_INDEX,
                    avg_non_ignore: bool = False) -> Tensor:
    """Cross-entropy of (B, C, h, w) logits against (B, H, W) integer labels (mmseg semantics, see module)."""
    logits = F.interpolate(logits.float(), size=labels.shape[-2:], mode="bilinear", align_corners=False)
    loss = F.cross_entropy(logits, labels.long(), ignore_index=ignore_index, reduction="none")
    if avg_non_ignore:
        return loss.sum() / (labels != ignore_index).sum().clamp(min=1)
    return loss.mean()


def semantic_to_instances(labels: Tensor, ignore_index: int = IGNORE_INDEX) -> tuple[Tensor, Tensor]:
    """(H, W) label map -> (classes (K,) int64 sorted, masks (K, H, W) float 0/1), one mask per class present."""
    classes = torch.unique(labels)
    classes = classes[classes != ignore_index].long()
    masks = (labels[None] == classes[:, None, None]).float()
    return classes, masks


def point_sample(x: Tensor, coords: Tensor) -> Tensor:
    """(N, C, H, W) sampled at (N, P, 2) points in [0, 1] (x, y) -> (N, C, P); bilinear, ``align_corners=False``."""
    return F.grid_sample(x, 2.0 * coords[:, :, None, :] - 1.0, mode="bilinear", align_corners=False)[..., 0]


def uncertain_points(mask_logits: Tensor, num_points: int, oversample_ratio: float, importance_ratio: float) -> Tensor:
    """mmdet ``get_uncertain_point_coords_with_randomness`` with uncertainty -|logit|: (N, 1, h, w) -> (N, P, 2)."""
    n = mask_logits.shape[0]
    sampled = int(num_points * oversample_ratio)
    coords = torch.rand(n, sampled, 2, device=mask_logits.device)
    uncertainty = -point_sample(mask_logits, coords).abs()
    k = int(importance_ratio * num_points)
    idx = torch.topk(uncertainty[:, 0, :], k=k, dim=1)[1]
    idx = idx + sampled * torch.arange(n, dtype=torch.long, device=mask_logits.device)[:, None]
    chosen = coords.view(-1, 2)[idx.view(-1), :].view(n, k, 2)
    if num_points - k > 0:
        chosen = torch.cat([chosen, torch.rand(n, num_points - k, 2, device=mask_logits.device)], dim=1)
    return chosen


@torch.no_grad()
def match_cost(class_logits: Tensor, mask_logits: Tensor, gt_classes: Tensor, gt_masks: Tensor,
               cfg: Mask2FormerCfg) -> Tensor:
    """(Q, K) matching cost of Q predictions against K targets (module docstring); draws the shared points."""
    q, k = mask_logits.shape[0], gt_masks.shape[0]
    points = torch.rand(1, cfg.train_points, 2, device=mask_logits.device)
    pred = point_sample(mask_logits[:, None].float(), points.repeat(q, 1, 1))[:, 0]
    tgt = point_sample(gt_masks[:, None].to(pred.dtype), points.repeat(k, 1, 1))[:, 0]
    cost_cls = -class_logits.float().softmax(-1)[:, gt_classes]
    pos = F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred), reduction="none")
    neg = F.binary_cross_entropy_with_logits(pred, torch.zeros_like(pred), reduction="none")
    cost_mask = (pos @ tgt.T + neg @ (1 - tgt).T) / pred.shape[1]
    p = pred.sigmoid()
    cost_dice = 1 - (2 * p @ tgt.T + 1) / (p.sum(-1)[:, None] + tgt.sum(-1)[None, :] + 1)
    return cfg.class_weight * cost_cls + cfg.mask_weight * cost_mask + cfg.dice_weight * cost_dice


def hungarian(cost: Tensor) -> tuple[Tensor, Tensor]:
    """Optimal one-to-one assignment (query indices sorted, target indices), via scipy."""
    from scipy.optimize import linear_sum_assignment

    c = torch.nan_to_num(cost.detach().float().cpu(), nan=1e8, posinf=1e8, neginf=-1e8).numpy()
    rows, cols = linear_sum_assignment(c)
    return torch.as_tensor(np.asarray(rows), dtype=torch.long), torch.as_tensor(np.asarray(cols), dtype=torch.long)


def _reduce_mean(x: Tensor) -> Tensor:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        x = x.clone()
        dist.all_reduce(x.div_(dist.get_world_size()))
    return x


@dataclass(frozen=True)
class StageLoss:
    """The three weighted losses of one decoder stage (scalars)."""

    cls: Tensor
    mask: Tensor
    dice: Tensor


def stage_loss(class_logits: Tensor, mask_logits: Tensor, targets: list[tuple[Tensor, Tensor]],
               cfg: Mask2FormerCfg) -> StageLoss:
    """Weighted losses of one stage.

    Args:
        class_logits: (B, Q, C+1).
        mask_logits: (B, Q, h, w).
        targets: per image (classes (K,), masks (K, H, W)) from :func:`semantic_to_instances`.
    """
    b, q, c1 = class_logits.shape
    num_classes = c1 - 1
    target_cls = torch.full((b, q), num_classes, dtype=torch.long, device=class_logits.device)
    pred_masks, tgt_masks = [], []
    for i, (classes, masks) in enumerate(targets):
        cost = match_cost(class_logits[i], mask_logits[i], classes, masks, cfg)
        rows, cols = hungarian(cost)
        rows, cols = rows.to(class_logits.device), cols.to(class_logits.device)
        target_cls[i, rows] = classes[cols]
        pred_masks.append(mask_logits[i, rows])
        tgt_masks.append(masks[cols])
    weight = class_logits.new_ones(c1, dtype=torch.float32)
    weight[-1] = cfg.no_object_weight
    flat_t = target_cls.flatten()
    ce = F.cross_entropy(class_logits.flatten(0, 1).float(), flat_t, reduction="none")
    loss_cls = (ce * weight[flat_t]).sum() / weight[flat_t].sum()
    num_masks = _reduce_mean(class_logits.new_tensor(float(sum(len(t[0]) for t in targets)))).clamp(min=1)
    preds = torch.cat(pred_masks)
    if preds.shape[0] == 0:  # no target anywhere: mmdet returns the (zero) sums so every parameter gets a grad
        zero = mask_logits.sum() * 0
        return StageLoss(cfg.class_weight * loss_cls, zero, zero)
    tgts = torch.cat(tgt_masks)
    with torch.no_grad():
        points = uncertain_points(preds[:, None].float(), cfg.train_points, cfg.oversample_ratio,
                                  cfg.importance_sample_ratio)
        point_tgts = point_sample(tgts[:, None].float(), points)[:, 0]
    point_preds = point_sample(preds[:, None].float(), points)[:, 0]
    p = point_preds.sigmoid()
    dice = 1 - (2 * (p * point_tgts).sum(-1) + 1) / (p.sum(-1) + point_tgts.sum(-1) + 1)
    loss_dice = dice.sum() / num_masks
    bce = F.binary_cross_entropy_with_logits(point_preds, point_tgts, reduction="none")
    loss_mask = bce.sum() / (num_masks * cfg.train_points)
    return StageLoss(cfg.class_weight * loss_cls, cfg.mask_weight * loss_mask, cfg.dice_weight * loss_dice)


def mask2former_loss(class_logits: Tensor, mask_logits: Tensor, labels: Tensor, cfg: Mask2FormerCfg,
                     ignore_index: int = IGNORE_INDEX) -> dict[str, Tensor]:
    """Total Mask2Former loss over all decoder stages (deep supervision), stages in order.

    Args:
        class_logits: (S, B, Q, C+1); mask_logits: (S, B, Q, h, w); labels: (B, H, W) integer label maps.

    Returns:
        ``{"loss": sum over stages, "loss_cls", "loss_mask", "loss_dice"}``: the last three are the final
        stage's weighted terms, detached (what mmseg logs without the ``d<i>.`` prefix).
    """
    targets = [semantic_to_instances(lab, ignore_index) for lab in labels]
    total = class_logits.new_zeros((), dtype=torch.float32)
    last: StageLoss | None = None
    for s in range(class_logits.shape[0]):
        last = stage_loss(class_logits[s], mask_logits[s], targets, cfg)
        total = total + last.cls + last.mask + last.dice
    assert last is not None
    return {"loss": total, "loss_cls": last.cls.detach(), "loss_mask": last.mask.detach(),
            "loss_dice": last.dice.detach()}
