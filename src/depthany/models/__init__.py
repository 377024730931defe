"""Pure ``nn.Module`` networks: DINOv2 encoder, DPT head and the assembled Depth Anything models."""

from __future__ import annotations

from torch import nn

from ..zoo import Arch
from .da3 import DepthAnything3
from .depth_anything import DepthAnything, build_model


def build_network(arch: Arch) -> nn.Module:
    """The network class for ``arch``: :class:`DepthAnything` (V1, V2) or :class:`DepthAnything3` (DA3)."""
    return DepthAnything3(arch) if arch.is_da3 else DepthAnything(arch)


__all__ = ["DepthAnything", "DepthAnything3", "build_model", "build_network"]
