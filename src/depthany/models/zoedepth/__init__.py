"""The ZoeDepth metric head (V1 metric models): bins, attractors, log-binomial output, the assembled network."""

from .network import ZoeDepth, ZoeOutput, core_arch

__all__ = ["ZoeDepth", "ZoeOutput", "core_arch"]
