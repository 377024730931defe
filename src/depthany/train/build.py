"""From a recipe's ``model`` section to a model spec and an initialised network."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from .. import zoo
from ..models import DepthAnything, ImageNetwork, ZoeDepth
from ..weights import Checkpoint, WeightsError, fetch, load_into, read_checkpoint
from ..weights.zoedepth import ZOE_CORE, is_zoe_state
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
                            arch.family, arch.zoe)
        except ValueError as e:
            raise RecipeError(f"model.custom: {e}") from None
    head = m.head or ("zoedepth" if arch.zoe is not None else arch.head)
    max_depth = m.max_depth if m.max_depth is not None else arch.max_depth
    if head == "relative":
        max_depth = None
    elif max_depth is None:
        raise RecipeError("model.max_depth: a metric head needs max_depth (metres), e.g. 20 indoors, 80 outdoors")
    pre = base.preprocess
    if head == "zoedepth":
        # The core keeps the base model's taps (the official V1 core: its last four blocks, = da1-* taps), so a
        # relative model's decoder loads into it unchanged.
        zoe = m.zoe or arch.zoe or zoo.ZoeConfig()
        arch = dataclasses.replace(arch, head="metric", max_depth=max_depth, family="v1", zoe=zoe)
        pre = dataclasses.replace(pre, input_size=zoe.img_size[0], pipeline=zoo.ZOE_PRE.pipeline)
    else:
        arch = dataclasses.replace(arch, head=head, max_depth=max_depth, zoe=None)
        if pre.pipeline == zoo.ZOE_PRE.pipeline:  # a ZoeDepth zoo entry's core trained with another head
            pre = zoo.V1_PRE
    if m.input_size is not None:
        pre = dataclasses.replace(pre, input_size=m.input_size)
    crop = recipe.data.crop_hw
    if crop is not None and head != "zoedepth" and any(c % zoo.PATCH_SIZE for c in crop):
        raise RecipeError(f"data.crop_hw: a {head} head needs multiples of {zoo.PATCH_SIZE}, got {list(crop)} (only "
                          "a ZoeDepth head resizes its input itself)")
    described = f"trained with depthany from {base.name} ({head} head)"
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


def build_model(recipe: Recipe, spec: zoo.ModelSpec, device: torch.device | str = "cpu") -> ImageNetwork:
    """A freshly initialised network for the recipe, in train mode, on ``device``.

    Random initialisation uses the global torch generator (seed it first); then ``model.init`` loads all
    weights strictly, or ``model.encoder_init`` loads the ``pretrained.*`` encoder only. For a ZoeDepth head
    (:class:`~depthany.models.ZoeDepth`) ``model.init`` may also be a relative model: it fills the core
    (:func:`_load_zoe_init`).

    Raises:
        RecipeError: an init file that is missing or does not fit, naming the recipe key and the file.
    """
    if recipe.task == "semseg":  # segmentation models are built by depthany.train.seg.build_seg_training_model
        raise RecipeError("task: semseg recipes train a segmentation model (depthany.train.seg); this builds depth "
                          "models only")
    if spec.arch.zoe is not None:
        zoe = ZoeDepth(spec.arch)
        _start_output_active(zoe.relative)
        _load_zoe_init(zoe, recipe)
        return zoe.to(device).train()
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


def _load_zoe_init(model: ZoeDepth, recipe: Recipe) -> None:
    """``model.init`` / ``model.encoder_init`` for a ZoeDepth head.

    ``model.init``: a ZoeDepth checkpoint loads strictly into the whole network; a relative Depth Anything
    checkpoint loads strictly into the core (``core.core``: encoder and DPT decoder) and the head keeps its
    random initialisation (the official ``DepthAnythingCore.build`` + ``train_mono.py``). ``model.encoder_init``:
    the encoder only.

    Raises:
        RecipeError: naming the key and the file (a metric-head file as the core, keys that do not fit).
    """
    m = recipe.model
    for key, ref, encoder_only in (("model.init", m.init, False), ("model.encoder_init", m.encoder_init, True)):
        if not ref:
            continue
        ckpt = _read(ref, key)
        target: nn.Module = model
        if is_zoe_state(ckpt.state_dict) and encoder_only:  # the encoder of a ZoeDepth file: its core's
            core = {k.removeprefix(ZOE_CORE): v for k, v in ckpt.state_dict.items() if k.startswith(ZOE_CORE)}
            ckpt = dataclasses.replace(ckpt, state_dict=core, layout="official", arch=None, spec=None)
        if not is_zoe_state(ckpt.state_dict):
            if not encoder_only and ckpt.arch is not None and ckpt.arch.head != "relative":
                raise RecipeError(f"{key}: {ckpt.path} is a {ckpt.arch.head}-head model; a ZoeDepth core starts "
                                  "from a relative model (or give a ZoeDepth checkpoint)")
            target = model.relative
        try:
            load_into(target, ckpt, encoder_only=encoder_only or ckpt.layout == "dinov2")
        except WeightsError as e:
            raise RecipeError(f"{key}: {e}") from None
