"""DINOv2 vision transformer (no registers, LayerScale, patch 14), as used by Depth Anything V1 and V2.

Attribute names follow the official checkpoints (``pretrained.blocks.0.attn.qkv``, ``pretrained.norm``, ...)
so official state dicts load with ``strict=True`` and no renaming. Sizes come from :mod:`depthany.zoo`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..zoo import EncoderSpec

LN_EPS = 1e-6
POS_OFFSET = 0.1  # DINOv2's interpolate_offset: scale factor (n + 0.1) / grid, see interpolate_pos_embed


class PatchEmbed(nn.Module):
    """(B, 3, H, W) -> (B, H/14 * W/14, D), row-major over the patch grid."""

    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a fused q, k, v projection (weight rows in q, k, v order)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        # Same maths as the official q*scale @ k^T -> softmax -> @ v; differs only by float rounding.
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    """Linear -> exact GELU -> Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLUFFN(nn.Module):
    """ViT-G feed-forward: ``w12`` gives [x1, x2]; output ``w3(silu(x1) * x2)``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class LayerScale(nn.Module):
    """Element-wise learned scale ``gamma`` (D,)."""

    def __init__(self, dim: int, init: float = 1.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x)))."""

    def __init__(self, spec: EncoderSpec, eps: float = LN_EPS) -> None:
        super().__init__()
        d = spec.embed_dim
        self.norm1 = nn.LayerNorm(d, eps=eps)
        self.attn = Attention(d, spec.num_heads)
        self.ls1 = LayerScale(d)
        self.norm2 = nn.LayerNorm(d, eps=eps)
        self.mlp: nn.Module = SwiGLUFFN(d, spec.ffn_hidden) if spec.ffn == "swiglu" else Mlp(d, spec.ffn_hidden)
        self.ls2 = LayerScale(d)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


def interpolate_pos_embed(pos_embed: Tensor, grid: int, ph: int, pw: int) -> Tensor:
    """Resize the stored (1, 1 + grid*grid, D) positional embedding to a ph x pw patch grid.

    Exactly the official DINOv2 rule: the patch part is resized bicubically (a=-0.75, no antialias) in float32
    with a *scale factor* of ((ph + 0.1) / grid, (pw + 0.1) / grid), not a target size, which changes the
    sampling positions. A 518x518 input (ph = pw = grid) uses the table unchanged.

    Returns:
        (1, 1 + ph*pw, D) tensor in the dtype of ``pos_embed``.
    """
    if ph == grid and pw == grid:
        return pos_embed
    dtype = pos_embed.dtype
    pos = pos_embed.float()
    cls_pos, patch_pos = pos[:, :1], pos[:, 1:]
    d = pos.shape[-1]
    patch_pos = patch_pos.reshape(1, grid, grid, d).permute(0, 3, 1, 2)
    scale = ((ph + POS_OFFSET) / grid, (pw + POS_OFFSET) / grid)
    patch_pos = F.interpolate(patch_pos, scale_factor=scale, mode="bicubic", antialias=False)
    if patch_pos.shape[-2:] != (ph, pw):  # cannot happen for grid >= 1; guards a changed torch rounding rule
        raise RuntimeError(f"positional embedding resized to {tuple(patch_pos.shape[-2:])}, expected {(ph, pw)}")
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, ph * pw, d)
    return torch.cat((cls_pos, patch_pos), dim=1).to(dtype)


class DinoVisionTransformer(nn.Module):
    """DINOv2 ViT encoder. Input (B, 3, H, W) normalised, H and W multiples of 14.

    Depth Anything 3's copy of DINOv2 has no ``mask_token`` and a final norm with PyTorch's default eps 1e-5
    (``norm_layer = nn.LayerNorm`` there, ``eps=1e-6`` in V1/V2); the blocks are the same.
    """

    def __init__(self, spec: EncoderSpec, mask_token: bool = True, norm_eps: float = LN_EPS) -> None:
        super().__init__()
        self.spec = spec
        d = spec.embed_dim
        self.patch_size = spec.patch_size
        self.patch_embed = PatchEmbed(spec.patch_size, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, spec.pos_grid**2 + 1, d))
        if mask_token:
            self.mask_token = nn.Parameter(torch.zeros(1, d))  # unused at inference; present in checkpoints
        self.blocks = nn.ModuleList(self.make_block(i) for i in range(spec.depth))
        self.norm = nn.LayerNorm(d, eps=norm_eps)
        self._pos_cache: dict[tuple, Tensor] = {}
        self.reset_parameters()

    def make_block(self, index: int) -> nn.Module:
        """Block ``index`` (subclasses vary attention per block)."""
        return Block(self.spec)

    def reset_parameters(self) -> None:
        """DINOv2's initialisation: trunc-normal(0.02) for tokens/linears, 1e-6 cls token, zero biases."""
        if self.pos_embed.is_meta:  # a shape-only build before weights are loaded: nothing to draw, and drawing
            return  # on meta runs torch's reference kernels, whose first use imports torch._dynamo (~2.5 s)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def pos_embed_for(self, ph: int, pw: int) -> Tensor:
        """Positional embedding for a ph x pw grid; cached when no gradient is needed.

        The cache key includes the parameter's version counter and storage, so in-place updates, ``.to()``
        and ``load_state_dict`` all invalidate it.
        """
        if torch.is_grad_enabled() and self.pos_embed.requires_grad:
            return interpolate_pos_embed(self.pos_embed, self.spec.pos_grid, ph, pw)
        p = self.pos_embed
        version = -1 if p.is_inference() else p._version  # inference tensors cannot change in place
        key = (ph, pw, p.dtype, p.device, version, p.data_ptr())
        cached = self._pos_cache.get(key)
        if cached is None:
            cached = interpolate_pos_embed(p, self.spec.pos_grid, ph, pw).detach()
            self._pos_cache = {key: cached}  # keep one size: batches are grouped by size
        return cached

    def prepare_tokens(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, 1 + ph*pw, D): CLS token + patch tokens + positional embedding."""
        b, _, h, w = x.shape
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"input height and width must be multiples of {self.patch_size}, got {h}x{w}")
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(b, -1, -1), tokens), dim=1)
        return tokens + self.pos_embed_for(h // self.patch_size, w // self.patch_size)

    def get_intermediate_layers(self, x: Tensor, layers: tuple[int, ...]) -> list[Tensor]:
        """Patch tokens after the shared final norm at each tapped block (0-based).

        Returns:
            one (B, ph*pw, D) tensor per entry of ``layers``, in the order given.
        """
        tokens = self.prepare_tokens(x)
        wanted = set(layers)
        taps: dict[int, Tensor] = {}
        for i, block in enumerate(self.blocks[: max(layers) + 1]):
            tokens = block(tokens)
            if i in wanted:
                taps[i] = tokens
        return [self.norm(taps[i])[:, 1:] for i in layers]

    def forward_features(self, x: Tensor) -> Tensor:
        """All blocks then the final norm: (B, 1 + ph*pw, D). Used for feature alignment."""
        tokens = self.prepare_tokens(x)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)
