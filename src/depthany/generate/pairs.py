"""The pair check: does a ControlNet fit a base model? Decided from the two configs, before any weights load.

A ControlNet's outputs are added to the base UNet's down-block and mid-block activations, and it reads the
base model's text embeddings (and, for SDXL, its size/crop embedding). So it fits when these agree with the
base UNet's config:

* ``in_channels`` (latent channels), ``block_out_channels`` and ``layers_per_block``: the number, channels and
  resolutions of the residuals;
* ``cross_attention_dim``: the width of the text embeddings it attends to;
* ``addition_embed_type`` and ``projection_class_embeddings_input_dim``: SDXL's extra conditioning.

The number of transformer layers per block may differ (the distilled SDXL "small"/"mid" ControlNets have
fewer than the base), and so may the attention heads. A ControlNet must also take a 3-channel image.
"""

from __future__ import annotations

from typing import Any

from .errors import PairError
from .known import family_name

MATCH_KEYS = ("in_channels", "block_out_channels", "layers_per_block", "cross_attention_dim",
              "addition_embed_type", "projection_class_embeddings_input_dim")
_DEFAULTS: dict[str, Any] = {"in_channels": 4, "layers_per_block": 2, "addition_embed_type": None,
                             "projection_class_embeddings_input_dim": None, "conditioning_channels": 3}


def _value(config: dict[str, Any], key: str) -> Any:
    v = config.get(key, _DEFAULTS.get(key))
    return list(v) if isinstance(v, (list, tuple)) else v


def describe(config: dict[str, Any]) -> str:
    """``"Stable Diffusion 1.x: cross-attention 768, blocks 320/640/1280/1280"``."""
    blocks = "/".join(str(c) for c in _value(config, "block_out_channels") or [])
    return f"{family_name(config)}: cross-attention {config.get('cross_attention_dim')}, blocks {blocks}"


def mismatches(controlnet: dict[str, Any], unet: dict[str, Any]) -> list[str]:
    """The config keys on which a ControlNet and a base UNet disagree, as ``"key: a vs b"`` lines."""
    out = []
    for key in MATCH_KEYS:
        a, b = _value(controlnet, key), _value(unet, key)
        if a != b:
            out.append(f"{key}: {a} vs {b}")
    return out


def check_pair(controlnet: dict[str, Any], controlnet_label: str, unet: dict[str, Any], base_label: str) -> None:
    """Refuse a ControlNet that does not fit a base model.

    Args:
        controlnet: the ControlNet's diffusers config (``ControlNetModel`` keys).
        controlnet_label: how the user named it (shown in the message).
        unet: the base model's UNet config (``unet/config.json``).
        base_label: how the user named the base model.

    Raises:
        PairError: naming both models, their families and every key that differs.
    """
    channels = _value(controlnet, "conditioning_channels")
    if channels != 3:
        raise PairError(f"ControlNet {controlnet_label!r} takes a {channels}-channel conditioning image; depth "
                        "conditioning images have 3 channels (near = bright), so it is not a depth ControlNet")
    diff = mismatches(controlnet, unet)
    if diff:
        raise PairError(
            f"ControlNet {controlnet_label!r} ({describe(controlnet)}) does not fit base model {base_label!r} "
            f"({describe(unet)}); they differ in " + "; ".join(diff) +
            ". Use a ControlNet trained for this base model, or the base model it was trained with "
            "(docs/generate.md lists known pairs)")
