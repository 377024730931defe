"""What differs between the tasks the training loop runs: the network and its optimiser, what a checkpoint says
the network is, the validation, and the exported weights.

* ``task: depth``: a :class:`~depthany.models.DepthAnything` described by a zoo :class:`~depthany.zoo.ModelSpec`,
  AdamW over encoder / decoder groups, AbsRel / delta1 validation, ``final.safetensors`` for ``depthany predict``;
* ``task: semseg``: a :class:`~depthany.seg.model.SegmentationModel` described by a
  :class:`~depthany.seg.spec.SegSpec`, AdamW with the V1 ``paramwise_cfg`` rules, mIoU validation sharded over
  processes, ``final.safetensors`` for ``depthany segment`` (:func:`depthany.seg.weights.save_seg_weights`);
* ``task: video``: a :class:`~depthany.models.VideoDepthAnything` built from ``model``'s image model
  (:mod:`depthany.train.video_task`), the encoder frozen, the depth task's AdamW groups over what trains, no
  in-loop validation, ``final.safetensors`` with a video spec for ``depthany video --weights``.

Everything else (the data stream, accumulation, DDP, clipping, logging, checkpoints, resume) is the loop's own
and the same for all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..seg.spec import SegSpec
from ..seg.spec import spec_to_json as seg_spec_to_json
from ..weights.load import spec_to_json
from ..zoo import ModelSpec
from .build import build_model, recipe_spec
from .checkpoint import export_weights
from .config import OptimCfg, Recipe
from .objectives import head_kind
from .optim import build_optimizer
from .validate import Validator

Spec = ModelSpec | SegSpec


@dataclass(frozen=True)
class Network:
    """A freshly built network, what it is, and how to build its optimiser (again, on resume)."""

    spec: Spec
    model: nn.Module
    make_optimizer: Callable[[Any, OptimCfg], torch.optim.Optimizer]


def build_network(recipe: Recipe, device: torch.device) -> Network:
    """The network ``recipe`` trains, initialised (seed the global generator first), in train mode.

    Raises:
        RecipeError: bad model / seg section or init weights, naming the key.
    """
    if recipe.task == "semseg":
        from .seg import build_seg_optimizer, build_seg_training_model, recipe_seg_spec

        seg_spec = recipe_seg_spec(recipe)
        return Network(seg_spec, build_seg_training_model(recipe, seg_spec, device), build_seg_optimizer)
    if recipe.task == "video":
        from .video_task import build_video_training_model, video_spec

        return Network(video_spec(recipe), build_video_training_model(recipe, device), build_optimizer)
    spec = recipe_spec(recipe)
    return Network(spec, build_model(recipe, spec, device), build_optimizer)


def describe(spec: Spec) -> str:
    """``vits relative`` / ``vitt linear head``: the encoder and head, for the start line."""
    if isinstance(spec, SegSpec):
        return f"{spec.encoder.name} {spec.head} head, {spec.num_classes} classes"
    return f"{spec.arch.encoder.name} {head_kind(spec)}"


def checkpoint_spec(spec: Spec) -> dict[str, str]:
    """The checkpoint entry describing the network: ``spec`` (a depth model, read by ``depthany predict
    --weights last.pt``) or ``seg_spec`` (a segmentation model; its ``pretrained.*`` tensors still serve as an
    ``encoder_init``)."""
    if isinstance(spec, SegSpec):
        return {"seg_spec": seg_spec_to_json(spec)}
    return {"spec": spec_to_json(spec)}


def build_validator(recipe: Recipe, spec: Spec) -> Any:
    """The validation of ``data.val`` (None without ``data.val.path``): an object with ``run(model, env,
    autocast) -> dict`` (a collective) and ``line(record) -> str``."""
    if not recipe.data.val.path:
        return None
    if isinstance(spec, SegSpec):
        from .seg_validate import SegValidator

        return SegValidator(recipe.data, spec)
    return Validator(recipe.data.val, spec, recipe.data.crop_size)


def export_final(model: nn.Module, spec: Spec, path: Path) -> Path:
    """Write the final weights, atomically and durably: a depthany depth file, or a segmentation file."""
    if isinstance(spec, SegSpec):
        from ..seg.weights import save_seg_weights

        return save_seg_weights(model, path, durable=True)  # type: ignore[arg-type]
    return export_weights(model.state_dict(), spec, path)
