"""From what a user typed (zoo name, HF repo id, local path, ``--weights``) to a loaded model and its spec."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .. import zoo
from ..models import DepthAnything
from .hub import fetch
from .load import Checkpoint, WeightsError, infer_encoder, load_into, read_checkpoint


def _looks_like_path(name: str) -> bool:
    p = Path(name).expanduser()
    return p.exists() or name.endswith((".pth", ".pt", ".bin", ".safetensors")) or name.startswith((".", "/", "~"))


def _spec_for_checkpoint(ckpt: Checkpoint, requested: zoo.ModelSpec | None) -> zoo.ModelSpec:
    """Pick the spec: the requested zoo entry (checked against the file), the file's own, or a name match."""
    if requested is not None:
        if ckpt.arch is not None and ckpt.arch != requested.arch and ckpt.layout != "dinov2":
            raise WeightsError(
                f"{ckpt.path}: the file describes {_arch_text(ckpt.arch)}, but model {requested.name} is "
                f"{_arch_text(requested.arch)}; drop --model to use the file's own description"
            )
        return requested
    if ckpt.spec is not None:
        return ckpt.spec
    if ckpt.arch is not None:
        pre = zoo.V1_PRE if ckpt.arch.family == "v1" else zoo.V2_PRE
        return zoo.ModelSpec(ckpt.path.name, ckpt.arch, pre, (), "unknown (local file)",
                             description=f"local weights {ckpt.path}")
    by_name = _spec_from_filename(ckpt.path.name)
    if by_name is not None:
        return by_name
    enc = infer_encoder(ckpt.state_dict)
    raise WeightsError(
        f"{ckpt.path}: a {enc.name} checkpoint, but the file does not say whether it is V1, V2 or metric; "
        f"name the architecture with --model (for example da2-{zoo.SHORT.get(enc.name, 'small')})"
    )


def _spec_from_filename(filename: str) -> zoo.ModelSpec | None:
    for spec in zoo.MODELS.values():
        for src in spec.weights:
            if src.filename and Path(src.filename).name == filename and src.filename.endswith(".pth"):
                return spec
    return None


def _arch_text(a: zoo.Arch) -> str:
    md = f", max {a.max_depth:g} m" if a.max_depth else ""
    return f"{a.family} {a.encoder.name} {a.head}{md} (layers {list(a.layers)}, features {a.features})"


def resolve_spec(model: str | None) -> zoo.ModelSpec:
    """The zoo spec for a name or alias; the bundled default model when ``model`` is None."""
    return zoo.get_spec(model or zoo.BUNDLED_NAME)


def load_model(
    model: str | None = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[DepthAnything, zoo.ModelSpec]:
    """Build and strictly load a model.

    Args:
        model: zoo name, Hugging Face alias (``depth-anything/Depth-Anything-V2-Small-hf``), or a local weights
            path. None means the bundled default model (or the architecture described by ``weights``).
        weights: explicit weights file/folder; with ``model`` a zoo name, the file must fit that architecture.
        device: where the model lives.
        dtype: parameter dtype (float32 for the exact path).

    Returns:
        (model in eval mode, its spec).

    Raises:
        WeightsError / WeightsNotFound: with the file and what is wrong or missing.
        ValueError: unknown model name.
    """
    if model is not None and weights is None and _looks_like_path(model):
        model, weights = None, model
    if weights is not None:
        ckpt = read_checkpoint(weights)
        spec = _spec_for_checkpoint(ckpt, zoo.get_spec(model) if model else None)
        if ckpt.layout == "dinov2":
            raise WeightsError(f"{ckpt.path}: a DINOv2 encoder checkpoint has no depth head; use it to "
                               "initialise training (train recipe 'encoder_init'), not for prediction")
        spec = dataclasses.replace(spec, extra={**spec.extra, "weights": str(ckpt.path)})
    else:
        spec = resolve_spec(model)
        src = zoo.preferred_source(spec, model)
        ckpt = read_checkpoint(fetch(spec, src))
        spec = dataclasses.replace(spec, extra={**spec.extra, "weights": str(ckpt.path)})
    with torch.device("meta"):
        net = DepthAnything(spec.arch)
    net = net.to_empty(device="cpu")
    load_into(net, ckpt)
    return net.to(device=device, dtype=dtype).eval(), spec
