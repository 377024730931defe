"""Write weights in every supported layout. Files appear complete or not at all (temp file + rename)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from .. import zoo
from ..io.atomic import atomic_write
from . import keymaps
from .config import SPEC_METADATA_KEY, arch_to_transformers_config, da3_config, spec_to_json, v1_hub_config
from .load import expected_key_groups
from .read import WEIGHT_FILENAMES

OutFormat = Literal["depthany", "official", "v1_hub", "transformers", "dinov2"]
OUT_FORMATS: tuple[str, ...] = ("depthany", "official", "v1_hub", "transformers", "dinov2")
FOLDER_FORMATS = frozenset({"v1_hub", "transformers"})


def _prepare(sd: dict[str, Tensor], dtype: torch.dtype | None) -> dict[str, Tensor]:
    """Detached, contiguous CPU tensors; floating-point ones cast to ``dtype`` when given."""
    return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
            for k, v in sd.items()}


def _save_safetensors(sd: dict[str, Tensor], path: Path, metadata: dict[str, str], durable: bool = False) -> None:
    from safetensors.torch import save_file

    # q/k/v slices of one qkv tensor share storage; safetensors wants each tensor to own its bytes
    owned = {k: v.clone() if v.untyped_storage().nbytes() != v.numel() * v.element_size() else v
             for k, v in sd.items()}
    atomic_write(path, lambda tmp: save_file(owned, str(tmp), metadata=metadata), durable=durable)


def _save_torch(obj: dict[str, Tensor] | dict[str, dict[str, Tensor]], path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _save_json(obj: dict, path: Path) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")

    atomic_write(path, write)


def _check_folder(out: Path, weights_name: str) -> None:
    """Create ``out``; refuse a folder holding the other weights file name, which readers would pick instead."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder; the {weights_name} layout writes a folder")
    other = [n for n in WEIGHT_FILENAMES if n != weights_name and (out / n).exists()]
    if other:
        raise ValueError(f"{out}: already holds {other[0]}, which would be read instead of the new {weights_name}; "
                         "choose another folder")
    out.mkdir(parents=True, exist_ok=True)


def dedupe_shared(sd: dict[str, Tensor], arch: zoo.Arch) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Store each tensor the model uses under several names (DA3's shared aux LayerNorm) once, as
    ``safetensors.torch.save_model`` does: under the alphabetically first name, with metadata ``{dropped: kept}``.
    The value kept is the one loading gives the shared tensor (the last name present, in model order)."""
    out, meta = dict(sd), {}
    for group in expected_key_groups(arch):
        present = [k for k in group if k in sd]
        if not present:
            continue
        keep = sorted(group)[0]
        value = sd[present[-1]]
        for k in group:
            out.pop(k, None)
            if k != keep:
                meta[k] = keep
        out[keep] = value
    return out, meta


def _save_da3(sd: dict[str, Tensor], spec: zoo.ModelSpec, out: Path, fmt: str, durable: bool) -> None:
    if fmt not in ("depthany", "official"):
        raise ValueError(f"Depth Anything 3 weights can be written --to depthany or --to official, not {fmt!r}")
    sd, shared = dedupe_shared(sd, spec.arch)
    if fmt == "depthany":
        _save_safetensors(sd, out, {**shared, SPEC_METADATA_KEY: spec_to_json(spec), "format": "pt"}, durable)
        return
    cfg = da3_config(spec.arch)
    _check_folder(out, "model.safetensors")
    _save_safetensors(sd, out / "model.safetensors", shared, durable)
    _save_json(cfg, out / "config.json")


def save_weights(sd: dict[str, Tensor], spec: zoo.ModelSpec, out: str | Path, fmt: OutFormat = "depthany",
                 dtype: torch.dtype | None = None, durable: bool = False) -> Path:
    """Write an official-named state dict ``sd`` for ``spec`` to ``out`` in layout ``fmt``.

    * ``depthany``: one ``.safetensors`` file; the spec (architecture, preprocessing, licence) is in its metadata.
    * ``official``: a flat ``.pth`` state dict, as the official repos publish; for a V1 metric (ZoeDepth) model
      the official training-checkpoint form ``{"model": state_dict}`` of the released ``.pt`` files.
    * ``v1_hub``: a folder with ``config.json`` + ``pytorch_model.bin`` (V1 ``PyTorchModelHubMixin`` layout).
    * ``transformers``: a folder with ``config.json`` + ``model.safetensors`` for ``DepthAnythingForDepthEstimation``
      (legacy on-disk key names, which every transformers version reads).
    * ``dinov2``: the encoder alone as a DINOv2 pretraining ``.pth`` (``blocks.0...``).

    Depth Anything 3 models have two layouts, both with the official ``model.*`` keys: ``depthany`` (one
    ``.safetensors`` with the spec) and ``official`` (the Hugging Face folder: ``config.json`` naming the preset +
    ``model.safetensors``, shared tensors stored once as ``safetensors.torch.save_model`` writes them).

    Args:
        sd: official key names -> tensors (any device/dtype).
        spec: describes the network; only ``official`` and ``dinov2`` ignore it.
        out: file (depthany, official, dinov2) or folder (v1_hub, transformers) to write.
        dtype: cast floating-point tensors (``torch.float16``, ...); None keeps them as they are.
        durable: flush the ``depthany`` file and its folder to disk before returning (training outputs).

    Returns:
        the path written (file or folder).

    Raises:
        ValueError: an unknown format, or one that cannot describe ``spec`` (v1_hub for a V2 model, ...).
    """
    out = Path(out)
    if fmt not in OUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(OUT_FORMATS)}")
    if spec.arch.zoe is not None and fmt not in ("depthany", "official"):
        raise ValueError(f"a V1 metric (ZoeDepth) model can be written --to depthany or --to official, not {fmt}")
    sd = _prepare(sd, dtype)
    if spec.arch.is_da3:
        _save_da3(sd, spec, out, fmt, durable)
    elif fmt == "depthany":
        _save_safetensors(sd, out, {SPEC_METADATA_KEY: spec_to_json(spec), "format": "pt"}, durable)
    elif fmt == "official" and spec.arch.zoe is not None:
        _save_torch({"model": sd}, out)
    elif fmt == "official":
        _save_torch(sd, out)
    elif fmt == "dinov2":
        _save_torch(keymaps.official_encoder_only(sd), out)
    elif fmt == "v1_hub":
        cfg = v1_hub_config(spec.arch)
        _check_folder(out, "pytorch_model.bin")
        _save_torch(sd, out / "pytorch_model.bin")
        _save_json(cfg, out / "config.json")
    else:  # transformers
        cfg = arch_to_transformers_config(spec.arch)
        _check_folder(out, "model.safetensors")
        _save_safetensors(keymaps.official_to_transformers(sd), out / "model.safetensors", {"format": "pt"})
        _save_json(cfg, out / "config.json")
    return out
