"""Depth Anything 3's DINOv2 encoders: the plain one of DA3Mono/DA3Metric, and the any-view one.

Attribute names follow the official checkpoints (``model.backbone.pretrained.blocks.0.attn.q_norm``,
``model.backbone.pretrained.camera_token``, ...), so official state dicts load with ``strict=True`` and no
renaming. Both reuse :class:`depthany.models.vit.DinoVisionTransformer` (no mask token, final-norm eps 1e-5).

The any-view encoder takes (B, S, 3, H, W), S views of one scene:

* blocks before ``alt_start`` attend within each view; from ``alt_start`` on, odd blocks attend across all
  views' tokens at once and even blocks within each view;
* at ``alt_start`` every view's class token is replaced by a camera token: the first of the two learned tokens
  for the reference view, the second for all others;
* with 3+ views the reference view is chosen before block ``alt_start - 1`` (:mod:`.refview`) and moved first;
  outputs come back in input order;
* blocks from ``qknorm_start`` LayerNorm queries and keys per head; blocks from ``rope_start`` rotate them
  with 2D RoPE (:mod:`depthany.models.rope`): within a view by patch row/column, across views with every
  patch at the same position;
* a tapped block yields [output of the last within-view block (as is), final-norm(current output)] per patch
  (``cat_token``), and the un-normalised camera token pair, which the camera decoder reads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...zoo import EncoderSpec, ViewAttention
from ..rope import apply_rope_2d, grid_positions
from ..vit import Attention, Block, DinoVisionTransformer
from .refview import (
    MIN_VIEWS_FOR_CHOICE,
    RefViewStrategy,
    reference_first_order,
    reorder_views,
    restore_views,
    select_reference_view,
)

DA3_NORM_EPS = 1e-5  # DA3's final norm and q/k norms use nn.LayerNorm's default eps


class Backbone(nn.Module):
    """The official ``DinoV2`` wrapper: the encoder lives at ``.pretrained``."""

    def __init__(self, pretrained: DinoVisionTransformer) -> None:
        super().__init__()
        self.pretrained = pretrained


def mono_encoder(spec: EncoderSpec) -> DinoVisionTransformer:
    """DA3Mono / DA3Metric encoder: plain DINOv2 (no cross-view attention, no camera token)."""
    return DinoVisionTransformer(spec, mask_token=False, norm_eps=DA3_NORM_EPS)


class ViewAttentionLayer(Attention):
    """Self-attention with optional per-head q/k LayerNorm (``q_norm``, ``k_norm``) and 2D RoPE."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool, rope_freq: float | None) -> None:
        super().__init__(dim, num_heads)
        if qk_norm:
            self.q_norm = nn.LayerNorm(dim // num_heads, eps=DA3_NORM_EPS)
            self.k_norm = nn.LayerNorm(dim // num_heads, eps=DA3_NORM_EPS)
        self.qk_norm = qk_norm
        self.rope_freq = rope_freq

    def forward(self, x: Tensor, pos: Tensor | None = None) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.rope_freq is not None and pos is not None:
            q, k = apply_rope_2d(q, pos, self.rope_freq), apply_rope_2d(k, pos, self.rope_freq)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class ViewBlock(Block):
    """:class:`~depthany.models.vit.Block` whose attention may normalise q/k and apply RoPE."""

    def __init__(self, spec: EncoderSpec, qk_norm: bool, rope_freq: float | None) -> None:
        super().__init__(spec)
        self.attn = ViewAttentionLayer(spec.embed_dim, spec.num_heads, qk_norm, rope_freq)

    def forward(self, x: Tensor, pos: Tensor | None = None) -> Tensor:  # type: ignore[override]
        x = x + self.ls1(self.attn(self.norm1(x), pos))
        return x + self.ls2(self.mlp(self.norm2(x)))


class AnyViewEncoder(DinoVisionTransformer):
    """The any-view encoder (module docstring). Input (B, S, 3, H, W) normalised, H and W multiples of 14."""

    def __init__(self, spec: EncoderSpec, views: ViewAttention) -> None:
        self.views = views  # read by make_block during DinoVisionTransformer.__init__
        super().__init__(spec, mask_token=False, norm_eps=DA3_NORM_EPS)
        if views.alt_start >= 0:
            self.camera_token = nn.Parameter(torch.zeros(1, 2, spec.embed_dim))

    def make_block(self, index: int) -> nn.Module:
        v = self.views
        qk_norm = v.qknorm_start >= 0 and index >= v.qknorm_start
        rope = v.rope_freq if v.rope_start >= 0 and index >= v.rope_start and v.rope_freq > 0 else None
        return ViewBlock(self.spec, qk_norm, rope)

    def _run(self, block: nn.Module, x: Tensor, pos: Tensor | None, cross: bool) -> Tensor:
        """One block over (B, S, N, D): across all views' tokens together, or within each view."""
        b, s, n, d = x.shape
        if cross:
            p = None if pos is None else pos.repeat(s, 1)[None].expand(b, -1, -1)
            return block(x.reshape(b, s * n, d), p).reshape(b, s, n, d)
        p = None if pos is None else pos[None].expand(b * s, -1, -1)
        return block(x.reshape(b * s, n, d), p).reshape(b, s, n, d)

    def forward(self, x: Tensor, layers: tuple[int, ...], ref_view_strategy: RefViewStrategy = "saddle_balanced",
                ) -> tuple[list[Tensor], list[Tensor], Tensor]:
        """Tapped features for the head and camera decoder.

        Args:
            x: (B, S, 3, H, W) normalised views.
            layers: tapped blocks (0-based), in increasing order.
            ref_view_strategy: see :func:`.refview.select_reference_view` (used with 3+ views).

        Returns:
            (features, camera tokens): per tapped block a (B, S, ph*pw, 2D) patch-feature tensor ([last
            within-view output, normed current output]; (B, S, ph*pw, D) normed without ``cat_token``) and a
            (B, S, 2D) un-normalised camera/class-token tensor, all in input view order; and the (B,) index
            of each scene's reference view (0 when no choice was made).
        """
        b, s, _, h, w = x.shape
        v, ps = self.views, self.patch_size
        tokens = self.prepare_tokens(x.reshape(b * s, *x.shape[2:]))
        tokens = tokens.reshape(b, s, *tokens.shape[1:])
        local_pos, cross_pos = grid_positions(h // ps, w // ps, 1, x.device)
        order: Tensor | None = None
        ref = torch.zeros(b, dtype=torch.long, device=x.device)
        local = tokens
        feats: list[Tensor] = []
        cams: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            if i == v.alt_start - 1 and s >= MIN_VIEWS_FOR_CHOICE:
                ref = select_reference_view(tokens[:, :, 0], ref_view_strategy)
                order = reference_first_order(ref, s)
                tokens, local = reorder_views(tokens, order), reorder_views(local, order)
            if i == v.alt_start:
                cam = torch.cat((self.camera_token[:, :1], self.camera_token[:, 1:].expand(-1, s - 1, -1)), dim=1)
                tokens = torch.cat((cam.expand(b, -1, -1)[:, :, None], tokens[:, :, 1:]), dim=2)
            use_rope = v.rope_start >= 0 and i >= v.rope_start
            cross = v.alt_start >= 0 and i >= v.alt_start and i % 2 == 1
            pos = (cross_pos if cross else local_pos) if use_rope else None
            tokens = self._run(block, tokens, pos, cross)
            if not cross:
                local = tokens
            if i in layers:
                out = torch.cat((local, tokens), dim=-1) if v.cat_token else tokens
                if order is not None:
                    out = restore_views(out, order)
                feats.append(out)
                cams.append(out[:, :, 0])
        d = self.spec.embed_dim
        if v.cat_token:
            feats = [torch.cat((f[..., :d], self.norm(f[..., d:])), dim=-1) for f in feats]
        else:
            feats = [self.norm(f) for f in feats]
        return [f[:, :, 1:] for f in feats], cams, ref
