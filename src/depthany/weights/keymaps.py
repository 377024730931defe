"""Key tables between the official Depth Anything names and the other published layouts.

* official: ``pretrained.*`` (DINOv2) + ``depth_head.*`` (DPT). Our modules use exactly these names.
* transformers (``DepthAnythingForDepthEstimation``): ``backbone.*``, ``neck.*``, ``head.*``. On-disk files on the
  Hub use the legacy attention names (``attention.attention.query``, ``attention.output.dense``,
  ``mlp.weights_in``); transformers >= 5 renames them in memory to ``q_proj``/``o_proj``/``gate_proj``... Both
  are accepted here; files are written with the legacy names.
* DINOv2 pretraining checkpoints: the encoder names without the ``pretrained.`` prefix.

All functions are pure dict-of-tensor transforms; they never build a model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

StateDict = dict[str, Tensor]

# Encoder-level renames, official suffix -> transformers suffix (legacy on-disk names).
_EMBED = {
    "cls_token": "embeddings.cls_token",
    "mask_token": "embeddings.mask_token",
    "pos_embed": "embeddings.position_embeddings",
    "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
    "norm.weight": "layernorm.weight",
    "norm.bias": "layernorm.bias",
}
_BLOCK = {
    "norm1": "norm1",
    "norm2": "norm2",
    "attn.proj": "attention.output.dense",
    "ls1.gamma": "layer_scale1.lambda1",
    "ls2.gamma": "layer_scale2.lambda1",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "mlp.w12": "mlp.weights_in",
    "mlp.w3": "mlp.weights_out",
}
# transformers >= 5 in-memory names -> legacy on-disk names
_NEW_TO_LEGACY = [
    (".attention.q_proj.", ".attention.attention.query."),
    (".attention.k_proj.", ".attention.attention.key."),
    (".attention.v_proj.", ".attention.attention.value."),
    (".attention.o_proj.", ".attention.output.dense."),
    (".mlp.down_proj.", ".mlp.weights_out."),
]
_RCU = {"resConfUnit1": "residual_layer1", "resConfUnit2": "residual_layer2"}
_CONV = {"conv1": "convolution1", "conv2": "convolution2"}
_HEAD = {"output_conv1": "head.conv1", "output_conv2.0": "head.conv2", "output_conv2.2": "head.conv3"}


def official_to_transformers(sd: Mapping[str, Tensor]) -> StateDict:
    """Official keys -> transformers ``DepthAnythingForDepthEstimation`` keys (legacy on-disk names).

    The fused ``qkv`` projection is split into query/key/value (rows in q, k, v order).
    """
    out: StateDict = {}
    for key, t in sd.items():
        out.update(_official_key_to_hf(key, t))
    return out


def _official_key_to_hf(key: str, t: Tensor) -> StateDict:
    if key.startswith("pretrained."):
        rest = key[len("pretrained."):]
        if rest in _EMBED:
            return {f"backbone.{_EMBED[rest]}": t}
        m = re.fullmatch(r"blocks\.(\d+)\.(.+)", rest)
        if m:
            base, tail = f"backbone.encoder.layer.{m[1]}.", m[2]
            if tail in ("attn.qkv.weight", "attn.qkv.bias"):
                kind = tail.rsplit(".", 1)[1]
                parts = t.chunk(3, dim=0)
                return {f"{base}attention.attention.{n}.{kind}": x for n, x in zip(("query", "key", "value"), parts)}
            if tail in _BLOCK:  # LayerScale gammas
                return {base + _BLOCK[tail]: t}
            mod, kind = tail.rsplit(".", 1)
            if mod in _BLOCK:
                return {f"{base}{_BLOCK[mod]}.{kind}": t}
    elif key.startswith("depth_head."):
        rest = key[len("depth_head."):]
        m = re.fullmatch(r"projects\.(\d)\.(weight|bias)", rest)
        if m:
            return {f"neck.reassemble_stage.layers.{m[1]}.projection.{m[2]}": t}
        m = re.fullmatch(r"resize_layers\.(\d)\.(weight|bias)", rest)
        if m:
            return {f"neck.reassemble_stage.layers.{m[1]}.resize.{m[2]}": t}
        m = re.fullmatch(r"scratch\.layer(\d)_rn\.weight", rest)
        if m:
            return {f"neck.convs.{int(m[1]) - 1}.weight": t}
        m = re.fullmatch(r"scratch\.refinenet(\d)\.(.+)\.(weight|bias)", rest)
        if m:
            k, mod, kind = int(m[1]), m[2], m[3]
            base = f"neck.fusion_stage.layers.{4 - k}."
            if mod == "out_conv":
                return {f"{base}projection.{kind}": t}
            unit, conv = mod.split(".")
            return {f"{base}{_RCU[unit]}.{_CONV[conv]}.{kind}": t}
        m = re.fullmatch(r"scratch\.(output_conv1|output_conv2\.\d)\.(weight|bias)", rest)
        if m and m[1] in _HEAD:
            return {f"{_HEAD[m[1]]}.{m[2]}": t}
    raise KeyError(f"no transformers name for official key {key!r}")


def transformers_to_official(sd: Mapping[str, Tensor]) -> StateDict:
    """transformers keys (legacy or >= 5 names) -> official keys. q/k/v are fused back into ``qkv``.

    Raises:
        KeyError: for a key that belongs to neither layout (reported by the caller as "unexpected").
    """
    sd = normalise_transformers_names(sd)
    out: StateDict = {}
    qkv: dict[tuple[str, str], dict[str, Tensor]] = {}
    for key, t in sd.items():
        m = re.fullmatch(r"backbone\.encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)", key)
        if m:
            qkv.setdefault((m[1], m[3]), {})[m[2]] = t
            continue
        out[_hf_key_to_official(key)] = t
    for (i, kind), parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            missing = sorted({"query", "key", "value"} - set(parts))
            raise KeyError(f"layer {i} attention {kind}: missing {missing}")
        out[f"pretrained.blocks.{i}.attn.qkv.{kind}"] = _cat(parts["query"], parts["key"], parts["value"])
    return out


def normalise_transformers_names(sd: Mapping[str, Tensor]) -> StateDict:
    """Map transformers >= 5 in-memory names (q_proj, gate_proj/up_proj, ...) to the legacy on-disk names."""
    out: StateDict = {}
    gate_up: dict[str, dict[str, Tensor]] = {}
    for key, t in sd.items():
        m = re.fullmatch(r"(.*\.mlp\.)(gate_proj|up_proj)\.(weight|bias)", key)
        if m:
            gate_up.setdefault(f"{m[1]}weights_in.{m[3]}", {})[m[2]] = t
            continue
        for new, old in _NEW_TO_LEGACY:
            key = key.replace(new, old)
        out[key] = t
    for key, parts in gate_up.items():
        if set(parts) != {"gate_proj", "up_proj"}:
            raise KeyError(f"{key}: SwiGLU needs both gate_proj and up_proj, found only {sorted(parts)}")
        out[key] = _cat(parts["gate_proj"], parts["up_proj"])  # gate first: the half that goes through SiLU
    return out


def _cat(*parts: Tensor) -> Tensor:
    import torch

    return torch.cat(parts, dim=0)


_EMBED_REV = {v: k for k, v in _EMBED.items()}
_BLOCK_REV = {v: k for k, v in _BLOCK.items()}
_HEAD_REV = {v: k for k, v in _HEAD.items()}
_RCU_REV = {v: k for k, v in _RCU.items()}
_CONV_REV = {v: k for k, v in _CONV.items()}


def _hf_key_to_official(key: str) -> str:
    if key.startswith("backbone."):
        rest = key[len("backbone."):]
        if rest in _EMBED_REV:
            return f"pretrained.{_EMBED_REV[rest]}"
        m = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias|lambda1)", rest)
        if m:
            i, mod, kind = m.groups()
            if kind == "lambda1" and f"{mod}.lambda1" in _BLOCK_REV:
                return f"pretrained.blocks.{i}.{_BLOCK_REV[f'{mod}.lambda1']}"
            if mod in _BLOCK_REV:
                return f"pretrained.blocks.{i}.{_BLOCK_REV[mod]}.{kind}"
    m = re.fullmatch(r"neck\.reassemble_stage\.layers\.(\d)\.(projection|resize)\.(weight|bias)", key)
    if m:
        return f"depth_head.{'projects' if m[2] == 'projection' else 'resize_layers'}.{m[1]}.{m[3]}"
    m = re.fullmatch(r"neck\.convs\.(\d)\.weight", key)
    if m:
        return f"depth_head.scratch.layer{int(m[1]) + 1}_rn.weight"
    m = re.fullmatch(r"neck\.fusion_stage\.layers\.(\d)\.(.+)\.(weight|bias)", key)
    if m:
        base = f"depth_head.scratch.refinenet{4 - int(m[1])}."
        if m[2] == "projection":
            return f"{base}out_conv.{m[3]}"
        unit, conv = m[2].split(".")
        if unit in _RCU_REV and conv in _CONV_REV:
            return f"{base}{_RCU_REV[unit]}.{_CONV_REV[conv]}.{m[3]}"
    m = re.fullmatch(r"(head\.conv\d)\.(weight|bias)", key)
    if m and m[1] in _HEAD_REV:
        return f"depth_head.scratch.{_HEAD_REV[m[1]]}.{m[2]}"
    raise KeyError(key)


def dinov2_to_official(sd: Mapping[str, Tensor]) -> StateDict:
    """DINOv2 pretraining keys (``blocks.0.attn.qkv.weight``) -> encoder keys (``pretrained.blocks...``).

    The DINOv2 hub models are built with the same arguments as Depth Anything's encoder (518 px, patch 14,
    LayerScale, no registers), so the names differ only by the ``pretrained.`` prefix.
    """
    return {f"pretrained.{k}": v for k, v in sd.items()}


def official_encoder_only(sd: Mapping[str, Tensor]) -> StateDict:
    """The ``pretrained.*`` part of a state dict, prefix stripped (DINOv2 pretraining layout)."""
    return {k[len("pretrained."):]: v for k, v in sd.items() if k.startswith("pretrained.")}
