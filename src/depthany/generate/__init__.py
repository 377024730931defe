"""Depth-conditioned image generation: depthany depth -> ControlNet conditioning image -> diffusers pipeline.

    from depthany.generate import DepthGenerator
    gen = DepthGenerator.from_pretrained("depth-anything", depth_model="da2-large", device="cuda", precision="fp16")
    gen.generate("room.jpg", "a cosy wooden cabin, warm light", seed=1).save("out/room")

Needs the ``generate`` extra (``pip install 'depthany[generate]'``: diffusers). Modules: :mod:`.control` (the
conditioning image and its size), :mod:`.known` (known ControlNets and base models), :mod:`.pairs` (does a
ControlNet fit a base model), :mod:`.sources` (names -> files, offline messages), :mod:`.single_file`
(single-file ControlNets in either layout), :mod:`.pipeline` (:class:`DepthGenerator`). See docs/generate.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .control import conditioning_image, control_size
from .errors import ControlNetFormatError, GenerateError, ModelNotFound, PairError
from .known import DEFAULT_BASES, DEFAULT_CONTROLNET, KNOWN_CONTROLNETS, KnownControlNet
from .pairs import check_pair

if TYPE_CHECKING:
    from .pipeline import DepthGenerator, GenerateResult, generate

__all__ = ["DEFAULT_BASES", "DEFAULT_CONTROLNET", "KNOWN_CONTROLNETS", "ControlNetFormatError", "DepthGenerator",
           "GenerateError", "GenerateResult", "KnownControlNet", "ModelNotFound", "PairError", "check_pair",
           "conditioning_image", "control_size", "generate"]

_LAZY = {"DepthGenerator", "GenerateResult", "generate"}


def __getattr__(name: str) -> Any:  # lazy: importing the package does not import torch or diffusers
    if name in _LAZY:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'depthany.generate' has no attribute {name!r}")
