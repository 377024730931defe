"""Objectives: what the loop minimises. An objective turns (model, batch) into a dict of named scalar losses.

The loop only knows this interface: it calls ``objective(model, batch)`` under autocast, back-propagates
``losses["loss"]`` and logs every entry. New training stages (teacher-student with pseudo-labels, feature
alignment, CutMix) are new objectives registered in :data:`OBJECTIVES`, not copies of the loop. ``model`` is
what the loop trains, possibly wrapped in ``DistributedDataParallel``: call it, don't reach inside, so DDP sees
every parameter that takes part in the loss.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..zoo import ModelSpec, ZoeConfig
from .config import LossCfg, Recipe, RecipeError
from .losses import depth_to_disparity, silog_loss, ssi_gm_losses, zoedepth_silog_loss

Batch = dict[str, Tensor]


class Objective:
    """Base class. Subclasses implement :meth:`__call__` and may hold frozen helper networks (teachers).

    Attributes:
        needs: batch keys the objective reads (checked against the data sources before training starts).
    """

    needs: tuple[str, ...] = ("image",)

    def __call__(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        """Returns ``{"loss": total, **terms}``: scalar tensors; ``loss`` carries the gradient."""
        raise NotImplementedError

    def to(self, device: Any) -> Objective:
        """Move any helper networks to ``device`` (nothing to move by default)."""
        return self


class RelativeObjective(Objective):
    """Relative (affine-invariant) depth: ``ssi * L_ssi + gm * L_gm`` in disparity space (V2: 1 : 2).

    Reads ``image`` (B, 3, H, W), ``depth`` (B, H, W) metres and ``valid`` (B, H, W); the target is 1 / depth.
    """

    needs = ("image", "depth", "valid")

    def __init__(self, cfg: LossCfg) -> None:
        self.w_ssi, self.w_gm, self.scales = cfg.ssi, cfg.gm, cfg.gm_scales

    def __call__(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        pred = model(batch["image"]).float()  # losses in fp32 even under bf16 autocast
        target = depth_to_disparity(batch["depth"], batch["valid"])
        ssi, gm = ssi_gm_losses(pred, target, batch["valid"], self.scales)
        return {"loss": self.w_ssi * ssi + self.w_gm * gm, "ssi": ssi.detach(), "gm": gm.detach()}


class MetricObjective(Objective):
    """Metric depth: ``silog * SILog(pred, depth)`` in metres on pixels with ``min_depth <= depth <= max_depth``."""

    needs = ("image", "depth", "valid")

    def __init__(self, cfg: LossCfg, max_depth: float) -> None:
        self.weight, self.lam, self.min_depth, self.max_depth = cfg.silog, cfg.silog_lambda, cfg.min_depth, max_depth

    def __call__(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        pred = model(batch["image"]).float()
        depth = batch["depth"]
        mask = batch["valid"] & (depth >= self.min_depth) & (depth <= self.max_depth)
        silog = silog_loss(pred, depth, mask, self.lam)
        return {"loss": self.weight * silog, "silog": silog.detach()}


class ZoeDepthObjective(Objective):
    """The ZoeDepth trainer's loss (``zoedepth/trainers/zoedepth_trainer.py``): ``silog`` x
    :func:`~depthany.train.losses.zoedepth_silog_loss` on ``valid & min_depth < depth < max_depth`` (strict, as
    the official mask).

    The batch's (B, 3, H, W) crops are resized to the head's network size as the official core does (bilinear,
    ``align_corners=True``: ``zoe.img_size``, or the "minimal" resize with ``keep_aspect``), and the (B, h, w)
    prediction back to the crop size the same way before the loss. (The official core resizes the [0, 1]
    image before normalising; the two orders differ only by float rounding.)
    """

    needs = ("image", "depth", "valid")

    def __init__(self, cfg: LossCfg, zoe: ZoeConfig, max_depth: float) -> None:
        self.weight, self.beta, self.min_depth, self.max_depth = cfg.silog, cfg.silog_beta, cfg.min_depth, max_depth
        self.zoe = zoe

    def __call__(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        from ..zoe_pipeline import network_size

        x, depth = batch["image"], batch["depth"]
        size = network_size(x.shape[-2], x.shape[-1], self.zoe)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size, mode="bilinear", align_corners=True)
        pred = model(x).float()
        if pred.shape[-2:] != depth.shape[-2:]:
            pred = F.interpolate(pred[:, None], depth.shape[-2:], mode="bilinear", align_corners=True)[:, 0]
        mask = batch["valid"] & (depth > self.min_depth) & (depth < self.max_depth)
        silog = zoedepth_silog_loss(pred, depth, mask, self.beta)
        return {"loss": self.weight * silog, "silog": silog.detach()}


def _relative(recipe: Recipe, head: str, max_depth: float | None) -> Objective:
    if head != "relative":
        raise RecipeError("loss.objective: 'relative' needs a relative head (model.head: relative)")
    return RelativeObjective(recipe.loss)


def _metric(recipe: Recipe, head: str, max_depth: float | None) -> Objective:
    if head != "metric" or max_depth is None:
        raise RecipeError("loss.objective: 'metric' needs a metric head (model.head: metric, model.max_depth)")
    return MetricObjective(recipe.loss, max_depth)


def _zoedepth(recipe: Recipe, head: str, max_depth: float | None) -> Objective:
    from .build import recipe_spec

    zoe = recipe_spec(recipe).arch.zoe
    if head != "zoedepth" or zoe is None or max_depth is None:
        raise RecipeError("loss.objective: 'zoedepth' needs a ZoeDepth head (model.head: zoedepth, model.max_depth)")
    return ZoeDepthObjective(recipe.loss, zoe, max_depth)


# name -> "module:factory"; factory(recipe, head, max_depth) -> Objective. Extensions add a line here. ``head`` is
# "relative", "metric" or "zoedepth" (:func:`head_kind`).
OBJECTIVES: dict[str, str] = {
    "relative": "depthany.train.objectives:_relative",
    "metric": "depthany.train.objectives:_metric",
    "zoedepth": "depthany.train.objectives:_zoedepth",  # the ZoeDepth head (docs/zoedepth.md)
    "student": "depthany.train.student:_student",  # teacher-student stage (docs/teacher_student.md)
    "semseg": "depthany.train.seg:_semseg",  # semantic segmentation, task: semseg (docs/segmentation.md)
    "video": "depthany.train.video_task:_video",  # Video Depth Anything, task: video (docs/video_depth_anything.md)
}


def head_kind(spec: ModelSpec) -> str:
    """``"zoedepth"`` for a ZoeDepth head, else the arch's ``"relative"`` / ``"metric"``: the ``head`` that
    :func:`build_objective` and the objective factories take."""
    return "zoedepth" if spec.arch.zoe is not None else spec.arch.head


def build_objective(recipe: Recipe, head: str, max_depth: float | None) -> Objective:
    """The recipe's objective; ``auto`` follows the task and head (``semseg`` for ``task: semseg``, else
    relative -> ``relative``, metric -> ``metric``, zoedepth -> ``zoedepth``).

    Raises:
        RecipeError: unknown objective, or one that does not fit the head.
    """
    name = recipe.loss.objective
    if name == "auto":
        name = recipe.task if recipe.task in ("semseg", "video") else head if head in ("metric", "zoedepth") \
            else "relative"
    if name not in OBJECTIVES:
        raise RecipeError(f"loss.objective: unknown objective {name!r}; known: auto, {', '.join(OBJECTIVES)}")
    if recipe.loss.options and name in ("relative", "metric", "zoedepth"):
        raise RecipeError(f"loss.options: the {name} objective takes no options, got {sorted(recipe.loss.options)}")
    mod, attr = OBJECTIVES[name].split(":")
    return getattr(importlib.import_module(mod), attr)(recipe, head, max_depth)
