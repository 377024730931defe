"""Convert weights between layouts (``depthany convert``): read anything, check strictly, write one layout.

Every conversion between the full-model layouts is lossless: the tensors are renamed (and q/k/v split or
fused along rows), never recomputed, so ``official -> transformers -> official`` gives identical bytes per tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch

from .. import zoo
from ..precision import check_precision, torch_dtype
from .errors import WeightsError
from .load import OPTIONAL_KEYS, check_fits, expected_shapes
from .read import Checkpoint
from .resolve import looks_like_path, resolve_checkpoint
from .save import FOLDER_FORMATS, OUT_FORMATS, OutFormat, save_weights


@dataclass
class ConvertResult:
    """What :func:`convert_weights` wrote."""

    output: Path
    to: str
    source: Path
    source_layout: str
    model: str
    tensors: int
    dtype: str
    filled: list[str] = field(default_factory=list)  # optional keys absent from the input, written as zeros


def convert_weights(
    source: str | Path,
    output: str | Path,
    to: str,
    model: str | None = None,
    dtype: str | None = None,
    overwrite: bool = False,
) -> ConvertResult:
    """Read ``source`` in any supported layout and write it to ``output`` in layout ``to``.

    Args:
        source: a weights file or folder, or a zoo name / Hugging Face repo id (read from the HF cache or
            downloaded).
        output: file (``depthany``, ``official``, ``dinov2``) or folder (``v1_hub``, ``transformers``) to write.
        to: one of :data:`~depthany.weights.save.OUT_FORMATS`.
        model: zoo name saying what ``source`` is, for files that do not describe themselves (official ``.pth``
            files with a renamed file name); the weights must fit it.
        dtype: ``"fp32"``, ``"fp16"`` or ``"bf16"``; None keeps the stored dtype.
        overwrite: replace an existing ``output``.

    Raises:
        WeightsError: unreadable source, weights that do not fit the architecture, a DINOv2 encoder file asked to
            become a full model, or an existing output without ``overwrite``; each names the path.
        ValueError: an unknown format / dtype, or a layout that cannot describe the model.
    """
    if to not in OUT_FORMATS:
        raise ValueError(f"--to must be one of {', '.join(OUT_FORMATS)}, got {to!r}")
    if dtype is not None:
        check_precision(dtype, "--dtype")
    out = Path(output).expanduser()
    if out.exists() and not overwrite:
        raise WeightsError(f"{out}: already exists; pass --overwrite to replace it")
    if to not in FOLDER_FORMATS and out.is_dir():
        raise WeightsError(f"{out}: is a folder, but --to {to} writes a single file")
    src_text = str(source)
    if looks_like_path(src_text):
        ckpt, spec = resolve_checkpoint(model, src_text, encoder_only=to == "dinov2")
    elif model is not None:
        raise ValueError(f"{src_text!r} is a model name, so --model is not needed (give one or the other)")
    else:
        ckpt, spec = resolve_checkpoint(src_text, None)
    if Path(ckpt.path).resolve() == out.resolve():
        raise WeightsError(f"{out}: is the input; write the conversion somewhere else")
    filled = _check(ckpt, spec, to)
    sd = dict(ckpt.state_dict)
    spec_out = spec if spec is not None else _encoder_spec(ckpt)
    if filled:  # e.g. an absent mask_token: official loaders are strict, so write the zeros we would load
        shapes = expected_shapes(spec_out.arch)
        like = next(t for k, t in sd.items() if k.endswith("pretrained.cls_token"))
        sd.update({key: torch.zeros(shapes[key], dtype=like.dtype) for key in filled})
    save_weights(sd, spec_out, out, cast(OutFormat, to), torch_dtype(dtype) if dtype else None)
    written = [t for k, t in sd.items() if to != "dinov2" or k.startswith("pretrained.")]
    stored = {str(t.dtype).removeprefix("torch.") for t in written if t.is_floating_point()}
    return ConvertResult(out, to, ckpt.path, ckpt.layout, spec_out.name, len(written),
                         dtype or "/".join(sorted(stored)), filled)


def _check(ckpt: Checkpoint, spec: zoo.ModelSpec | None, to: str) -> list[str]:
    """Strict key/shape check; returns the optional keys the output needs filled in."""
    if ckpt.layout == "dinov2":
        if to != "dinov2":
            raise WeightsError(f"{ckpt.path}: a DINOv2 encoder checkpoint has no depth head; it can only be "
                               "written --to dinov2")
        arch = spec.arch if spec is not None else _encoder_spec(ckpt).arch
        check_fits(ckpt, arch, encoder_only=True)
        return []
    assert spec is not None
    report = check_fits(ckpt, spec.arch, encoder_only=to == "dinov2")
    return [k for k in report.defaulted if k in OPTIONAL_KEYS]


def _encoder_spec(ckpt: Checkpoint) -> zoo.ModelSpec:
    """A spec for an encoder-only file: the V2 architecture of the encoder size its shapes imply."""
    from .config import infer_encoder

    enc = infer_encoder(ckpt.state_dict, ckpt.path)
    return zoo.ModelSpec(f"dinov2-{enc.name}", zoo.make_arch(enc.name, "v2"), zoo.V2_PRE, (), "Apache-2.0")
