"""Depth Anything 3 networks (DA3Mono, DA3Metric, the any-view DA3 models)."""

from .net import DA3Net, DepthAnything3, MonoOutput, MultiViewOutput, build_da3
from .refview import REF_VIEW_STRATEGIES, RefViewStrategy

__all__ = ["DA3Net", "DepthAnything3", "MonoOutput", "MultiViewOutput", "REF_VIEW_STRATEGIES", "RefViewStrategy",
           "build_da3"]
