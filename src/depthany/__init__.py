"""depthany: Depth Anything V1/V2 monocular depth estimation: exact inference, evaluation and training.

The public API::

    from depthany import DepthPredictor, DepthResult, list_models, load_model
    from depthany import VideoDepthPredictor        # Video Depth Anything on whole videos (vda-* models)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["DepthPredictor", "DepthResult", "ModelSpec", "VideoDepthPredictor", "get_spec", "list_models", "load_model",
           "__version__"]

if TYPE_CHECKING:
    from .predictor import DepthPredictor
    from .result import DepthResult
    from .video.vda.predictor import VideoDepthPredictor
    from .weights import load_model
    from .zoo import ModelSpec, get_spec, list_models

_LAZY = {
    "DepthPredictor": ("depthany.predictor", "DepthPredictor"),
    "DepthResult": ("depthany.result", "DepthResult"),
    "load_model": ("depthany.weights", "load_model"),
    "ModelSpec": ("depthany.zoo", "ModelSpec"),
    "VideoDepthPredictor": ("depthany.video.vda.predictor", "VideoDepthPredictor"),
    "get_spec": ("depthany.zoo", "get_spec"),
    "list_models": ("depthany.zoo", "list_models"),
}


def __getattr__(name: str) -> Any:  # lazy: `import depthany` does not import torch
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'depthany' has no attribute {name!r}")
