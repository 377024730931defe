"""Pure ``nn.Module`` networks: DINOv2 encoder, DPT head and the assembled Depth Anything model."""

from .depth_anything import DepthAnything, build_model

__all__ = ["DepthAnything", "build_model"]
