"""The pieces of ``task: semseg`` training that the training loop plugs in.

* :func:`recipe_seg_spec` / :func:`build_seg_training_model`: the network a recipe trains, its encoder
  initialised from ``model.encoder_init`` (any Depth Anything or DINOv2 checkpoint) or ``model.init`` (a
  depthany segmentation file);
* :func:`build_seg_optimizer`: AdamW with the V1 configs' ``paramwise_cfg`` (module docstring of
  :func:`seg_param_groups`);
* :class:`SegObjective`: the loop's objective interface (``objective(model, batch) -> {"loss": ...}``),
  registered as ``semseg`` in :data:`depthany.train.objectives.OBJECTIVES`;
* :func:`seg_train_step`: one optimiser step (schedule, forward, backward, clipping, update) for a single
  process, the unit the loop repeats; :func:`validate_seg`: mIoU on a validation split.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.classes import ClassTable
from ..data.rgbd import RGBDFolder
from ..seg.datasets import SegDataset
from ..seg.datasets.ade20k import ADE20K_CLASSES
from ..seg.datasets.cityscapes import CITYSCAPES_CLASSES
from ..seg.infer import segment
from ..seg.losses import linear_seg_loss, mask2former_loss
from ..seg.model import SegmentationModel
from ..seg.score import SegReport, score
from ..seg.spec import InferenceCfg, LinearHeadCfg, Mask2FormerCfg, SegSpec, make_seg_spec
from ..seg.weights import init_encoder, load_seg_model, read_encoder_checkpoint
from ..weights import WeightsError
from .build import recipe_spec
from .config import OptimCfg, Recipe, RecipeError
from .objectives import Objective
from .optim import lr_factor, set_lr

NAMED_TABLES = {"cityscapes": CITYSCAPES_CLASSES, "ade20k": ADE20K_CLASSES}


# --------------------------------------------------------------------------------------------------- spec


def _table_at(ref: str, key: str) -> ClassTable:
    if ref in NAMED_TABLES:
        return NAMED_TABLES[ref]
    p = Path(ref)
    try:
        if p.is_dir():
            folder = RGBDFolder(p)
            if folder.classes is None:
                raise ValueError(f"{p}: the folder has no class table (dataset.json 'semantic')")
            return folder.classes
        if p.is_file():
            import json

            return ClassTable.from_dict(json.loads(p.read_text()), str(p))
    except (ValueError, OSError) as e:
        raise RecipeError(f"{key}: {e}") from None
    raise RecipeError(f"{key}: {ref!r} is neither cityscapes, ade20k, a class-table JSON nor an RGB-D folder")


def resolve_classes(recipe: Recipe) -> ClassTable:
    """The class table a segmentation recipe trains: ``seg.classes``, or with ``auto`` the first data
    source's; every source must use the same table.

    Raises:
        RecipeError: no source to take the table from, an unreadable table, or sources that disagree.
    """
    sources = recipe.data.sources
    if recipe.seg.classes != "auto":
        table = _table_at(recipe.seg.classes, "seg.classes")
    elif not sources:
        raise RecipeError("seg.classes: 'auto' takes the class table from data.sources, but there are none")
    else:
        first = sources[0]
        table = _table_at(first.kind if first.kind in NAMED_TABLES else first.path, "data.sources.0.path")
    for i, s in enumerate(sources):
        other = _table_at(s.kind if s.kind in NAMED_TABLES else s.path, f"data.sources.{i}.path")
        if other.names != table.names:
            raise RecipeError(f"data.sources.{i}: its classes ({other.name}, {len(other)}) differ from the "
                              f"recipe's ({table.name}, {len(table)})")
    return table


def recipe_seg_spec(recipe: Recipe, classes: ClassTable | None = None) -> SegSpec:
    """The :class:`SegSpec` a ``task: semseg`` recipe trains (encoder and taps from ``model``, head from ``seg``).

    Raises:
        RecipeError: not a segmentation recipe, or an inconsistent model / seg section.
    """
    if recipe.task != "semseg":
        raise RecipeError("task: this recipe trains depth, not segmentation")
    arch = recipe_spec(recipe).arch
    sg = recipe.seg
    taps: str | tuple[int, ...] = arch.layers if sg.taps == "auto" else sg.taps
    try:
        return make_seg_spec(arch.encoder, classes or resolve_classes(recipe), sg.head, taps, recipe.name,
                             inference=sg.test, linear=LinearHeadCfg(sg.linear_levels), mask2former=sg.mask2former,
                             licence=recipe.licence,
                             description=f"segmentation trained with depthany from {recipe.model.name}")
    except ValueError as e:
        raise RecipeError(f"seg: {e}") from None


def build_seg_training_model(recipe: Recipe, spec: SegSpec, device: torch.device | str = "cpu") -> SegmentationModel:
    """A freshly initialised network in train mode (seed the global torch generator first).

    ``model.encoder_init`` loads the ``pretrained.*`` encoder of any Depth Anything / DINOv2 checkpoint (or zoo
    name); ``model.init`` loads a whole depthany segmentation file with the same spec.

    Raises:
        RecipeError: an init file that is missing or does not fit, naming the recipe key and the file.
    """
    model = SegmentationModel(spec)
    m = recipe.model
    try:
        if m.encoder_init:
            init_encoder(model, read_encoder_checkpoint(m.encoder_init))
        if m.init:
            other = load_seg_model(m.init)
            if dataclasses.replace(other.spec, name=spec.name, description=spec.description,
                                   licence=spec.licence, inference=spec.inference) != spec:
                raise WeightsError(f"{m.init}: a segmentation model of another architecture or class table")
            model.load_state_dict(other.state_dict())
    except WeightsError as e:
        raise RecipeError(f"model.{'init' if m.init else 'encoder_init'}: {e}") from None
    return model.to(device).train()


# ---------------------------------------------------------------------------------------------- optimiser


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm,
                               nn.GroupNorm, nn.LayerNorm))


def seg_param_groups(model: SegmentationModel, cfg: OptimCfg) -> list[dict[str, Any]]:
    """Parameter groups with the V1 configs' rules, in mmengine ``DefaultOptimWrapperConstructor`` semantics.

    V1 (``optim_wrapper.paramwise_cfg``): ``custom_keys`` matched as substrings of the parameter name, longest
    key first: the backbone (``pretrained`` here, ``backbone.dinov2`` there) at ``lr_mult`` 0.1, its final
    norm and every block's norms also without weight decay, ``query_embed`` / ``query_feat`` / ``level_embed``
    at full rate without decay; every other parameter of a normalisation layer without decay
    (``norm_decay_mult=0``). V1 also lists ``pos_embed`` (no decay), but the longer backbone key matches the
    backbone's ``pos_embed`` first, so it is decayed; the pixel decoder's ``level_encoding`` matches no key. Here the backbone rate is ``cfg.lr`` and the head's ``cfg.lr * decoder_lr_mult``
    (V1: 3e-6 and 3e-5). Groups: backbone, head (both decayed) first, then the undecayed ones.
    """
    depth = model.spec.encoder.depth
    custom = {"pretrained": ("backbone", 1.0), "pretrained.norm": ("backbone", 0.0), "pos_embed": ("backbone", 0.0),
              "query_embed": ("head", 0.0), "query_feat": ("head", 0.0), "level_embed": ("head", 0.0),
              **{f"pretrained.blocks.{i}.norm": ("backbone", 0.0) for i in range(depth)}}
    keys = sorted(sorted(custom), key=len, reverse=True)
    buckets: dict[tuple[str, float], list[nn.Parameter]] = {}
    for mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            rule = next((custom[k] for k in keys if k in full), None)
            if rule is None:
                rule = ("head", 0.0 if _is_norm(module) else 1.0)
            buckets.setdefault(rule, []).append(p)
    groups = []
    for kind, decay in (("backbone", 1.0), ("head", 1.0), ("backbone", 0.0), ("head", 0.0)):
        params = buckets.get((kind, decay), [])
        if not params and decay == 0.0:
            continue
        lr = cfg.lr if kind == "backbone" else cfg.lr * cfg.decoder_lr_mult
        groups.append({"params": params, "name": f"{kind}{'' if decay else '_no_decay'}", "base_lr": lr, "lr": lr,
                       "weight_decay": cfg.weight_decay * decay})
    return groups


def build_seg_optimizer(model: SegmentationModel, cfg: OptimCfg) -> torch.optim.AdamW:
    """AdamW over :func:`seg_param_groups` (each group keeps its peak rate in ``base_lr`` for ``set_lr``)."""
    return torch.optim.AdamW(seg_param_groups(model, cfg), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                             weight_decay=cfg.weight_decay)


# ---------------------------------------------------------------------------------------------- objective


class SegObjective(Objective):
    """Segmentation loss on ``image`` (B, 3, S, S) and ``labels`` (B, S, S) int64 (255 = ignore): cross-entropy
    for the linear head, the Mask2Former losses over all decoder stages (:mod:`depthany.seg.losses`)."""

    needs = ("image", "labels")

    def __init__(self, mask2former: Mask2FormerCfg | None = None, ignore_index: int = 255,
                 avg_non_ignore: bool = False) -> None:
        self.m2f = mask2former or Mask2FormerCfg()
        self.ignore_index, self.avg_non_ignore = ignore_index, avg_non_ignore

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        out = model(batch["image"])
        labels = batch["labels"]
        if "logits" in out:
            ce = linear_seg_loss(out["logits"], labels, self.ignore_index, self.avg_non_ignore)
            return {"loss": ce, "ce": ce.detach()}
        return mask2former_loss(out["class_logits"].float(), out["mask_logits"].float(), labels, self.m2f,
                                self.ignore_index)


def _semseg(recipe: Recipe, head: str, max_depth: float | None) -> Objective:
    if recipe.task != "semseg":
        raise RecipeError("loss.objective: 'semseg' needs task: semseg")
    return SegObjective(recipe.seg.mask2former, 255, recipe.seg.avg_non_ignore)


def seg_train_step(model: nn.Module, objective: Objective, optimizer: torch.optim.Optimizer,
                   batch: dict[str, Tensor], step: int, total: int, optim: OptimCfg,
                   grad_clip: float) -> dict[str, float]:
    """One optimiser step on one batch: learning rate for ``step`` of ``total``, loss, backward, gradient
    clipping (``grad_clip`` max norm, 0 = measure only; V1: 0.01), AdamW update.

    Returns:
        the loss terms, ``grad_norm`` and ``lr`` (the backbone group's).

    Raises:
        FloatingPointError: non-finite loss or gradient norm (the parameters are left unchanged).
    """
    set_lr(optimizer, lr_factor(step, total, optim))
    losses = objective(model, batch)
    losses["loss"].backward()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf")).item()
    values = {k: float(v.detach()) for k, v in losses.items()}
    if not (math.isfinite(grad_norm) and math.isfinite(values["loss"])):
        optimizer.zero_grad(set_to_none=True)
        raise FloatingPointError(f"step {step + 1}: non-finite loss {values['loss']} or gradient norm {grad_norm}")
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {**values, "grad_norm": grad_norm, "lr": optimizer.param_groups[0]["lr"]}


@torch.no_grad()
def validate_seg(model: SegmentationModel, dataset: SegDataset, cfg: InferenceCfg | None = None,
                 limit: int | None = None) -> SegReport:
    """Segment the first ``limit`` samples of ``dataset`` with ``cfg`` (default: the model's) and score them."""
    was_training = model.training
    model.eval()
    try:
        return score(dataset, lambda s: segment(model, s.rgb(), cfg), limit,
                     {"source": "model", "spec": model.spec.name})
    finally:
        model.train(was_training)
