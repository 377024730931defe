"""Read a weights file or folder of any supported layout into official key names.

Supported inputs (recognised from the bytes and keys, never from the file name; see :mod:`.formats`):

* official ``.pth`` state dicts (V1, V2, V2 metric): flat ``pretrained.*`` / ``depth_head.*`` keys;
* official V1 metric (ZoeDepth) checkpoints ``{"model": state_dict, ...}``: ``core.core.*`` + the ZoeDepth head
  (layout ``zoedepth``; the names are kept, they are our module names too);
* the V1 hub layout: a folder with ``config.json`` (``encoder``, ``features``, ...) + ``pytorch_model.bin`` or
  ``model.safetensors`` (newer ``PyTorchModelHubMixin``);
* Hugging Face transformers folders: ``config.json`` (``model_type: depth_anything``) + ``model.safetensors`` or
  ``pytorch_model.bin``, with the legacy on-disk or the transformers >= 5 attention/MLP names;
* DINOv2 pretraining checkpoints (``dinov2_vit?14_pretrain.pth``): encoder only;
* Depth Anything 3 Hugging Face folders: ``config.json`` (``{"model_name": "da3mono-large", ...}``, written by
  ``PyTorchModelHubMixin``) + ``model.safetensors`` with keys under ``model.`` (kept as they are);
* depthany ``.safetensors`` files (the model spec is in the metadata) and depthany training checkpoints
  (``{"model": state_dict, "spec": json, ...}``).

Pickled files are read with ``torch.load(weights_only=True)``: only tensors and plain containers are rebuilt,
so a file that would run code when unpickled is refused before anything runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from .. import zoo
from . import keymaps
from .config import SPEC_METADATA_KEY, arch_from_config, spec_from_json
from .errors import WeightsError
from .formats import sniff
from .zoedepth import is_zoe_state

Layout = Literal["official", "v1_hub", "transformers", "dinov2", "depthany", "zoedepth", "da3"]
WEIGHT_FILENAMES = ("model.safetensors", "pytorch_model.bin")  # looked for in folders, in this order


@dataclass
class Checkpoint:
    """Weights in official key names plus what the file says about itself.

    Attributes:
        state_dict: official-named tensors (``pretrained.*``, ``depth_head.*``; ZoeDepth: ``core.core.*``, ``conv2.*``,
            ...), any float dtype.
        path: the file (or folder) read.
        layout: the layout detected.
        arch: the architecture the file describes, when it says (transformers / V1 hub / depthany).
        spec: the full depthany model spec, for depthany files.
        extra: anything else found (training state, safetensors metadata).
    """

    state_dict: dict[str, Tensor]
    path: Path
    layout: Layout
    arch: zoo.Arch | None = None
    spec: zoo.ModelSpec | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read any supported weights file or folder into official key names.

    Raises:
        WeightsError: the path does not exist, cannot be parsed, or holds an unknown layout; names the path.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise WeightsError(f"{p}: no such weights file or folder")
    try:
        return _read_folder(p) if p.is_dir() else _read_file(p)
    except WeightsError:
        raise
    except Exception as e:  # any parser failure is reported against the file, never as a bare traceback
        raise WeightsError(f"{p}: cannot read weights ({type(e).__name__}: {_first_line(e)})") from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def _read_file(p: Path) -> Checkpoint:
    kind = sniff(p)
    if kind == "safetensors":
        return _read_safetensors(p)
    return _from_mapping(p, _torch_load(p, mmap=kind == "torch-zip"))


def _torch_load(p: Path, mmap: bool) -> dict[str, Any]:
    try:
        if p.name.endswith(".safetensors"):  # torch.load hands such a *name* to safetensors: pass the bytes
            with open(p, "rb") as f:
                obj = torch.load(f, map_location="cpu", weights_only=True)
        else:
            obj = torch.load(p, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:
        msg = _first_line(e)
        if "Unsupported operand 149" in str(e):  # pickle FRAME: legacy format at pickle protocol 4 or 5
            raise WeightsError(f"{p}: a legacy (non-zip) torch.save file written with pickle protocol 4 or 5, which "
                               "torch.load(weights_only=True) cannot read; re-save it in torch.save's default "
                               "format (loading it once with weights_only=False: only for a file you trust)") from e
        if "weights_only" in str(e) or "Unsupported global" in str(e) or "GLOBAL" in str(e):
            raise WeightsError(f"{p}: refused: the file holds Python objects other than tensors, and loading it "
                               f"could run code (files are read with weights_only=True). {msg}") from e
        raise WeightsError(f"{p}: not a readable PyTorch checkpoint (corrupt or truncated?): "
                           f"{type(e).__name__}: {msg}") from e
    if not isinstance(obj, dict):
        raise WeightsError(f"{p}: expected a state dict, found a {type(obj).__name__}")
    return obj


def _check_safetensors_length(p: Path) -> None:
    """A truncated download keeps a valid header; compare the data size the header promises with the file."""
    size = p.stat().st_size
    with open(p, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        raise WeightsError(f"{p}: truncated safetensors file ({size} bytes, the header describes {8 + n + end})")


def _read_safetensors(p: Path) -> Checkpoint:
    from safetensors import safe_open

    _check_safetensors_length(p)
    with safe_open(str(p), framework="pt") as f:
        meta = f.metadata() or {}
        sd = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    ckpt = _from_mapping(p, sd)
    if SPEC_METADATA_KEY in meta:
        ckpt.spec = spec_from_json(meta[SPEC_METADATA_KEY], p)
        ckpt.arch = ckpt.spec.arch
        if ckpt.layout in ("official", "zoedepth", "da3"):
            ckpt.layout = "depthany"
    ckpt.extra["metadata"] = meta
    return ckpt


def _read_folder(p: Path) -> Checkpoint:
    weights = next((p / n for n in WEIGHT_FILENAMES if (p / n).is_file()), None)
    if weights is None:
        raise WeightsError(f"{p}: folder has neither {' nor '.join(WEIGHT_FILENAMES)}")
    ckpt = _read_file(weights)
    cfg_path = p / "config.json"
    if cfg_path.is_file():
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise WeightsError(f"{cfg_path}: not valid JSON ({e})") from e
        if not isinstance(cfg, dict):
            raise WeightsError(f"{cfg_path}: expected a JSON object")
        if ckpt.arch is None:
            ckpt.arch = arch_from_config(cfg, cfg_path)
        if ckpt.layout == "official" and "encoder" in cfg:
            ckpt.layout = "v1_hub"
        ckpt.extra["config"] = cfg
    ckpt.path = p
    return ckpt


_WRAPPERS = ("model", "state_dict", "module")
_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel, torch.compile


def _from_mapping(p: Path, obj: dict[str, Any]) -> Checkpoint:
    extra: dict[str, Any] = {}
    for wrapper in _WRAPPERS:  # training checkpoints keep the weights under a key
        if isinstance(obj.get(wrapper), dict):
            extra = {k: v for k, v in obj.items() if k != wrapper}
            obj = obj[wrapper]
            break
    sd: dict[str, Tensor] = {}
    for k, v in obj.items():
        if isinstance(v, Tensor):
            for prefix in _PREFIXES:
                k = k.removeprefix(prefix)
            sd[k] = v
    if not sd:
        raise WeightsError(f"{p}: no tensors found")
    layout, sd = _detect_layout(p, sd)
    ckpt = Checkpoint(sd, p, layout, extra=extra)
    if isinstance(extra.get("spec"), str):
        ckpt.spec = spec_from_json(extra["spec"], p)
        ckpt.arch = ckpt.spec.arch
    return ckpt


def _detect_layout(p: Path, sd: dict[str, Tensor]) -> tuple[Layout, dict[str, Tensor]]:
    keys = list(sd)
    if is_zoe_state(sd):
        return "zoedepth", sd
    if any(k.startswith(("model.da3.", "model.da3_metric.")) for k in keys):
        raise WeightsError(f"{p}: a Depth Anything 3 nested (any-view + metric) checkpoint; not supported, use "
                           "the any-view and DA3Metric models separately")
    if any(k.startswith(("model.backbone.pretrained.", "model.head.")) for k in keys):
        return "da3", sd
    if any(k.startswith(("pretrained.", "depth_head.")) for k in keys):
        return "official", sd
    if any(k.startswith(("backbone.", "neck.", "head.")) for k in keys):
        try:
            return "transformers", keymaps.transformers_to_official(sd)
        except KeyError as e:
            raise WeightsError(f"{p}: transformers-layout file with a key of no Depth Anything model: {e}") from e
    if "cls_token" in sd and any(k.startswith("blocks.") for k in keys):
        if any(k.startswith("register_tokens") for k in keys):
            raise WeightsError(f"{p}: DINOv2 with registers; Depth Anything's encoder has no register tokens")
        return "dinov2", keymaps.dinov2_to_official(_unchunk(sd))
    raise WeightsError(f"{p}: unknown key layout (first keys: {', '.join(keys[:4])})")


def _unchunk(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """DINOv2 training checkpoints with ``block_chunks > 0`` nest blocks as ``blocks.<chunk>.<index>``; the
    inner index is already global, so dropping the chunk number gives the flat layout."""
    if not any(re.match(r"blocks\.\d+\.\d+\.", k) for k in sd):
        return sd
    return {re.sub(r"^blocks\.\d+\.(\d+)\.", r"blocks.\1.", k): v for k, v in sd.items()}
