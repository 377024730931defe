"""ONNX export with dynamic batch, height and width that stays exact at every size.

Why not a plain ``torch.onnx.export``: the official positional-embedding resize passes a *scale factor*
((ph + 0.1) / 37) to bicubic interpolation. The dynamo exporter bakes that scale in (other sizes then fail or
are wrong) and the legacy exporter refuses it. During export the model's resize is swapped for
:func:`depthany.export.posembed.resize_pos_embed`, the same resize written as two interpolation matrices
computed from the input's shape, and restored afterwards. Requires the ``[export]`` extra (onnx, onnxscript).

Example:
    >>> from depthany.export import export_onnx                       # doctest: +SKIP
    >>> export_onnx(model, "da2-small.onnx")                           # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from ..models import DepthAnything, Network, VideoDepthAnything, ZoeDepth
from .posembed import resize_pos_embed

INPUT_NAME = "image"
OUTPUT_NAME = "depth"
DEFAULT_OPSET = 18
MAX_PATCHES = 1024  # dynamic height/width up to 14 * 1024 = 14336 pixels
# The example input: a 480x640 photo at the official input size.
EXAMPLE_SIZE: tuple[int, int] = (518, 686)
EXPORT_EXTRA = "pip install 'depthany[export]'"


class ExportError(RuntimeError):
    """The exporter failed or a required package is missing (the message says which)."""


def require(*modules: str, hint: str = EXPORT_EXTRA) -> None:
    """Raise :class:`ExportError` naming the extra to install when a module is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(f"ONNX export needs {', '.join(missing)}: {hint}")


@contextlib.contextmanager
def exportable(model: Network) -> Iterator[Network]:
    """Temporarily give ``model`` a shape-generic, exact positional-embedding resize.

    Eager outputs are unchanged up to float rounding (bit-identical at 518x518); the original method is
    restored on exit, even after an error.
    """
    if isinstance(model, ZoeDepth):
        vit = model.relative.pretrained
    elif isinstance(model, DepthAnything | VideoDepthAnything):
        vit = model.pretrained
    else:
        raise TypeError(f"{type(model).__name__}: ONNX export covers the V1/V2, V1 metric and video models")
    grid = vit.spec.pos_grid

    def pos_embed_for(self: torch.nn.Module, ph: int, pw: int) -> Tensor:
        return resize_pos_embed(vit.pos_embed, grid, ph, pw)

    vit.pos_embed_for = types.MethodType(pos_embed_for, vit)  # type: ignore[method-assign]
    try:
        yield model
    finally:
        del vit.pos_embed_for  # the instance attribute; the class method is visible again


def export_onnx(
    model: Network,
    path: str | Path,
    *,
    dynamic: bool = True,
    size: tuple[int, int] = EXAMPLE_SIZE,
    batch: int = 2,
    opset: int = DEFAULT_OPSET,
    quiet: bool = True,
) -> Path:
    """Export ``model`` (fp32) to an ONNX file: input ``image`` (B, 3, H, W) -> output ``depth`` (B, H, W).

    Args:
        model: the network; exported in eval mode on its current device, fp32.
        path: the ``.onnx`` file to write (weights inline below 2 GB, else an external ``.data`` file).
        dynamic: batch, height and width dynamic (H and W any multiples of 14); False fixes them to
            ``batch`` x ``size``.
        size: (H, W) of the example input, multiples of 14; the fixed size when ``dynamic`` is False.
        batch: example batch size (>= 2 when dynamic: the exporter specialises a batch of 1).
        opset: ONNX opset version.
        quiet: silence the exporter's progress messages.

    Returns:
        the written path.

    Raises:
        ExportError: onnx/onnxscript missing or the exporter failed.
        ValueError: a size that is not a positive multiple of 14.
    """
    require("onnx", "onnxscript")
    h, w = size
    patch = model.patch_size
    if h < patch or w < patch or h % patch or w % patch:
        raise ValueError(f"size must be positive multiples of {patch}, got {h}x{w}")
    if dynamic and batch < 2:
        batch = 2
    if dynamic and (h // patch < 2 or w // patch < 2):
        raise ValueError(f"a dynamic export needs an example size of at least {2 * patch}x{2 * patch}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    x = torch.randn(batch, 3, h, w, device=device, generator=torch.Generator(device).manual_seed(0))
    shapes = None
    if dynamic:
        d = torch.export.Dim
        ph, pw = d("patches_h", min=1, max=MAX_PATCHES), d("patches_w", min=1, max=MAX_PATCHES)
        shapes = {"x": {0: d("batch", min=1, max=1024), 2: patch * ph, 3: patch * pw}}
    was_training = model.training
    model.eval()
    try:
        with exportable(model), torch.no_grad(), _quiet(quiet):
            program = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=shapes, opset_version=opset,
                                        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], optimize=True,
                                        verbose=False)
            if program is None:  # pragma: no cover - only the legacy exporter returns None
                raise ExportError("torch.onnx.export returned no program")
            program.save(str(path))
    except ExportError:
        raise
    except Exception as e:  # the exporter raises many types; report them as one
        raise ExportError(f"ONNX export failed: {type(e).__name__}: {e}") from e
    finally:
        model.train(was_training)
    return path


@contextlib.contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """Silence the exporter's prints, warnings and INFO logs (they go to stdout and stderr)."""
    if not enabled:
        yield
        return
    sink = io.StringIO()
    level = logging.root.manager.disable
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(level)
