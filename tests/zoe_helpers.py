"""Tiny V1 metric (ZoeDepth) models for the task tests: random weights in the official layout whose bins are
spread over the depth range (tests/zoe_oracle.py), saved as self-describing depthany files or official ``.pt``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from depthany import zoo
from depthany.weights import save_weights
from test_zoedepth_model import BASE, tiny_zoe_arch
from zoe_oracle import official_state


def tiny_zoe_spec(max_depth: float = 10.0, **cfg: object) -> zoo.ModelSpec:
    """A ZoeDepth spec on the 6-block test encoder, network size 42 x 56 (``cfg`` overrides the head config)."""
    arch = tiny_zoe_arch(dataclasses.replace(BASE, **cfg), max_depth)  # type: ignore[arg-type]
    return zoo.ModelSpec("test-tiny-zoe", arch, zoo.ZOE_PRE, (), "Apache-2.0", description="tiny ZoeDepth")


def save_zoe(path: Path, seed: int = 7, spec: zoo.ModelSpec | None = None, fmt: str = "depthany") -> Path:
    """Write a tiny ZoeDepth model (``fmt`` "depthany": describes itself; "official": ``{"model": sd}``)."""
    spec = spec or tiny_zoe_spec()
    return save_weights(official_state(spec.arch, seed), spec, path, fmt=fmt)
