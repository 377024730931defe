"""The official architectures written out here, independently of depthany's model code: key names and shapes,
parameter counts and FLOPs, for tests that check the zoo, the model and the FLOP counter against them.

Sources (docs/reference/official_facts.md has the details): DepthAnything/Depth-Anything-V2 at commit
a561b849ebae10a6f5ef49e26c83cbbcd36c71bf: ``depth_anything_v2/dinov2.py`` (``vit_small`` ... ``vit_giant2``,
``DINOv2()``: patch 14, img_size 518, LayerScale, SwiGLU for vitg), ``depth_anything_v2/dinov2_layers/*.py``,
``depth_anything_v2/dpt.py`` (``DPTHead``) + ``util/blocks.py``, ``run.py`` (``model_configs``: features and
out_channels) and ``README.md`` (the "Params" column: 24.8M, 97.5M, 335.3M, 1.3B).
"""

from __future__ import annotations

import math

# embed dim, blocks, DPT features, out_channels, FFN (dinov2.py vit_* and DINOv2(); run.py model_configs)
REFERENCE = {
    "vits": (384, 12, 64, (48, 96, 192, 384), "mlp"),
    "vitb": (768, 12, 128, (96, 192, 384, 768), "mlp"),
    "vitl": (1024, 24, 256, (256, 512, 1024, 1024), "mlp"),
    "vitg": (1536, 40, 384, (1536, 1536, 1536, 1536), "swiglu"),
}
KEY_COUNTS = {"vits": 239, "vitb": 239, "vitl": 407, "vitg": 631}
# Depth-Anything-V2 README.md, "Params" column of the model table (rounded as published).
README_PARAMS = {"vits": "24.8M", "vitb": "97.5M", "vitl": "335.3M", "vitg": "1.3B"}


def reference_shapes(enc: str) -> dict[str, tuple[int, ...]]:
    """The official state-dict keys and shapes of one encoder size, written out from the upstream modules."""
    d, depth, f, c, ffn = REFERENCE[enc]
    s: dict[str, tuple[int, ...]] = {
        "pretrained.cls_token": (1, 1, d), "pretrained.pos_embed": (1, 1370, d), "pretrained.mask_token": (1, d),
        "pretrained.patch_embed.proj.weight": (d, 3, 14, 14), "pretrained.patch_embed.proj.bias": (d,),
        "pretrained.norm.weight": (d,), "pretrained.norm.bias": (d,),
    }
    for i in range(depth):
        b = f"pretrained.blocks.{i}."
        s.update({b + "norm1.weight": (d,), b + "norm1.bias": (d,), b + "attn.qkv.weight": (3 * d, d),
                  b + "attn.qkv.bias": (3 * d,), b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
                  b + "ls1.gamma": (d,), b + "norm2.weight": (d,), b + "norm2.bias": (d,), b + "ls2.gamma": (d,)})
        if ffn == "swiglu":  # swiglu_ffn.py: hidden = int(4d * 2/3) rounded up to a multiple of 8 = 4096
            s.update({b + "mlp.w12.weight": (8192, 1536), b + "mlp.w12.bias": (8192,),
                      b + "mlp.w3.weight": (1536, 4096), b + "mlp.w3.bias": (1536,)})
        else:
            s.update({b + "mlp.fc1.weight": (4 * d, d), b + "mlp.fc1.bias": (4 * d,),
                      b + "mlp.fc2.weight": (d, 4 * d), b + "mlp.fc2.bias": (d,)})
    h = "depth_head."
    for k in range(4):
        s.update({f"{h}projects.{k}.weight": (c[k], d, 1, 1), f"{h}projects.{k}.bias": (c[k],),
                  f"{h}scratch.layer{k + 1}_rn.weight": (f, c[k], 3, 3)})
    for k, ksz in ((0, 4), (1, 2), (3, 3)):
        s.update({f"{h}resize_layers.{k}.weight": (c[k], c[k], ksz, ksz), f"{h}resize_layers.{k}.bias": (c[k],)})
    for r in range(1, 5):
        n = f"{h}scratch.refinenet{r}."
        s.update({n + "out_conv.weight": (f, f, 1, 1), n + "out_conv.bias": (f,)})
        for unit in ("resConfUnit1", "resConfUnit2"):
            for conv in ("conv1", "conv2"):
                s.update({f"{n}{unit}.{conv}.weight": (f, f, 3, 3), f"{n}{unit}.{conv}.bias": (f,)})
    s.update({f"{h}scratch.output_conv1.weight": (f // 2, f, 3, 3), f"{h}scratch.output_conv1.bias": (f // 2,),
              f"{h}scratch.output_conv2.0.weight": (32, f // 2, 3, 3), f"{h}scratch.output_conv2.0.bias": (32,),
              f"{h}scratch.output_conv2.2.weight": (1, 32, 1, 1), f"{h}scratch.output_conv2.2.bias": (1,)})
    return s


def param_count(enc: str) -> int:
    """Parameters of one official encoder size: the sum over :func:`reference_shapes` (every key is a parameter)."""
    return sum(math.prod(shape) for shape in reference_shapes(enc).values())


def rounded_like_readme(n: int) -> str:
    """``24785089`` -> ``"24.8M"``, ``1258132225`` -> ``"1.3B"`` (the README's rounding)."""
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def dpt_flops(d: int, depth: int, features: int, out_channels: tuple[int, int, int, int], height: int, width: int,
              batch: int = 1) -> int:
    """FLOPs of one forward pass (multiply-add = 2) of a Depth Anything network with an MLP encoder, counted by
    hand from the upstream layer list: every matmul, convolution and attention product; no element-wise work
    (norms, activations, resizes, bias adds).

    Encoder, per block on T = h*w/196 + 1 tokens: qkv (3 d^2), proj (d^2), fc1 and fc2 (4 d^2 each) per token,
    plus q.k^T and attn.v (T^2 d each). Head (``DPTHead``): 1x1 projections at the patch grid (ph, pw); the
    transposed 4x4/s4 and 2x2/s2 and the 3x3/s2 resizes; the four 3x3 ``layer*_rn`` at 4x, 2x, 1x and half the
    grid; the refine nets (two 3x3 convs per residual unit, refinenet4 uses one unit, 1x1 ``out_conv`` after each
    upsampling: to the next level, then 2x); ``output_conv1`` (3x3, F -> F/2) at 8x the grid, then
    ``output_conv2`` (3x3 F/2 -> 32, 1x1 32 -> 1) at the input size.
    """
    ph, pw = height // 14, width // 14
    n, t = ph * pw, ph * pw + 1

    def conv(h: int, w: int, cin: int, cout: int, k: int) -> int:
        return 2 * h * w * cin * cout * k * k

    c0, c1, _, c3 = out_channels
    f = features
    half = ((ph + 1) // 2, (pw + 1) // 2)  # 3x3, stride 2, padding 1
    levels = [(4 * ph, 4 * pw), (2 * ph, 2 * pw), (ph, pw), half]
    total = conv(ph, pw, 3, d, 14)  # patch embedding
    total += depth * (2 * t * d * d * (3 + 1 + 4 + 4) + 2 * 2 * t * t * d)
    total += sum(conv(ph, pw, d, c, 1) for c in out_channels)
    total += 2 * n * 16 * c0 * c0 + 2 * n * 4 * c1 * c1 + conv(*half, c3, c3, 3)
    total += sum(conv(*levels[k], out_channels[k], f, 3) for k in range(4))

    def unit(hw: tuple[int, int]) -> int:
        return 2 * conv(*hw, f, f, 3)

    total += unit(levels[3]) + conv(*levels[2], f, f, 1)
    total += 2 * unit(levels[2]) + conv(*levels[1], f, f, 1)
    total += 2 * unit(levels[1]) + conv(*levels[0], f, f, 1)
    total += 2 * unit(levels[0]) + conv(8 * ph, 8 * pw, f, f, 1)
    total += conv(8 * ph, 8 * pw, f, f // 2, 3)
    total += conv(height, width, f // 2, 32, 3) + conv(height, width, 32, 1, 1)
    return batch * total
