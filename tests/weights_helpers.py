"""Helpers for the weights tests: random state dicts of any architecture, built without a module."""

from __future__ import annotations

import math

import torch

from depthany import zoo
from depthany.weights import expected_shapes

OUTPUT_BIAS = "depth_head.scratch.output_conv2.2.bias"


def random_value(key: str, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """One random parameter by its official name: weights ~ N(0, 1/fan_in) (each layer keeps its activations at
    unit scale), norms and LayerScales near 1 and 0.5, a unit-scale positional embedding and class token,
    biases of standard deviation 0.1, and an output bias of 1 (see :func:`random_state`)."""
    t = torch.randn(shape, generator=g)
    if key == OUTPUT_BIAS:
        return torch.ones(shape)
    if "norm" in key and key.endswith("weight"):
        return 1.0 + 0.2 * t
    if key.endswith("gamma"):
        return 0.5 + 0.2 * t
    if key.endswith("bias"):
        return 0.1 * t
    if "pos_embed" in key or "token" in key:
        return t
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
    return t / math.sqrt(fan_in)


def random_state(arch: zoo.Arch, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random official-named state dict for ``arch`` whose forward output varies across the image.

    With these weights (:func:`random_value`) a relative tiny model's disparity spans about [0, 2] on a
    normalised image, mostly above the final ReLU, and changes with the input; small weights everywhere would
    give a near-constant map on the output bias, against which "1e-5 of the output" checks nothing.
    """
    g = torch.Generator().manual_seed(seed)
    return {key: random_value(key, shape, g) for key, shape in expected_shapes(arch).items()}


def tensors_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Same keys, same dtypes, bitwise-equal values."""
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)
