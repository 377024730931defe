"""Write weights in every supported layout (``depthany convert``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from .. import zoo
from . import keymaps
from .load import SPEC_METADATA_KEY, arch_to_transformers_config, spec_to_json

OutFormat = Literal["depthany", "official", "v1_hub", "transformers", "dinov2"]
OUT_FORMATS: tuple[str, ...] = ("depthany", "official", "v1_hub", "transformers", "dinov2")


def _contiguous(sd: dict[str, Tensor], dtype: torch.dtype | None) -> dict[str, Tensor]:
    return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
            for k, v in sd.items()}


def save_weights(sd: dict[str, Tensor], spec: zoo.ModelSpec, out: str | Path, fmt: OutFormat = "depthany",
                 dtype: torch.dtype | None = None) -> Path:
    """Write an official-named state dict ``sd`` for ``spec`` to ``out`` in layout ``fmt``.

    * ``depthany``: one ``.safetensors`` file; the spec (architecture, preprocessing, licence) is in its metadata.
    * ``official``: a flat ``.pth`` state dict, as the official repos publish.
    * ``v1_hub``: a folder with ``config.json`` + ``pytorch_model.bin`` (V1 ``PyTorchModelHubMixin`` layout).
    * ``transformers``: a folder with ``config.json`` + ``model.safetensors`` for ``DepthAnythingForDepthEstimation``.
    * ``dinov2``: the encoder alone as a DINOv2 pretraining ``.pth`` (``blocks.0...``).

    Returns:
        the path written (file or folder).
    """
    out = Path(out)
    sd = _contiguous(sd, dtype)
    if fmt == "depthany":
        from safetensors.torch import save_file

        out.parent.mkdir(parents=True, exist_ok=True)
        save_file(sd, str(out), metadata={SPEC_METADATA_KEY: spec_to_json(spec), "format": "depthany"})
    elif fmt == "official":
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(sd, out)
    elif fmt == "dinov2":
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(keymaps.official_encoder_only(sd), out)
    elif fmt == "v1_hub":
        a = spec.arch
        if a.family != "v1" or a.head != "relative":
            raise ValueError("the V1 hub layout only describes relative V1 models (its config has no layer taps "
                             "or head kind); use 'depthany' or 'transformers' instead")
        out.mkdir(parents=True, exist_ok=True)
        cfg = {"encoder": a.encoder.name, "features": a.features, "out_channels": list(a.out_channels),
               "use_bn": False, "use_clstoken": False}
        (out / "config.json").write_text(json.dumps(cfg, indent=2))
        torch.save(sd, out / "pytorch_model.bin")
    elif fmt == "transformers":
        from safetensors.torch import save_file

        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(arch_to_transformers_config(spec.arch), indent=2))
        save_file(keymaps.official_to_transformers(sd), str(out / "model.safetensors"), metadata={"format": "pt"})
    else:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(OUT_FORMATS)}")
    return out
