"""Weights: resolve a model name or path, read any supported layout, load strictly, convert, list the zoo."""

from .errors import WeightsError, WeightsNotFound
from .hub import fetch, fetch_repo, is_cached, source_status, verify_sha256
from .load import KeyReport, check_fits, compare_keys, expected_shapes, load_into
from .read import Checkpoint, read_checkpoint
from .resolve import load_model, load_network, load_video_model, resolve_checkpoint, resolve_spec
from .save import OUT_FORMATS, save_weights

__all__ = [
    "Checkpoint", "KeyReport", "OUT_FORMATS", "WeightsError", "WeightsNotFound", "check_fits", "compare_keys",
    "expected_shapes", "fetch", "fetch_repo", "is_cached", "load_into", "load_model", "load_network",
    "load_video_model", "read_checkpoint", "resolve_checkpoint", "resolve_spec", "save_weights", "source_status",
    "verify_sha256",
]
