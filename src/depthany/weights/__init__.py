"""Weights: resolve a model name or path, read any supported layout, load strictly, convert."""

from .hub import WeightsNotFound, fetch, is_cached
from .load import Checkpoint, KeyReport, WeightsError, load_into, read_checkpoint
from .resolve import load_model, resolve_spec
from .save import OUT_FORMATS, save_weights

__all__ = [
    "Checkpoint", "KeyReport", "OUT_FORMATS", "WeightsError", "WeightsNotFound", "fetch", "is_cached",
    "load_into", "load_model", "read_checkpoint", "resolve_spec", "save_weights",
]
