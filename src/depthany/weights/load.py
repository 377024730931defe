"""Read weight files of every supported layout and load them strictly, with a readable key report.

Supported inputs (detected from the file, never from trust in its name):

* official ``.pth`` state dicts (V1, V2, V2 metric): flat ``pretrained.*`` / ``depth_head.*`` keys;
* the V1 hub layout: a folder with ``config.json`` (``encoder``, ``features``, ...) + ``pytorch_model.bin`` or
  ``model.safetensors``;
* Hugging Face transformers folders: ``config.json`` (``model_type: depth_anything``) + ``model.safetensors`` or
  ``pytorch_model.bin``, legacy or new attention names;
* DINOv2 pretraining checkpoints (``dinov2_vit?14_pretrain.pth``), encoder only;
* depthany's own ``.safetensors`` whose metadata carries the model spec, and depthany training checkpoints.

Pickled files are read with ``torch.load(weights_only=True)``: no arbitrary object is ever unpickled.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .. import zoo
from . import keymaps

Layout = Literal["official", "transformers", "dinov2", "depthany"]
OPTIONAL_KEYS = frozenset({"pretrained.mask_token"})  # unused at inference; absent from some ports
SPEC_METADATA_KEY = "depthany_spec"


class WeightsError(ValueError):
    """A weight file is missing, unreadable, of an unknown layout, or does not fit the model."""


@dataclass
class Checkpoint:
    """Weights in official key names plus what the file says about itself.

    Attributes:
        state_dict: official-named tensors (``pretrained.*``, ``depth_head.*``).
        path: the file (or folder) read.
        layout: the layout detected.
        arch: the architecture the file describes, when it says (transformers / V1 hub / depthany configs).
        spec: the full depthany model spec, for depthany files.
        extra: anything else found (training state, metadata).
    """

    state_dict: dict[str, Tensor]
    path: Path
    layout: Layout
    arch: zoo.Arch | None = None
    spec: zoo.ModelSpec | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class KeyReport:
    """Differences between a state dict and a model's expected keys and shapes."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def format(self, limit: int = 12) -> str:
        """Human-readable summary, at most ``limit`` lines per category."""
        lines = []
        for title, items in (("missing", self.missing), ("unexpected", self.unexpected)):
            if items:
                lines.append(f"  {len(items)} {title} key(s): " + ", ".join(items[:limit])
                             + (" ..." if len(items) > limit else ""))
        if self.mismatched:
            lines.append(f"  {len(self.mismatched)} key(s) with the wrong shape:")
            lines += [f"    {k}: model {list(e)} vs file {list(g)}" for k, e, g in self.mismatched[:limit]]
        return "\n".join(lines)


def compare_keys(model: nn.Module, sd: dict[str, Tensor], prefix: str = "") -> KeyReport:
    """Compare ``sd`` with ``model.state_dict()`` (keys prefixed by ``prefix``); optional keys may be absent."""
    expected = {prefix + k: v.shape for k, v in model.state_dict().items()}
    report = KeyReport()
    report.missing = sorted(k for k in expected if k not in sd and k not in OPTIONAL_KEYS)
    report.unexpected = sorted(k for k in sd if k not in expected)
    report.mismatched = [(k, tuple(expected[k]), tuple(sd[k].shape)) for k in sorted(sd)
                         if k in expected and tuple(sd[k].shape) != tuple(expected[k])]
    return report


def load_into(model: nn.Module, ckpt: Checkpoint, encoder_only: bool = False) -> KeyReport:
    """Strictly load ``ckpt`` into ``model`` (a DepthAnything), casting to the model's dtype.

    Args:
        encoder_only: load only ``pretrained.*`` (DINOv2 initialisation); the head keeps its initialisation.

    Raises:
        WeightsError: naming the file and listing missing / unexpected / mis-shaped keys.
    """
    sd = ckpt.state_dict
    target: nn.Module = model
    prefix = ""
    if encoder_only or ckpt.layout == "dinov2":
        target, prefix = model.pretrained, "pretrained."  # type: ignore[assignment]
        sd = {k: v for k, v in sd.items() if k.startswith(prefix) or not encoder_only}
    report = compare_keys(target, sd, prefix)
    if not report.ok:
        raise WeightsError(f"{ckpt.path}: weights do not fit the model ({_describe(model)}):\n{report.format()}")
    own = target.state_dict()
    with torch.no_grad():
        for k, t in own.items():
            src = sd.get(prefix + k)
            if src is not None:
                t.copy_(src.to(dtype=t.dtype))
            elif prefix + k in OPTIONAL_KEYS:
                t.zero_()  # e.g. mask_token, unused at inference
    return report


def _describe(model: nn.Module) -> str:
    arch = getattr(model, "arch", None)
    if arch is None:
        return type(model).__name__
    return f"{arch.encoder.name}, {arch.family}, {arch.head} head, layers {list(arch.layers)}"


# ----------------------------------------------------------------------------------------------- reading


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read any supported weights file or folder into official key names.

    Raises:
        WeightsError: the path does not exist, cannot be parsed, or holds an unknown layout.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise WeightsError(f"{p}: no such weights file or folder")
    try:
        if p.is_dir():
            return _read_folder(p)
        if p.suffix == ".safetensors":
            return _read_safetensors_file(p)
        return _from_state_dict(p, _torch_load(p))
    except WeightsError:
        raise
    except Exception as e:  # any parser failure is reported against the file, never as a bare traceback
        raise WeightsError(f"{p}: cannot read weights ({type(e).__name__}: {e})") from e


def _torch_load(p: Path) -> dict[str, Any]:
    if p.stat().st_size == 0:
        raise WeightsError(f"{p}: file is empty")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(p))
    except Exception as e:
        raise WeightsError(
            f"{p}: not a readable PyTorch checkpoint, or it holds objects other than tensors "
            f"(refused: files are loaded with weights_only=True) ({type(e).__name__}: {str(e).splitlines()[0]})"
        ) from e
    if not isinstance(obj, dict):
        raise WeightsError(f"{p}: expected a state dict, found {type(obj).__name__}")
    return obj


def _read_safetensors_file(p: Path) -> Checkpoint:
    from safetensors import safe_open

    if p.stat().st_size == 0:
        raise WeightsError(f"{p}: file is empty")
    with safe_open(str(p), framework="pt") as f:
        meta = f.metadata() or {}
        sd = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    ckpt = _from_state_dict(p, sd)
    if SPEC_METADATA_KEY in meta:
        ckpt.spec = spec_from_json(meta[SPEC_METADATA_KEY])
        ckpt.arch = ckpt.spec.arch
        ckpt.layout = "depthany"
    ckpt.extra["metadata"] = meta
    return ckpt


def _read_folder(p: Path) -> Checkpoint:
    cfg_path = p / "config.json"
    weights = next((p / n for n in ("model.safetensors", "pytorch_model.bin") if (p / n).exists()), None)
    if weights is None:
        raise WeightsError(f"{p}: folder has neither model.safetensors nor pytorch_model.bin")
    ckpt = read_checkpoint(weights)
    if cfg_path.exists():
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise WeightsError(f"{cfg_path}: not valid JSON ({e})") from e
        ckpt.arch = ckpt.arch or arch_from_config(cfg, cfg_path)
    ckpt.path = p
    return ckpt


def _from_state_dict(p: Path, obj: dict[str, Any]) -> Checkpoint:
    extra: dict[str, Any] = {}
    # depthany training checkpoints and common wrappers keep the weights under a key
    for wrapper in ("model", "state_dict", "module"):
        if wrapper in obj and isinstance(obj[wrapper], dict) and not isinstance(obj[wrapper], Tensor):
            extra = {k: v for k, v in obj.items() if k != wrapper}
            obj = obj[wrapper]
            break
    sd = {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not sd:
        raise WeightsError(f"{p}: no tensors found")
    keys = list(sd)
    if any(k.startswith("pretrained.") or k.startswith("depth_head.") for k in keys):
        layout: Layout = "official"
    elif any(k.startswith(("backbone.", "neck.", "head.")) for k in keys):
        try:
            sd = keymaps.transformers_to_official(sd)
        except KeyError as e:
            raise WeightsError(f"{p}: transformers-layout file with an unknown key {e}") from e
        layout = "transformers"
    elif "cls_token" in sd and any(k.startswith("blocks.") for k in keys):
        if any(k.startswith("register_tokens") for k in keys):
            raise WeightsError(f"{p}: DINOv2 with registers is not the Depth Anything encoder (no registers)")
        sd = keymaps.dinov2_to_official(sd)
        layout = "dinov2"
    else:
        raise WeightsError(f"{p}: unknown key layout (first keys: {', '.join(keys[:4])})")
    ckpt = Checkpoint(sd, p, layout, extra=extra)
    if isinstance(extra.get("spec"), str):
        ckpt.spec = spec_from_json(extra["spec"])
        ckpt.arch = ckpt.spec.arch
    return ckpt


# ----------------------------------------------------------------------------------------- configs / arch


def arch_from_config(cfg: dict[str, Any], where: Path | str = "config.json") -> zoo.Arch:
    """Architecture from a transformers ``DepthAnythingConfig`` or a V1 hub ``config.json``."""
    if cfg.get("model_type") == "depth_anything":
        bb = cfg.get("backbone_config") or {}
        dim = int(bb.get("hidden_size", 384))
        enc = next((e for e in zoo.ENCODERS.values() if e.embed_dim == dim), None)
        if enc is None:
            raise WeightsError(f"{where}: no known encoder with hidden_size {dim}")
        layers = tuple(int(i) - 1 for i in bb.get("out_indices", [9, 10, 11, 12]))  # 1-based in transformers
        family: zoo.Family = "v1" if layers == tuple(range(enc.depth - 4, enc.depth)) else "v2"
        kind = cfg.get("depth_estimation_type", "relative")
        max_depth = float(cfg["max_depth"]) if kind == "metric" else None
        return zoo.Arch(enc, layers, int(cfg.get("fusion_hidden_size", 64)),
                        tuple(cfg.get("neck_hidden_sizes", (48, 96, 192, 384))), kind, max_depth, family)
    if "encoder" in cfg:  # V1 PyTorchModelHubMixin config
        name = cfg["encoder"]
        if name not in zoo.V1_LAYERS:
            raise WeightsError(f"{where}: unknown V1 encoder {name!r}")
        arch = zoo.make_arch(name, "v1")
        return zoo.Arch(arch.encoder, arch.layers, int(cfg.get("features", arch.features)),
                        tuple(cfg.get("out_channels", arch.out_channels)), "relative", None, "v1")
    raise WeightsError(f"{where}: not a Depth Anything config (no model_type 'depth_anything' or 'encoder')")


def arch_to_transformers_config(arch: zoo.Arch) -> dict[str, Any]:
    """A transformers ``DepthAnythingConfig`` dict for ``arch`` (what ``save_pretrained`` writes)."""
    enc = arch.encoder
    return {
        "architectures": ["DepthAnythingForDepthEstimation"],
        "model_type": "depth_anything",
        "backbone_config": {
            "model_type": "dinov2",
            "hidden_size": enc.embed_dim,
            "num_hidden_layers": enc.depth,
            "num_attention_heads": enc.num_heads,
            "mlp_ratio": int(enc.mlp_ratio),
            "image_size": enc.pos_grid * enc.patch_size,
            "patch_size": enc.patch_size,
            "layerscale_value": 1.0,
            "use_swiglu_ffn": enc.ffn == "swiglu",
            "out_indices": [i + 1 for i in arch.layers],
            "out_features": [f"stage{i + 1}" for i in arch.layers],
            "reshape_hidden_states": False,
            "apply_layernorm": True,
        },
        "patch_size": enc.patch_size,
        "reassemble_hidden_size": enc.embed_dim,
        "reassemble_factors": [4, 2, 1, 0.5],
        "neck_hidden_sizes": list(arch.out_channels),
        "fusion_hidden_size": arch.features,
        "head_in_index": -1,
        "head_hidden_size": 32,
        "depth_estimation_type": arch.head,
        # transformers types max_depth as int; the official metric models use 20 and 80
        "max_depth": _int_if_whole(arch.max_depth) if arch.head == "metric" else 1,
    }


def _int_if_whole(x: float | None) -> float | int | None:
    return int(x) if x is not None and float(x).is_integer() else x


def infer_encoder(sd: dict[str, Tensor]) -> zoo.EncoderSpec:
    """The encoder size implied by an official-named state dict (embed dim, depth, FFN kind)."""
    if "pretrained.cls_token" not in sd:
        raise WeightsError("state dict has no pretrained.cls_token")
    dim = sd["pretrained.cls_token"].shape[-1]
    depth = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("pretrained.blocks."))
    for enc in zoo.ENCODERS.values():
        if enc.embed_dim == dim and enc.depth == depth:
            return enc
    raise WeightsError(f"no known encoder with embed dim {dim} and {depth} blocks")


def spec_to_json(spec: zoo.ModelSpec) -> str:
    """Serialise a model spec (architecture, preprocessing, name, licence) for self-describing files."""
    a, p = spec.arch, spec.preprocess
    return json.dumps({
        "name": spec.name,
        "licence": spec.licence,
        "description": spec.description,
        "arch": {"encoder": a.encoder.__dict__, "layers": list(a.layers), "features": a.features,
                 "out_channels": list(a.out_channels), "head": a.head, "max_depth": a.max_depth,
                 "family": a.family},
        "preprocess": {"input_size": p.input_size, "multiple": p.multiple, "mean": list(p.mean),
                       "std": list(p.std), "output_align_corners": p.output_align_corners},
    })


def spec_from_json(text: str) -> zoo.ModelSpec:
    """Inverse of :func:`spec_to_json`."""
    d = json.loads(text)
    a, p = d["arch"], d["preprocess"]
    enc = zoo.EncoderSpec(**a["encoder"])
    arch = zoo.Arch(enc, tuple(a["layers"]), a["features"], tuple(a["out_channels"]), a["head"],
                    a["max_depth"], a["family"])
    pre = zoo.Preprocess(p["input_size"], p["multiple"], tuple(p["mean"]), tuple(p["std"]),
                         p["output_align_corners"])
    return zoo.ModelSpec(d["name"], arch, pre, (), d.get("licence", "unknown"), description=d.get("description", ""))
