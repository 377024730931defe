"""Parity off the square: our model against an independent functional re-implementation of the official forward.

At 518x518 the stored positional embedding is used as is, and transformers is a valid oracle (tests/test_models.py).
At any other size DINOv2 resizes the 37x37 embedding grid; the official code passes
``scale_factor=((h + 0.1) / 37, (w + 0.1) / 37)`` to bicubic ``F.interpolate``, while transformers passes
``size=(h, w)``. Both give an h x w grid, but sample it at different positions, so transformers' outputs differ
from the official ones at every non-square size. The oracle here is therefore written from the official
description (docs: depth_anything.md §1.2-1.3) with plain tensor ops reading the state dict: explicit
softmax attention instead of SDPA, functional convolutions, no depthany module code.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import lively_model, tiny_spec
from depthany import zoo
from depthany.weights import save_weights

Sd = dict[str, torch.Tensor]
SIZES = [(518, 686), (364, 490)]


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


def _input(h: int, w: int) -> torch.Tensor:
    return torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(h * w))


def _max_rel_diff(a: torch.Tensor, ref: torch.Tensor) -> float:
    rng = float(ref.max() - ref.min())
    assert rng > 0
    return float((a - ref).abs().max()) / rng


TINY = {"v2": tiny_spec("relative", "v2"), "v1": tiny_spec("relative", "v1"),
        "metric": tiny_spec("metric", "v2", 20.0)}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("kind", list(TINY))
def test_matches_official_forward_off_square(kind, size) -> None:
    """V1 / V2 / metric forward logic (tiny 6-block encoder, real 37x37 positional grid)."""
    spec = TINY[kind]
    model = lively_model(spec, seed=3)
    x = _input(*size)
    with torch.no_grad():
        ours = model(x)
        ref = official_forward(model.state_dict(), spec.arch, x)
    assert ours.shape == ref.shape == (1, *size)
    assert _max_rel_diff(ours, ref) <= 1e-4


def test_da2_small_matches_official_forward_at_518x686() -> None:
    """The real ViT-S/DPT sizes once, at the size a 640x480 photo is run at."""
    spec = zoo.get_spec("da2-small")
    model = lively_model(spec, seed=4)
    x = _input(518, 686)
    with torch.no_grad():
        ours = model(x)
        ref = official_forward(model.state_dict(), spec.arch, x)
    assert _max_rel_diff(ours, ref) <= 1e-4


def test_oracle_sees_layer_taps_and_pos_embed_rule() -> None:
    """The oracle must react to a wrong tap or a wrong interpolation rule by far more than the tolerance."""
    spec = TINY["v2"]
    sd = lively_model(spec, seed=3).state_dict()
    x = _input(364, 490)
    with torch.no_grad():
        ref = official_forward(sd, spec.arch, x)
        as_v1 = official_forward(sd, TINY["v1"].arch, x)
        by_size = official_forward(sd, spec.arch, x, pos_by_size=True)
    assert _max_rel_diff(as_v1, ref) > 1e-2
    assert _max_rel_diff(by_size, ref) > 1e-2


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_transformers_differs_off_square_only_by_pos_embed(size, tmp_path) -> None:
    """Why transformers is not the oracle here: it resizes the positional grid with size=, not the official
    scale factor. With the oracle switched to that rule the two agree, so that is the only difference."""
    transformers = pytest.importorskip("transformers")
    spec = TINY["v2"]
    sd = lively_model(spec, seed=5).state_dict()
    folder = save_weights(sd, spec, tmp_path / "hf", "transformers")
    theirs = transformers.DepthAnythingForDepthEstimation.from_pretrained(folder).eval()
    x = _input(*size)
    with torch.no_grad():
        hf = theirs(pixel_values=x).predicted_depth
        official = official_forward(sd, spec.arch, x)
        by_size = official_forward(sd, spec.arch, x, pos_by_size=True)
    assert _max_rel_diff(hf, official) > 1e-2
    assert _max_rel_diff(hf, by_size) <= 1e-4
