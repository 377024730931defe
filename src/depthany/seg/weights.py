"""Segmentation weights: initialise the encoder from any Depth Anything / DINOv2 checkpoint, save and load models.

Encoder initialisation reads any layout :func:`depthany.weights.read_checkpoint` understands (official V1/V2
relative and metric ``.pth``, V1 hub folders, transformers folders, DINOv2 pretraining ``.pth``, depthany files
and training checkpoints) and copies its ``pretrained.*`` tensors strictly into the model's encoder: a size
mismatch is an error naming the file and the keys, never a silent partial load.

Saved models are one ``.safetensors`` file: official-style keys (``pretrained.*``, ``neck.*``,
``decode_head.*``) and the :class:`~depthany.seg.spec.SegSpec` as JSON in the metadata under
``depthany_seg_spec``, so the file describes itself (architecture, classes and colours, inference settings).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .. import zoo
from ..io.atomic import atomic_write
from ..weights import Checkpoint, WeightsError, fetch, load_into, read_checkpoint
from ..weights.config import infer_encoder
from ..weights.load import compare_keys
from ..weights.read import sniff
from .model import SegmentationModel
from .spec import SegSpec, spec_from_json, spec_to_json

SEG_SPEC_KEY = "depthany_seg_spec"


def read_encoder_checkpoint(ref: str | Path) -> Checkpoint:
    """Weights to initialise an encoder from: a local file / folder, or a zoo name (fetched into the HF cache).

    Raises:
        WeightsError: neither an existing path nor a zoo name, or an unreadable file (naming it).
    """
    p = Path(ref).expanduser()
    if p.exists():
        return read_checkpoint(p)
    try:
        spec = zoo.get_spec(str(ref))
    except ValueError:
        raise WeightsError(f"{ref}: neither an existing weights file or folder nor a zoo model name") from None
    return read_checkpoint(fetch(spec))


def checkpoint_encoder(ckpt: Checkpoint) -> tuple[zoo.EncoderSpec, zoo.Family | None]:
    """The encoder size a checkpoint holds, and its family (``v1`` / ``v2``) when the file says."""
    if ckpt.arch is not None:
        return ckpt.arch.encoder, ckpt.arch.family
    return infer_encoder(ckpt.state_dict, ckpt.path), None


def init_encoder(model: SegmentationModel, ckpt: Checkpoint) -> None:
    """Copy ``ckpt``'s ``pretrained.*`` tensors into ``model.pretrained`` (strict).

    Raises:
        WeightsError: the checkpoint's encoder does not fit (naming the file and the keys).
    """
    load_into(model, ckpt, encoder_only=True)


def save_seg_weights(model: SegmentationModel, path: str | Path, dtype: torch.dtype | None = None,
                     durable: bool = False) -> Path:
    """Write ``model`` (weights + spec) to a ``.safetensors`` file atomically (``durable``: flushed to disk before
    the rename, as training's final export); returns the path."""
    from safetensors.torch import save_file

    out = Path(path)
    sd = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
          for k, v in model.state_dict().items()}
    sd = {k: v.clone() if v.untyped_storage().nbytes() != v.numel() * v.element_size() else v for k, v in sd.items()}
    meta = {SEG_SPEC_KEY: spec_to_json(model.spec), "format": "pt"}
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(out, lambda tmp: save_file(sd, str(tmp), metadata=meta), durable=durable)


def load_seg_model(path: str | Path, device: str | torch.device = "cpu",
                   dtype: torch.dtype = torch.float32) -> SegmentationModel:
    """Build and strictly load a segmentation model saved by :func:`save_seg_weights`, in eval mode.

    Raises:
        WeightsError: missing or unreadable file, a file without a segmentation spec (a depth model, say),
            or weights that do not fit the spec (naming the file and the keys).
    """
    from safetensors import safe_open

    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsError(f"{p}: no such segmentation weights file")
    if sniff(p) != "safetensors":
        raise WeightsError(f"{p}: segmentation weights are a .safetensors file written by depthany")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
            if SEG_SPEC_KEY not in meta:
                raise WeightsError(f"{p}: not a depthany segmentation model (no '{SEG_SPEC_KEY}' metadata); depth "
                                   "models are used with depthany predict")
            sd = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    except WeightsError:
        raise
    except Exception as e:
        raise WeightsError(f"{p}: cannot read segmentation weights ({type(e).__name__}: {e})") from e
    try:
        spec = spec_from_json(meta[SEG_SPEC_KEY], str(p))
    except ValueError as e:
        raise WeightsError(str(e)) from None
    return model_from_state_dict(spec, sd, p).to(device=device, dtype=dtype).eval()


def model_from_state_dict(spec: SegSpec, sd: dict[str, torch.Tensor], where: str | Path = "<state dict>"
                          ) -> SegmentationModel:
    """A model for ``spec`` holding exactly ``sd`` (strict; the optional mask token may be absent)."""
    model = SegmentationModel(spec)
    report = compare_keys(model, sd)
    if not report.ok:
        raise WeightsError(f"{where}: weights do not fit the segmentation model ({spec.head} head, "
                           f"{spec.encoder.name}, {spec.num_classes} classes):\n{report.format()}")
    with torch.no_grad():
        for k, t in model.state_dict().items():
            if k in sd:
                t.copy_(sd[k].to(t.dtype))
            else:
                t.zero_()
    return model
