"""Self-describing training checkpoints, written atomically, and the final weight export.

A checkpoint (``run_dir/last.pt``, snapshots ``run_dir/snapshots/step_NNNNNNNN.pt``) is one ``torch.save`` dict:

* ``model``: the state dict in official key names (``pretrained.*``, ``depth_head.*``);
* ``spec``: the model spec as JSON (:func:`depthany.weights.load.spec_to_json`), so
  ``depthany predict --weights run/last.pt`` works without the recipe;
* ``recipe``: the full recipe as a plain dict;
* ``optimizer``: AdamW state; ``step``: optimiser steps done; ``data``: the stream cursors (data position);
  ``log_window``: the partial log averages; ``rng``: torch CPU (and CUDA) generator states.

Files are written to a temporary name in the same folder, flushed to disk, then renamed over the target, so a
crash while saving leaves the previous checkpoint intact. Everything is plain tensors and containers and
loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .. import zoo
from ..io.atomic import atomic_write
from ..weights import save_weights
from .config import RecipeError

CHECKPOINT_VERSION = 1


def rng_state() -> dict[str, Any]:
    """Global torch generator states (CPU, and every CUDA device when CUDA is initialised)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically and durably (flushed to disk) ``torch.save`` a training state dict (see the module docstring
    for its keys)."""
    return atomic_write(path, lambda tmp: torch.save({"version": CHECKPOINT_VERSION, **state}, tmp), durable=True)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint written by :func:`save_checkpoint` (tensors and containers only).

    Raises:
        RecipeError: missing, unreadable or not a depthany training checkpoint, naming the file.
    """
    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"{p}: no checkpoint to resume from")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RecipeError(f"{p}: cannot read checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    missing = [k for k in ("model", "optimizer", "step", "data", "recipe") if not isinstance(state, dict) or k not in state]
    if missing:
        raise RecipeError(f"{p}: not a depthany training checkpoint (missing {', '.join(missing)})")
    return state


def export_weights(state_dict: dict[str, torch.Tensor], spec: zoo.ModelSpec, path: str | Path) -> Path:
    """Atomically write final weights as depthany ``.safetensors`` (spec in the metadata) for ``predict``."""
    return save_weights(state_dict, spec, path, fmt="depthany", durable=True)
