"""The transformers baseline: ``DepthAnythingForDepthEstimation`` with the very same weights as ours.

Loaded with transformers' defaults (its DINOv2 backbone then uses SDPA attention): "transformers' default".
``attn="eager"`` gives the slower eager attention.
The model is rebuilt from our state dict through the transformers layout writer, so both sides compute the
same function (outputs agree to float rounding; ``tests/test_models.py`` checks this at 518).
"""

from __future__ import annotations

import importlib.util
import tempfile
from typing import Any

import torch
from torch import Tensor

from ..models import DepthAnything
from ..zoo import ModelSpec


def transformers_available() -> bool:
    return importlib.util.find_spec("transformers") is not None


def load_transformers(folder: str, attn: str | None = None) -> Any:
    """``DepthAnythingForDepthEstimation.from_pretrained(folder)`` quietly; ``attn`` None keeps the default."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    kwargs: dict[str, Any] = {} if attn is None else {"attn_implementation": attn}
    return transformers.DepthAnythingForDepthEstimation.from_pretrained(folder, **kwargs)


def transformers_model(model: DepthAnything, spec: ModelSpec, device: torch.device, attn: str | None = None) -> Any:
    """A transformers ``DepthAnythingForDepthEstimation`` holding ``model``'s weights, eval mode, on ``device``."""
    from ..weights import save_weights

    with tempfile.TemporaryDirectory(prefix="depthany-bench-hf-") as tmp:
        folder = save_weights(model.state_dict(), spec, f"{tmp}/hf", "transformers")
        hf = load_transformers(str(folder), attn)
    return hf.to(device).eval()


class TransformersRunner:
    """(B, 3, h, w) -> (B, h, w) through the transformers model (the baseline's network call)."""

    name = "transformers"

    def __init__(self, hf_model: Any, device: torch.device, precision: str = "fp32") -> None:
        self.model, self.device, self.precision = hf_model, device, precision

    def __call__(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.model(pixel_values=x.to(self.device)).predicted_depth.float()
