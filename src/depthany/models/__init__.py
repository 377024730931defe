"""Pure ``nn.Module`` networks: DINOv2 encoder, DPT head, the assembled Depth Anything model and the ZoeDepth
metric head of the V1 metric models."""

from __future__ import annotations

import torch
from torch import nn

from ..zoo import Arch
from .depth_anything import DepthAnything, build_model
from .zoedepth import ZoeDepth

Network = DepthAnything | ZoeDepth


def build_network(arch: Arch, device: torch.device | str | None = None) -> Network:
    """The network for ``arch``: a :class:`ZoeDepth` when ``arch.zoe`` is set, else a :class:`DepthAnything`;
    random initialisation, eval mode."""
    model: nn.Module = ZoeDepth(arch) if arch.zoe is not None else DepthAnything(arch)
    if device is not None:
        model = model.to(device)
    return model.eval()  # type: ignore[return-value]


__all__ = ["DepthAnything", "Network", "ZoeDepth", "build_model", "build_network"]
