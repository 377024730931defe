"""Helpers for the weights tests: random state dicts of any architecture, built without a module."""

from __future__ import annotations

import math

import torch

from depthany import zoo
from depthany.weights import expected_shapes


def random_state(arch: zoo.Arch, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random official-named state dict for ``arch`` whose forward output varies across the image.

    Weights ~ N(0, 1/fan_in), norms and LayerScales near 1 and 0.5, a unit-scale positional embedding and a
    positive output bias, so relative outputs stay above the final ReLU.
    """
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in expected_shapes(arch).items():
        t = torch.randn(shape, generator=g)
        if "norm" in key and key.endswith("weight"):
            t = 1.0 + 0.2 * t
        elif key.endswith("gamma"):
            t = 0.5 + 0.2 * t
        elif key.endswith("bias"):
            t = 0.1 * t
        elif "pos_embed" not in key and "token" not in key:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
            t = t / math.sqrt(fan_in)
        sd[key] = t
    sd["depth_head.scratch.output_conv2.2.bias"].fill_(1.0)
    return sd


def tensors_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Same keys, same dtypes, bitwise-equal values."""
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)
