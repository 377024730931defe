"""Temporal ("motion") modules of Video Depth Anything: self-attention across the frames of a clip.

Attribute names follow the official checkpoints (``head.motion_modules.0.temporal_transformer.proj_in``,
``...transformer_blocks.0.attention_blocks.1.pos_encoder.pe``, ...) so official state dicts load with
``strict=True`` and no renaming. Sizes come from :class:`depthany.zoo.TemporalSpec`.

Every module maps a (B*T, C, H, W) feature map (frames of each clip consecutive) to the same shape. Each pixel
attends over the T frames at the same position; space is never mixed here. Streaming inference passes the
states of earlier frames (``cache``) and only the newest frame: the attention then queries with that frame
and keys/values come from the cached frames followed by it, exactly the official ``cached_hidden_states`` path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..zoo import TemporalSpec

GROUP_NORM_EPS = 1e-6  # TemporalTransformer3DModel.norm; the LayerNorms keep PyTorch's 1e-5
FrameStates = list[Tensor]  # per attention layer: the normalised input of its frames, (B*H*W, T, C)


def sinusoid_table(max_frames: int, dim: int) -> Tensor:
    """(1, max_frames, dim) float32 absolute positional encoding: sin on even, cos on odd channels.

    Frequencies ``exp(-log(10000) * 2i / dim)``, computed in the same float32 order as the official
    ``PositionalEncoding`` so a freshly built table equals the buffers stored in official checkpoints.
    Computed on the CPU, then moved to the default device (a shape-only build on ``meta`` would otherwise run
    torch's reference kernels, whose first use imports torch._dynamo, ~2 s).
    """
    cpu = torch.device("cpu")
    position = torch.arange(max_frames, device=cpu).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, device=cpu) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, max_frames, dim, device=cpu)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe.to(torch.get_default_device())


class PositionalEncoding(nn.Module):
    """Adds ``pe[:, :T]`` to a (N, T, C) sequence. ``pe`` is a persistent buffer, as in official files."""

    pe: Tensor

    def __init__(self, dim: int, max_frames: int) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoid_table(max_frames, dim))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] > self.pe.shape[1]:
            raise ValueError(f"{x.shape[1]} frames exceed the positional encoding's {self.pe.shape[1]}")
        return x + self.pe[:, : x.shape[1]].to(x.dtype)


class TemporalAttention(nn.Module):
    """Multi-head self-attention over frames, positional encoding added to queries, keys and values' input.

    ``to_q``/``to_k``/``to_v`` have no bias; ``to_out.0`` has one (the official ``to_out.1`` is a dropout with
    p = 0 and no parameters, left out).
    """

    def __init__(self, dim: int, heads: int, max_frames: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])
        self.pos_encoder = PositionalEncoding(dim, max_frames)

    def forward(self, x: Tensor, frames: int, cache: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Attend over frames.

        Args:
            x: (B*T, N, C) normalised tokens, N = H*W positions, frames of a clip consecutive (T = ``frames``).
            frames: T.
            cache: (B*N, T0, C) states of T0 earlier frames (streaming), or None.

        Returns:
            (B*T, N, C) attention output, and this call's state (B*N, T, C) for later caching.
        """
        bt, n, c = x.shape
        b = bt // frames
        state = x.reshape(b, frames, n, c).transpose(1, 2).reshape(b * n, frames, c)
        seq = state if cache is None else torch.cat([cache, state], dim=1)
        seq = self.pos_encoder(seq)
        q = self.to_q(seq[:, seq.shape[1] - frames:])  # queries: this call's frames, keys: all
        k, v = self.to_k(seq), self.to_v(seq)
        h = self.heads
        q, k, v = (t.reshape(t.shape[0], t.shape[1], h, c // h).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(C / heads)) v
        out = self.to_out[0](out.transpose(1, 2).reshape(b * n, frames, c))
        return out.reshape(b, n, frames, c).transpose(1, 2).reshape(bt, n, c), state


class GEGLU(nn.Module):
    """``proj`` gives [x, gate]; output ``x * gelu(gate)`` (exact GELU)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, hidden * 2)

    def forward(self, x: Tensor) -> Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    """``net.0`` GEGLU (dim -> mult*dim), ``net.1`` the official p = 0 dropout (identity), ``net.2`` linear back."""

    def __init__(self, dim: int, mult: int) -> None:
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim)])

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class TemporalTransformerBlock(nn.Module):
    """Pre-norm: ``x + attn_i(norm_i(x))`` for each attention layer, then ``x + ff(ff_norm(x))``."""

    def __init__(self, dim: int, spec: TemporalSpec) -> None:
        super().__init__()
        n = spec.attention_blocks
        self.attention_blocks = nn.ModuleList(TemporalAttention(dim, spec.heads, spec.max_frames) for _ in range(n))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(n))
        self.ff = FeedForward(dim, spec.ff_mult)
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, frames: int, cache: FrameStates | None = None) -> tuple[Tensor, FrameStates]:
        states = []
        for i, (attention, norm) in enumerate(zip(self.attention_blocks, self.norms)):
            y, state = attention(norm(x), frames, None if cache is None else cache[i])
            x = y + x
            states.append(state)
        return self.ff(self.ff_norm(x)) + x, states


class TemporalTransformer3DModel(nn.Module):
    """GroupNorm -> ``proj_in`` -> transformer blocks -> ``proj_out``, plus the input (residual)."""

    def __init__(self, channels: int, spec: TemporalSpec) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(spec.norm_groups, channels, eps=GROUP_NORM_EPS, affine=True)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList(
            TemporalTransformerBlock(channels, spec) for _ in range(spec.transformer_blocks))
        self.proj_out = nn.Linear(channels, channels)
        self.attention_layers = spec.transformer_blocks * spec.attention_blocks  # = cached states per frame

    def forward(self, x: Tensor, frames: int, cache: FrameStates | None = None) -> tuple[Tensor, FrameStates]:
        bt, c, h, w = x.shape
        y = self.norm(x).permute(0, 2, 3, 1).reshape(bt, h * w, c)
        y = self.proj_in(y)
        states: FrameStates = []
        for block in self.transformer_blocks:
            n = self.attention_layers // len(self.transformer_blocks)
            y, block_states = block(y, frames, None if cache is None else cache[len(states):len(states) + n])
            states += block_states
        y = self.proj_out(y).reshape(bt, h, w, c).permute(0, 3, 1, 2)
        return y + x, states


class TemporalModule(nn.Module):
    """One motion module (the official wrapper holding ``temporal_transformer``).

    ``zero_init`` zeroes ``proj_out`` (as the official constructor does), making the module the identity: a
    head built this way starts as the image model's head.
    """

    def __init__(self, channels: int, spec: TemporalSpec, zero_init: bool = True) -> None:
        super().__init__()
        self.temporal_transformer = TemporalTransformer3DModel(channels, spec)
        if zero_init and not self.temporal_transformer.proj_out.weight.is_meta:  # (on meta: shape-only build, and
            # the reference kernels' first use imports torch._dynamo, ~2 s)
            nn.init.zeros_(self.temporal_transformer.proj_out.weight)
            nn.init.zeros_(self.temporal_transformer.proj_out.bias)

    def forward(self, x: Tensor, frames: int, cache: FrameStates | None = None) -> tuple[Tensor, FrameStates]:
        """(B*T, C, H, W) -> same shape, and the frames' states (see :class:`TemporalAttention`)."""
        return self.temporal_transformer(x, frames, cache)
