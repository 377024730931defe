"""From a recipe's ``model`` section to a model spec and an initialised network."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .. import zoo
from ..models import DepthAnything
from ..weights import Checkpoint, WeightsError, fetch, load_into, read_checkpoint
from .config import Recipe, RecipeError


def recipe_spec(recipe: Recipe) -> zoo.ModelSpec:
    """The spec of the model a recipe trains: the zoo entry ``model.name`` with the head, sizes and inference
    size the recipe asks for, named after the run. This is what checkpoints and exported weights carry.

    Raises:
        RecipeError: unknown zoo name, or a head / size combination the architecture rejects.
    """
    m = recipe.model
    try:
        base = zoo.get_spec(m.name)
    except ValueError as e:
        raise RecipeError(f"model.name: {e}") from None
    arch = base.arch
    if m.custom is not None:
        c = m.custom
        if len(c.out_channels) != 4:
            raise RecipeError(f"model.custom.out_channels: needs 4 widths, got {list(c.out_channels)}")
        enc = zoo.EncoderSpec("custom", c.embed_dim, c.depth, c.num_heads)
        try:
            arch = zoo.Arch(enc, c.layers, c.features, c.out_channels, arch.head, arch.max_depth,  # type: ignore[arg-type]
                            arch.family)
        except ValueError as e:
            raise RecipeError(f"model.custom: {e}") from None
    head = m.head or arch.head
    max_depth = m.max_depth if m.max_depth is not None else arch.max_depth
    if head == "relative":
        max_depth = None
    elif max_depth is None:
        raise RecipeError("model.max_depth: a metric head needs max_depth (metres), e.g. 20 indoors, 80 outdoors")
    arch = dataclasses.replace(arch, head=head, max_depth=max_depth)
    pre = base.preprocess
    if m.input_size is not None:
        pre = dataclasses.replace(pre, input_size=m.input_size)
    described = f"trained with depthany from {base.name} ({arch.head} head)"
    if m.encoder_init:
        described += f", encoder initialised from {Path(m.encoder_init).name}"
    return zoo.ModelSpec(recipe.name, arch, pre, (), recipe.licence, description=described)


def _read(ref: str, key: str) -> Checkpoint:
    """A checkpoint from a path, or the weights of a zoo model name (downloaded through the HF cache)."""
    try:
        if Path(ref).expanduser().exists():
            return read_checkpoint(ref)
        try:
            spec = zoo.get_spec(ref)
        except ValueError:
            raise RecipeError(f"{key}: {ref!r} is neither an existing file nor a zoo model name") from None
        return read_checkpoint(fetch(spec))
    except WeightsError as e:
        raise RecipeError(f"{key}: {e}") from None


def _start_output_active(model: DepthAnything) -> None:
    """Start the last bias of a relative head at +1.

    A relative head ends in a ReLU. With PyTorch's default init and small encoder features (a random or
    freshly initialised encoder) its input is often negative everywhere: the output is 0, the gradient is 0
    and training never starts. A positive bias keeps the ReLU active at the start; ``model.init`` overwrites it.
    """
    with torch.no_grad():
        model.get_parameter("depth_head.scratch.output_conv2.2.bias").fill_(1.0)


def build_model(recipe: Recipe, spec: zoo.ModelSpec, device: torch.device | str = "cpu") -> DepthAnything:
    """A freshly initialised network for the recipe, in train mode, on ``device``.

    Random initialisation uses the global torch generator (seed it first); then ``model.init`` loads all
    weights strictly, or ``model.encoder_init`` loads the ``pretrained.*`` encoder only.

    Raises:
        RecipeError: an init file that is missing or does not fit, naming the recipe key and the file.
    """
    if recipe.task == "semseg":  # segmentation models are built by depthany.train.seg.build_seg_training_model
        raise RecipeError("task: semseg recipes train a segmentation model (depthany.train.seg); this builds depth "
                          "models only")
    model = DepthAnything(spec.arch)
    if spec.arch.head == "relative":
        _start_output_active(model)
    m = recipe.model
    for key, ref, encoder_only in (("model.init", m.init, False), ("model.encoder_init", m.encoder_init, True)):
        if not ref:
            continue
        ckpt = _read(ref, key)
        if not encoder_only and ckpt.arch is not None and ckpt.arch.head != spec.arch.head:
            # Same keys, different meaning: a relative head outputs disparity through a ReLU, a metric head
            # sigmoid x max_depth. The V2 metric recipe keeps the relative encoder and starts the head afresh.
            raise RecipeError(f"{key}: {ckpt.path} is a {ckpt.arch.head}-head model but the recipe trains a "
                              f"{spec.arch.head} head; load its encoder only with model.encoder_init (as the "
                              "Depth Anything V2 metric recipe does)")
        try:
            load_into(model, ckpt, encoder_only=encoder_only or ckpt.layout == "dinov2")
        except WeightsError as e:
            raise RecipeError(f"{key}: {e}") from None
    return model.to(device).train()
