"""Shared pieces of the backend, export and bench tests: a tiny model with realistic-scale random weights and
the test run's cache folder, so the (slow) export happens once for all modules and workers."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from conftest import tiny_spec
from depthany.backends.onnx_cache import CACHE_ENV
from depthany.models import DepthAnything
from weights_helpers import random_state

_CACHE = os.environ["DEPTHANY_CACHE_DIR"]  # the test run's cache folder (conftest.py), shared by the xdist workers

# (batch, height, width): square, landscape, portrait, a batch of 2, the 1x1 patch grid and the 518 shortcut.
TEST_SIZES = [(1, 42, 56), (1, 56, 42), (2, 70, 98), (1, 14, 14), (1, 518, 518)]


def tiny_model(seed: int = 0, family: str = "v2", head: str = "relative") -> DepthAnything:
    """The tiny test architecture with N(0, 1/fan_in)-style weights (outputs vary across the image)."""
    spec = tiny_spec(head, family, 20.0 if head == "metric" else None)
    model = DepthAnything(spec.arch)
    model.load_state_dict(random_state(spec.arch, seed))
    return model.eval()


def tiny_input(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A normalised-image-like input: N(0, 1) values, shape (b, 3, h, w)."""
    return torch.randn(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def onnx_cache() -> Iterator[str]:
    """Point the ONNX backends' cache at a per-process folder for the whole module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, _CACHE)
        yield _CACHE
