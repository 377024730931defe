"""An independent functional re-implementation of the official Depth Anything forward pass, for tests.

Written from the upstream code's description (DepthAnything/Depth-Anything-V2 commit
a561b849ebae10a6f5ef49e26c83cbbcd36c71bf: ``depth_anything_v2/dinov2.py`` with ``dinov2_layers/*.py``,
``depth_anything_v2/dpt.py`` and ``util/blocks.py``; V1 LiheYoung/Depth-Anything commit
1d03336771fe09c5398ffdd211441e33941a97dc ``depth_anything/dpt.py``; docs/reference/official_facts.md) with plain
tensor ops reading the state dict: explicit softmax attention instead of SDPA, erf GELU, functional convolutions,
the official positional-embedding rule, no depthany module code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from depthany import zoo

Sd = dict[str, torch.Tensor]


def _pos_embed(sd: Sd, h: int, w: int, by_size: bool = False) -> torch.Tensor:
    pos = sd["pretrained.pos_embed"].float()
    n = pos.shape[1] - 1
    grid = int(math.sqrt(n))
    if n == h * w and h == w:
        return pos
    patch = pos[:, 1:].reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
    if by_size:  # what transformers does
        patch = F.interpolate(patch, size=(h, w), mode="bicubic", align_corners=False)
    else:  # the official DINOv2 rule
        patch = F.interpolate(patch, scale_factor=((h + 0.1) / grid, (w + 0.1) / grid), mode="bicubic",
                              align_corners=False, antialias=False)
    assert patch.shape[-2:] == (h, w)
    return torch.cat([pos[:, :1], patch.permute(0, 2, 3, 1).reshape(1, h * w, -1)], dim=1)


def _linear(sd: Sd, name: str, x: torch.Tensor) -> torch.Tensor:
    return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def _ln(sd: Sd, name: str, x: torch.Tensor) -> torch.Tensor:
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-6) * sd[f"{name}.weight"] + sd[f"{name}.bias"]


def _block(sd: Sd, i: int, x: torch.Tensor, heads: int) -> torch.Tensor:
    p = f"pretrained.blocks.{i}"
    b, n, d = x.shape
    y = _ln(sd, f"{p}.norm1", x)
    qkv = _linear(sd, f"{p}.attn.qkv", y).reshape(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * (d // heads) ** -0.5, qkv[1], qkv[2]
    att = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
    y = _linear(sd, f"{p}.attn.proj", (att @ v).transpose(1, 2).reshape(b, n, d))
    x = x + sd[f"{p}.ls1.gamma"] * y
    y = _ln(sd, f"{p}.norm2", x)
    y = _linear(sd, f"{p}.mlp.fc2", 0.5 * (h := _linear(sd, f"{p}.mlp.fc1", y)) * (1 + torch.erf(h / math.sqrt(2))))
    return x + sd[f"{p}.ls2.gamma"] * y


def _conv(sd: Sd, name: str, x: torch.Tensor, padding: int = 0, stride: int = 1) -> torch.Tensor:
    return F.conv2d(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"), stride=stride, padding=padding)


def _rcu(sd: Sd, name: str, x: torch.Tensor) -> torch.Tensor:
    y = _conv(sd, f"{name}.conv1", torch.relu(x), padding=1)
    return _conv(sd, f"{name}.conv2", torch.relu(y), padding=1) + x


def _fuse(sd: Sd, k: int, x: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int] | None) -> torch.Tensor:
    name = f"depth_head.scratch.refinenet{k}"
    if skip is not None:
        x = x + _rcu(sd, f"{name}.resConfUnit1", skip)
    x = _rcu(sd, f"{name}.resConfUnit2", x)
    up = dict(size=size) if size is not None else dict(scale_factor=2)
    x = F.interpolate(x, **up, mode="bilinear", align_corners=True)
    return _conv(sd, f"{name}.out_conv", x)


def official_forward(sd: Sd, arch: zoo.Arch, x: torch.Tensor, pos_by_size: bool = False) -> torch.Tensor:
    """The official V1/V2/metric forward, (B, 3, H, W) normalised -> (B, H, W)."""
    b, _, hh, ww = x.shape
    ph, pw = hh // 14, ww // 14
    t = F.conv2d(x, sd["pretrained.patch_embed.proj.weight"], sd["pretrained.patch_embed.proj.bias"], stride=14)
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat([sd["pretrained.cls_token"].expand(b, -1, -1), t], dim=1) + _pos_embed(sd, ph, pw, pos_by_size)
    taps = []
    for i in range(max(arch.layers) + 1):
        t = _block(sd, i, t, arch.encoder.num_heads)
        if i in arch.layers:
            taps.append(_ln(sd, "pretrained.norm", t)[:, 1:])
    feats = []
    for k, tok in enumerate(taps):
        f = _conv(sd, f"depth_head.projects.{k}", tok.transpose(1, 2).reshape(b, -1, ph, pw))
        w = sd.get(f"depth_head.resize_layers.{k}.weight")
        if k in (0, 1):
            f = F.conv_transpose2d(f, w, sd[f"depth_head.resize_layers.{k}.bias"], stride=4 if k == 0 else 2)
        elif k == 3:
            f = _conv(sd, "depth_head.resize_layers.3", f, padding=1, stride=2)
        feats.append(F.conv2d(f, sd[f"depth_head.scratch.layer{k + 1}_rn.weight"], padding=1))
    l1, l2, l3, l4 = feats
    p = _fuse(sd, 4, l4, None, l3.shape[2:])
    p = _fuse(sd, 3, p, l3, l2.shape[2:])
    p = _fuse(sd, 2, p, l2, l1.shape[2:])
    p = _fuse(sd, 1, p, l1, None)
    out = _conv(sd, "depth_head.scratch.output_conv1", p, padding=1)
    out = F.interpolate(out, (ph * 14, pw * 14), mode="bilinear", align_corners=True)
    out = torch.relu(_conv(sd, "depth_head.scratch.output_conv2.0", out, padding=1))
    out = _conv(sd, "depth_head.scratch.output_conv2.2", out)
    if arch.head == "metric":
        return (torch.sigmoid(out) * arch.max_depth).squeeze(1)
    out = torch.relu(out)
    if arch.family == "v1":
        out = F.interpolate(out, size=(hh, ww), mode="bilinear", align_corners=True)
    return torch.relu(out).squeeze(1)
