"""Pure ``nn.Module`` networks: DINOv2 encoder, DPT head, temporal modules and the assembled models."""

from torch import nn

from ..zoo import Arch
from .depth_anything import DepthAnything, build_model
from .vda import VideoDepthAnything, video_arch, video_model_from_image


def build_network(arch: Arch) -> nn.Module:
    """The untrained network for ``arch``: :class:`VideoDepthAnything` for video (``temporal``) architectures,
    else :class:`DepthAnything`. Build it under ``torch.device("meta")`` to count parameters or list keys."""
    return VideoDepthAnything(arch) if arch.temporal is not None else DepthAnything(arch)


__all__ = ["DepthAnything", "VideoDepthAnything", "build_model", "build_network", "video_arch",
           "video_model_from_image"]
