"""What a weights file says about the network: ``config.json`` files and depthany's embedded spec.

* transformers ``DepthAnythingConfig`` (``model_type: depth_anything``) <-> :class:`~depthany.zoo.Arch`;
* the V1 ``PyTorchModelHubMixin`` ``config.json`` (``encoder``, ``features``, ``out_channels``, ...);
* depthany's own JSON spec, stored in safetensors metadata so the file describes itself.

Missing fields in a transformers config take transformers' own defaults (configs on the Hub store only the
values that differ from them), so ``num_hidden_layers`` absent means 12, for example.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from torch import Tensor

from .. import zoo
from ..models.dpt import HEAD_HIDDEN
from .errors import WeightsError

SPEC_METADATA_KEY = "depthany_spec"
REASSEMBLE_FACTORS = [4, 2, 1, 0.5]  # fixed by the DPT head (ConvTranspose x4, x2, identity, stride-2 conv)

# transformers' defaults: Dinov2Config fields, and the backbone DepthAnythingConfig builds when it has none.
_DINOV2_DEFAULTS: dict[str, Any] = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                                    "mlp_ratio": 4, "image_size": 224, "patch_size": 14,
                                    "use_swiglu_ffn": False, "out_indices": None}
_DA_DEFAULT_BACKBONE: dict[str, Any] = {"image_size": 518, "hidden_size": 384, "num_attention_heads": 6,
                                        "out_indices": [9, 10, 11, 12]}


def encoder_from_dims(embed_dim: int, depth: int, num_heads: int, ffn: zoo.FfnKind = "mlp",
                      mlp_ratio: float = 4.0, patch_size: int = zoo.PATCH_SIZE, pos_grid: int = zoo.POS_GRID
                      ) -> zoo.EncoderSpec:
    """The zoo encoder with these dimensions, or a custom one named ``custom-<dim>x<depth>``."""
    for enc in zoo.ENCODERS.values():
        probe = dataclasses.replace(enc, embed_dim=embed_dim, depth=depth, num_heads=num_heads, ffn=ffn,
                                    mlp_ratio=mlp_ratio, patch_size=patch_size, pos_grid=pos_grid)
        if probe == enc:
            return enc
    return zoo.EncoderSpec(f"custom-{embed_dim}x{depth}", embed_dim, depth, num_heads, ffn, mlp_ratio,
                           patch_size, pos_grid)


def _family_for(layers: tuple[int, ...], depth: int) -> zoo.Family:
    """V1 tapped the last four blocks; anything else is the V2 layout."""
    return "v1" if layers == tuple(range(depth - 4, depth)) else "v2"


def arch_from_config(cfg: dict[str, Any], where: Path | str = "config.json") -> zoo.Arch:
    """Architecture from a transformers ``DepthAnythingConfig`` dict or a V1 hub ``config.json`` dict.

    Raises:
        WeightsError: naming ``where``, for a config that is not Depth Anything or uses unsupported options.
    """
    try:
        if "model_name" in cfg and "model_type" not in cfg:
            return arch_from_da3_config(cfg, where)
        if cfg.get("model_type") == "depth_anything":
            return _arch_from_transformers(cfg, where)
        if "encoder" in cfg:
            return _arch_from_v1_hub(cfg, where)
    except (TypeError, ValueError, KeyError) as e:
        if isinstance(e, WeightsError):
            raise
        raise WeightsError(f"{where}: invalid Depth Anything config ({type(e).__name__}: {e})") from e
    raise WeightsError(f"{where}: not a Depth Anything config (no model_type 'depth_anything', no 'encoder' and "
                       "no DA3 'model_name')")


def arch_from_da3_config(cfg: dict[str, Any], where: Path | str = "config.json") -> zoo.Arch:
    """Architecture from a Depth Anything 3 ``config.json``: the Hub mixin stores the constructor argument
    ``model_name``, an official preset (``configs/<model_name>.yaml``).

    Raises:
        WeightsError: naming ``where``, for an unknown or unsupported preset.
    """
    name = cfg.get("model_name")
    if not isinstance(name, str):
        raise WeightsError(f"{where}: model_name must be a string, got {name!r}")
    if name.startswith("da3nested"):
        raise WeightsError(f"{where}: {name} (nested any-view + metric) is not supported; use the any-view and "
                           "DA3Metric models separately")
    if name not in zoo.DA3_PRESETS:
        raise WeightsError(f"{where}: unknown Depth Anything 3 model_name {name!r} (known: "
                           f"{', '.join(zoo.DA3_PRESETS)})")
    return zoo.MODELS[zoo.DA3_PRESETS[name]].arch


def da3_config(arch: zoo.Arch) -> dict[str, Any]:
    """The official ``config.json`` for a DA3 architecture (``{"model_name": preset}``).

    Raises:
        ValueError: ``arch`` is not one of the published DA3 networks (the format can only name a preset).
    """
    preset = zoo.da3_preset(arch)
    if preset is None:
        raise ValueError("the official Depth Anything 3 layout names a preset in config.json and cannot describe "
                         "this architecture; use --to depthany instead")
    return {"model_name": preset}


def _arch_from_transformers(cfg: dict[str, Any], where: Path | str) -> zoo.Arch:
    given = cfg.get("backbone_config")
    bb = {**_DINOV2_DEFAULTS, **(given if isinstance(given, dict) else _DA_DEFAULT_BACKBONE)}
    if bb.get("model_type", "dinov2") != "dinov2" or cfg.get("backbone") not in (None, ""):
        raise WeightsError(f"{where}: only DINOv2 backbones are supported, got {bb.get('model_type') or cfg['backbone']}")
    head_hidden = int(cfg.get("head_hidden_size", HEAD_HIDDEN))
    factors = list(cfg.get("reassemble_factors", REASSEMBLE_FACTORS))
    if head_hidden != HEAD_HIDDEN or factors != REASSEMBLE_FACTORS:
        raise WeightsError(f"{where}: head_hidden_size {head_hidden} / reassemble_factors {factors} are not the "
                           f"Depth Anything values ({HEAD_HIDDEN} / {REASSEMBLE_FACTORS})")
    patch = int(bb["patch_size"])
    enc = encoder_from_dims(int(bb["hidden_size"]), int(bb["num_hidden_layers"]), int(bb["num_attention_heads"]),
                            "swiglu" if bb["use_swiglu_ffn"] else "mlp", float(bb["mlp_ratio"]), patch,
                            int(bb["image_size"]) // patch)
    indices = bb["out_indices"] or [enc.depth - 3, enc.depth - 2, enc.depth - 1, enc.depth]
    layers = tuple(int(i) - 1 for i in indices)  # transformers counts the embedding output as stage 0
    kind = cfg.get("depth_estimation_type", "relative")
    max_depth = cfg.get("max_depth", 1)
    if kind == "relative" and max_depth not in (None, 1):
        raise WeightsError(f"{where}: a relative model with max_depth {max_depth} (transformers would scale the "
                           "output by it); depthany's relative models are unscaled")
    return zoo.Arch(enc, layers, int(cfg.get("fusion_hidden_size", 64)),
                    tuple(int(c) for c in cfg.get("neck_hidden_sizes", (48, 96, 192, 384))),  # type: ignore[arg-type]
                    kind, float(max_depth) if kind == "metric" else None, _family_for(layers, enc.depth))


def _arch_from_v1_hub(cfg: dict[str, Any], where: Path | str) -> zoo.Arch:
    name = cfg["encoder"]
    if name not in zoo.V1_LAYERS:
        raise WeightsError(f"{where}: unknown V1 encoder {name!r} (V1 has {', '.join(zoo.V1_LAYERS)})")
    if cfg.get("use_bn") or cfg.get("use_clstoken"):
        raise WeightsError(f"{where}: use_bn / use_clstoken are not used by any released model and not supported")
    arch = zoo.make_arch(name, "v1")
    c0, c1, c2, c3 = (int(c) for c in cfg.get("out_channels", arch.out_channels))
    return dataclasses.replace(arch, features=int(cfg.get("features", arch.features)), out_channels=(c0, c1, c2, c3))


def v1_hub_config(arch: zoo.Arch) -> dict[str, Any]:
    """The V1 ``PyTorchModelHubMixin`` ``config.json`` for a relative V1 architecture.

    Raises:
        ValueError: the layout cannot describe ``arch`` (it has no field for layer taps, head kind or sizes).
    """
    official = zoo.make_arch(arch.encoder.name, "v1") if arch.encoder.name in zoo.V1_LAYERS else None
    if official is None or arch.family != "v1" or arch.head != "relative" or arch.encoder != official.encoder \
            or arch.layers != official.layers:
        raise ValueError("the V1 hub layout only describes the official relative V1 models (vits/vitb/vitl, last four "
                         "layers tapped); use --to depthany or --to transformers instead")
    return {"encoder": arch.encoder.name, "features": arch.features, "out_channels": list(arch.out_channels),
            "use_bn": False, "use_clstoken": False}


def arch_to_transformers_config(arch: zoo.Arch) -> dict[str, Any]:
    """A transformers ``DepthAnythingConfig`` dict for ``arch`` (what ``save_pretrained`` would write).

    Raises:
        ValueError: an architecture transformers cannot describe (V1 not tapping the last four blocks, V2
            tapping them, Video Depth Anything).
    """
    if arch.zoe is not None:
        raise ValueError("transformers has no ZoeDepth-on-Depth-Anything model; write a V1 metric (ZoeDepth) model "
                         "--to depthany or --to official")
    enc = arch.encoder
    if arch.temporal is not None:
        raise ValueError("transformers has no Video Depth Anything model; write --to depthany or --to official")
    if arch.is_da3:
        raise ValueError("transformers' DepthAnythingConfig cannot describe Depth Anything 3; use --to depthany or "
                         "--to official")
    if arch.family == "v1" and arch.layers != tuple(range(enc.depth - 4, enc.depth)):
        raise ValueError("transformers configs tell V1 from V2 only by the tapped layers; a V1 model must tap the "
                         "last four blocks")
    if arch.family == "v2" and arch.layers == tuple(range(enc.depth - 4, enc.depth)):
        raise ValueError("a V2 model tapping the last four blocks would read back as V1 from a transformers config")
    return {
        "architectures": ["DepthAnythingForDepthEstimation"],
        "model_type": "depth_anything",
        "backbone_config": {
            "model_type": "dinov2",
            "hidden_size": enc.embed_dim,
            "num_hidden_layers": enc.depth,
            "num_attention_heads": enc.num_heads,
            "mlp_ratio": enc.mlp_ratio if not float(enc.mlp_ratio).is_integer() else int(enc.mlp_ratio),
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
        "reassemble_factors": REASSEMBLE_FACTORS,
        "neck_hidden_sizes": list(arch.out_channels),
        "fusion_hidden_size": arch.features,
        "head_in_index": -1,
        "head_hidden_size": HEAD_HIDDEN,
        "depth_estimation_type": arch.head,
        # transformers multiplies every output by max_depth: 1 keeps relative outputs unscaled
        "max_depth": _int_if_whole(arch.max_depth) if arch.head == "metric" else 1,
    }


def _int_if_whole(x: float | None) -> float | int | None:
    return int(x) if x is not None and float(x).is_integer() else x


def infer_encoder(sd: dict[str, Tensor], where: Path | str = "state dict") -> zoo.EncoderSpec:
    """The zoo encoder implied by an official-named state dict (embed dim, depth, FFN kind); ZoeDepth state
    dicts (``core.core.pretrained.*``) too.

    Raises:
        WeightsError: no encoder keys, or dimensions that match no zoo encoder.
    """
    if any(k.startswith("model.backbone.pretrained.") for k in sd):
        raise WeightsError(f"{where}: a Depth Anything 3 checkpoint without its config.json; name the model with "
                           f"--model (one of: {', '.join(n for n, s in zoo.MODELS.items() if s.arch.is_da3)})")
    if "core.core.pretrained.cls_token" in sd:
        sd = {k.removeprefix("core.core."): v for k, v in sd.items() if k.startswith("core.core.")}
    if "pretrained.cls_token" not in sd:
        raise WeightsError(f"{where}: no pretrained.cls_token, so no DINOv2 encoder in this file")
    dim = int(sd["pretrained.cls_token"].shape[-1])
    blocks = [int(k.split(".")[2]) for k in sd if k.startswith("pretrained.blocks.")]
    depth = 1 + max(blocks, default=-1)
    for enc in zoo.ENCODERS.values():
        if enc.embed_dim == dim and enc.depth == depth:
            return enc
    raise WeightsError(f"{where}: no zoo encoder has embed dim {dim} and {depth} blocks")


def spec_to_json(spec: zoo.ModelSpec) -> str:
    """Serialise a model spec (architecture, preprocessing, name, licence) for self-describing files."""
    a, p = spec.arch, spec.preprocess
    arch: dict[str, Any] = {"encoder": dataclasses.asdict(a.encoder), "layers": list(a.layers), "features": a.features,
                            "out_channels": list(a.out_channels), "head": a.head, "max_depth": a.max_depth,
                            "family": a.family}
    if a.zoe is not None:  # only ZoeDepth models carry the key, so other files are unchanged
        arch["zoe"] = dataclasses.asdict(a.zoe)
    if a.is_da3:  # likewise for Depth Anything 3's fields
        arch.update({"metric_focal": a.metric_focal, "views": dataclasses.asdict(a.views) if a.views else None,
                     "gaussian_head": a.gaussian_head})
    d: dict[str, Any] = {
        "name": spec.name,
        "licence": spec.licence,
        "description": spec.description,
        "arch": arch,
        "preprocess": dataclasses.asdict(p),
    }
    if a.temporal is not None:  # keys absent for image models, so older readers see the same JSON as before
        d["arch"]["temporal"] = dataclasses.asdict(a.temporal)
    if spec.video is not None:
        d["video"] = dataclasses.asdict(spec.video)
    return json.dumps(d)


def spec_from_json(text: str, where: Path | str = "metadata") -> zoo.ModelSpec:
    """Inverse of :func:`spec_to_json`.

    Raises:
        WeightsError: the text is not a valid depthany spec.
    """
    try:
        d = json.loads(text)
        a, p = d["arch"], d["preprocess"]
        enc = zoo.EncoderSpec(**a["encoder"])
        zoe = None
        if a.get("zoe") is not None:
            z = dict(a["zoe"])
            z["n_attractors"], z["img_size"] = tuple(z["n_attractors"]), tuple(z["img_size"])
            zoe = zoo.ZoeConfig(**z)
        temporal = zoo.TemporalSpec(**a["temporal"]) if a.get("temporal") is not None else None
        views = zoo.ViewAttention(**a["views"]) if a.get("views") else None  # fields absent in older files
        arch = zoo.Arch(enc, tuple(a["layers"]), int(a["features"]), tuple(a["out_channels"]), a["head"],
                        a["max_depth"], a["family"], zoe=zoe, temporal=temporal, metric_focal=a.get("metric_focal"),
                        views=views, gaussian_head=bool(a.get("gaussian_head")))
        pipeline = str(p.get("pipeline", "depth_anything"))
        if zoe is not None and pipeline == "depth_anything":  # ZoeDepth files written before its pipeline existed
            pipeline = zoo.ZOE_PRE.pipeline
        pre = zoo.Preprocess(int(p["input_size"]), int(p["multiple"]), tuple(p["mean"]), tuple(p["std"]),
                             bool(p["output_align_corners"]), pipeline,
                             p.get("resize_dtype", "float64"), p.get("resize", "lower_bound"))
        v = d.get("video")
        video = None if v is None else zoo.VideoWindows(**{**v, "keyframes": tuple(v["keyframes"])})
        return zoo.ModelSpec(str(d["name"]), arch, pre, (), d.get("licence", "unknown"),
                             description=d.get("description", ""), video=video)
    except (TypeError, ValueError, KeyError) as e:
        raise WeightsError(f"{where}: invalid depthany spec ({type(e).__name__}: {e})") from e
