"""Mask2Former head (multi-scale deformable-attention pixel decoder + masked-attention transformer decoder).

Written here from the mmdetection 3.x modules the Depth Anything V1 configs instantiate (``Mask2FormerHead``,
``MSDeformAttnPixelDecoder``, ``Mask2FormerTransformerDecoder``, mmcv ``MultiScaleDeformableAttention`` with its
pure-PyTorch sampling), with their module names (``pixel_decoder.input_convs``, ``level_encoding``,
``transformer_decoder.layers``, ``query_embed``, ``query_feat``, ``level_embed``, ``cls_embed``,
``mask_embed``), so the optimiser rules of the V1 configs (keys matched by name) apply as written. The forward
pass equals ``transformers``' ``Mask2FormerPixelDecoder`` + ``Mask2FormerTransformerModule`` (a port of the
original Mask2Former) on the same weights: ``tests/test_seg_mask2former.py`` copies weights across and
compares every layer's class and mask logits.

Post-norm everywhere, ReLU FFNs, no dropout (all 0 in V1), sine positional encodings (normalised, 2 pi scale,
temperature 10000). The deformable attention samples with ``grid_sample`` (bilinear, zero padding,
``align_corners=False``), like mmcv's CPU path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .spec import Mask2FormerCfg

NUM_LEVELS = 3  # the transformer sees the three coarsest pyramid levels; the finest gets an FPN step


def sine_position_encoding(b: int, h: int, w: int, num_feats: int, device: torch.device, dtype: torch.dtype,
                           temperature: float = 10000.0) -> Tensor:
    """mmdet ``SinePositionalEncoding(num_feats, normalize=True)`` without padding: (B, 2 * num_feats, H, W)."""
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, h + 1, dtype=dtype, device=device)[:, None].expand(h, w)
    x = torch.arange(1, w + 1, dtype=dtype, device=device)[None, :].expand(h, w)
    y = y / (y[-1:, :] + eps) * scale
    x = x / (x[:, -1:] + eps) * scale
    dim_t = torch.arange(num_feats, dtype=torch.int64, device=device).to(dtype)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    pos_x, pos_y = x[..., None] / dim_t, y[..., None] / dim_t
    pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=3).flatten(2)
    pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=3).flatten(2)
    return torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1)[None].expand(b, -1, -1, -1)


def ms_deform_attn_core(value: Tensor, shapes: list[tuple[int, int]], locations: Tensor, weights: Tensor) -> Tensor:
    """mmcv ``multi_scale_deformable_attn_pytorch``.

    Args:
        value: (B, S, heads, dh) with S = sum of h*w over levels.
        shapes: (h, w) of each level.
        locations: (B, Q, heads, levels, points, 2) sampling points in [0, 1] (x, y).
        weights: (B, Q, heads, levels, points) attention weights.

    Returns:
        (B, Q, heads * dh).
    """
    b, _, heads, dh = value.shape
    _, q, _, levels, points, _ = locations.shape
    per_level = value.split([h * w for h, w in shapes], dim=1)
    grids = 2 * locations - 1
    sampled = []
    for lvl, (h, w) in enumerate(shapes):
        v = per_level[lvl].flatten(2).transpose(1, 2).reshape(b * heads, dh, h, w)
        g = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)  # (B*heads, Q, points, 2)
        sampled.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    wts = weights.transpose(1, 2).reshape(b * heads, 1, q, levels * points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * wts).sum(-1).view(b, heads * dh, q)
    return out.transpose(1, 2).contiguous()


class MultiScaleDeformableAttention(nn.Module):
    """mmcv ``MultiScaleDeformableAttention`` (self-attention over the flattened levels), residual included."""

    def __init__(self, dim: int, heads: int, levels: int = NUM_LEVELS, points: int = 4) -> None:
        super().__init__()
        self.heads, self.levels, self.points = heads, levels, points
        self.sampling_offsets = nn.Linear(dim, heads * levels * points * 2)
        self.attention_weights = nn.Linear(dim, heads * levels * points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)

    def init_weights(self) -> None:
        """mmcv's initialisation: offsets start on a ring of directions, uniform attention weights."""
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.heads, dtype=torch.float32) * (2.0 * math.pi / self.heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.heads, 1, 1, 2).repeat(1, self.levels,
                                                                                           self.points, 1)
        for i in range(self.points):
            grid[:, :, i, :] *= i + 1
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for lin in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor, pos: Tensor, reference: Tensor, shapes: list[tuple[int, int]]) -> Tensor:
        """x: (B, S, D) tokens, pos: (B, S, D), reference: (B, S, levels, 2) -> (B, S, D)."""
        b, s, d = x.shape
        query = x + pos
        value = self.value_proj(x).view(b, s, self.heads, d // self.heads)
        offsets = self.sampling_offsets(query).view(b, s, self.heads, self.levels, self.points, 2)
        weights = self.attention_weights(query).view(b, s, self.heads, self.levels * self.points).softmax(-1)
        weights = weights.view(b, s, self.heads, self.levels, self.points)
        normalizer = torch.tensor([[w, h] for h, w in shapes], dtype=x.dtype, device=x.device)
        locations = reference[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        return x + self.output_proj(ms_deform_attn_core(value, shapes, locations, weights))


class FFN(nn.Module):
    """mmcv ``FFN`` with two layers: x + fc2(relu(fc1(x)))."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Sequential(nn.Linear(dim, hidden), nn.ReLU()), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)


class EncoderLayer(nn.Module):
    """Deformable-DETR encoder layer, post-norm: norm(x + attn(x)), then norm(x + ffn(x))."""

    def __init__(self, dim: int, heads: int, hidden: int, points: int) -> None:
        super().__init__()
        self.self_attn = MultiScaleDeformableAttention(dim, heads, NUM_LEVELS, points)
        self.ffn = FFN(dim, hidden)
        self.norms = nn.ModuleList([nn.LayerNorm(dim), nn.LayerNorm(dim)])

    def forward(self, x: Tensor, pos: Tensor, reference: Tensor, shapes: list[tuple[int, int]]) -> Tensor:
        x = self.norms[0](self.self_attn(x, pos, reference, shapes))
        return self.norms[1](self.ffn(x))


def conv_gn(cin: int, cout: int, kernel: int, relu: bool, bias: bool = True) -> nn.Sequential:
    """mmcv ``ConvModule`` with GroupNorm(32): conv (no bias when normalised), gn, optional ReLU."""
    layers: dict[str, nn.Module] = {"conv": nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias),
                                    "gn": nn.GroupNorm(32, cout)}
    if relu:
        layers["activate"] = nn.ReLU()
    seq = nn.Sequential()
    for k, m in layers.items():  # named like ConvModule's children: conv, gn, activate
        seq.add_module(k, m)
    return seq


class PixelDecoder(nn.Module):
    """mmdet ``MSDeformAttnPixelDecoder``: deformable encoder over the 3 coarsest levels, FPN for the finest.

    Input: four (B, D, h_i, w_i) maps, finest first. Output: mask features (B, out, h_0, w_0) and the
    multi-scale memories for the decoder, coarsest first: three (B, F, h_i, w_i).
    """

    def __init__(self, in_channels: int, cfg: Mask2FormerCfg) -> None:
        super().__init__()
        f = cfg.feat_channels
        self.input_convs = nn.ModuleList(conv_gn(in_channels, f, 1, relu=False) for _ in range(NUM_LEVELS))
        self.encoder = nn.ModuleList(EncoderLayer(f, cfg.num_heads, cfg.encoder_ffn_channels, cfg.deform_points)
                                     for _ in range(cfg.encoder_layers))
        self.level_encoding = nn.Embedding(NUM_LEVELS, f)
        self.lateral_convs = nn.ModuleList([conv_gn(in_channels, f, 1, relu=False, bias=False)])
        self.output_convs = nn.ModuleList([conv_gn(f, f, 3, relu=True, bias=False)])
        self.mask_feature = nn.Conv2d(f, cfg.out_channels, kernel_size=1)

    def init_weights(self) -> None:
        """mmdet ``MSDeformAttnPixelDecoder.init_weights``."""
        for m in self.input_convs:
            conv = m.get_submodule("conv")
            assert isinstance(conv, nn.Conv2d) and conv.bias is not None
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)
        for m in (*self.lateral_convs, *self.output_convs):
            nn.init.kaiming_uniform_(m.get_parameter("conv.weight"), a=1)  # caffe2_xavier_init
        nn.init.kaiming_uniform_(self.mask_feature.weight, a=1)
        nn.init.zeros_(self.mask_feature.get_parameter("bias"))
        nn.init.normal_(self.level_encoding.weight, std=1.0)
        for p in self.encoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)
        for layer in self.encoder:
            attn = layer.get_submodule("self_attn")
            assert isinstance(attn, MultiScaleDeformableAttention)
            attn.init_weights()

    def forward(self, feats: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        b = feats[0].shape[0]
        tokens, pos, refs, shapes = [], [], [], []
        for i in range(NUM_LEVELS):
            feat = feats[len(feats) - 1 - i]  # coarsest first
            h, w = feat.shape[-2:]
            x = self.input_convs[i](feat)
            p = sine_position_encoding(b, h, w, x.shape[1] // 2, x.device, x.dtype)
            p = p + self.level_encoding.weight[i].view(1, -1, 1, 1)
            tokens.append(x.flatten(2).transpose(1, 2))
            pos.append(p.flatten(2).transpose(1, 2))
            ry, rx = torch.meshgrid(torch.arange(h, dtype=x.dtype, device=x.device),
                                    torch.arange(w, dtype=x.dtype, device=x.device), indexing="ij")
            refs.append(torch.stack(((rx.reshape(-1) + 0.5) / w, (ry.reshape(-1) + 0.5) / h), -1))
            shapes.append((int(h), int(w)))
        x = torch.cat(tokens, 1)
        reference = torch.cat(refs, 0)[None, :, None, :].expand(b, -1, NUM_LEVELS, -1)
        level_pos = torch.cat(pos, 1)
        for layer in self.encoder:
            x = layer(x, level_pos, reference, shapes)
        outs = [t.transpose(1, 2).reshape(b, -1, h, w) for t, (h, w) in zip(x.split([h * w for h, w in shapes], 1),
                                                                              shapes)]
        finest = feats[0]
        lateral = self.lateral_convs[0](finest)
        y = lateral + F.interpolate(outs[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        y = self.output_convs[0](y)
        return self.mask_feature(y), outs


class DecoderLayer(nn.Module):
    """Mask2Former decoder layer, post-norm: masked cross-attention, self-attention, FFN."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.cross_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ffn = FFN(dim, hidden)
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(3)])

    def forward(self, q: Tensor, q_pos: Tensor, memory: Tensor, mem_pos: Tensor, attn_mask: Tensor) -> Tensor:
        q = self.norms[0](q + self.cross_attn(q + q_pos, memory + mem_pos, memory, attn_mask=attn_mask,
                                              need_weights=False)[0])
        qp = q + q_pos
        q = self.norms[1](q + self.self_attn(qp, qp, q, need_weights=False)[0])
        return self.norms[2](self.ffn(q))


class TransformerDecoder(nn.Module):
    """The decoder layers and the shared post-norm applied before every prediction."""

    def __init__(self, cfg: Mask2FormerCfg) -> None:
        super().__init__()
        f = cfg.feat_channels
        self.layers = nn.ModuleList(DecoderLayer(f, cfg.num_heads, cfg.ffn_channels)
                                    for _ in range(cfg.decoder_layers))
        self.post_norm = nn.LayerNorm(f)


class Mask2FormerHead(nn.Module):
    """Four pyramid maps (finest first) -> per decoder stage class logits and mask logits.

    ``forward`` returns (class_logits (S, B, Q, C+1), mask_logits (S, B, Q, h_0, w_0)) for the S =
    ``decoder_layers + 1`` predictions (one from the initial queries, one after each layer), the last being
    the output; the extra class is "no object".
    """

    def __init__(self, in_channels: int, num_classes: int, cfg: Mask2FormerCfg) -> None:
        super().__init__()
        f = cfg.feat_channels
        self.num_heads = cfg.num_heads
        self.pixel_decoder = PixelDecoder(in_channels, cfg)
        self.transformer_decoder = TransformerDecoder(cfg)
        self.query_embed = nn.Embedding(cfg.num_queries, f)
        self.query_feat = nn.Embedding(cfg.num_queries, f)
        self.level_embed = nn.Embedding(NUM_LEVELS, f)
        self.cls_embed = nn.Linear(f, num_classes + 1)
        self.mask_embed = nn.Sequential(nn.Linear(f, f), nn.ReLU(), nn.Linear(f, f), nn.ReLU(),
                                        nn.Linear(f, cfg.out_channels))
        self.init_weights()

    def init_weights(self) -> None:
        """mmdet ``Mask2FormerHead.init_weights`` (embeddings and the class / mask MLPs keep PyTorch's init)."""
        self.pixel_decoder.init_weights()
        for p in self.transformer_decoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)

    def _predict(self, q: Tensor, mask_features: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
        q = self.transformer_decoder.post_norm(q)
        cls = self.cls_embed(q)
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_embed(q), mask_features)
        attn = F.interpolate(masks, size, mode="bilinear", align_corners=False).flatten(2)
        attn = (attn.sigmoid() < 0.5).repeat_interleave(self.num_heads, dim=0)  # (B*heads, Q, h*w), True = blocked
        return cls, masks, attn.detach()

    def forward(self, feats: list[Tensor]) -> tuple[Tensor, Tensor]:
        mask_features, memories = self.pixel_decoder(feats)
        b = mask_features.shape[0]
        mem, mem_pos = [], []
        for i, m in enumerate(memories):
            h, w = m.shape[-2:]
            mem.append(m.flatten(2).transpose(1, 2) + self.level_embed.weight[i].view(1, 1, -1))
            p = sine_position_encoding(b, h, w, m.shape[1] // 2, m.device, m.dtype)
            mem_pos.append(p.flatten(2).transpose(1, 2))
        q = self.query_feat.weight[None].expand(b, -1, -1)
        q_pos = self.query_embed.weight[None].expand(b, -1, -1)
        cls, masks, attn = self._predict(q, mask_features, memories[0].shape[-2:])
        all_cls, all_masks = [cls], [masks]
        for i, layer in enumerate(self.transformer_decoder.layers):
            level = i % NUM_LEVELS
            attn = attn & (attn.sum(-1) != attn.shape[-1])[..., None]  # a fully blocked query attends everywhere
            q = layer(q, q_pos, mem[level], mem_pos[level], attn)
            cls, masks, attn = self._predict(q, mask_features, memories[(i + 1) % NUM_LEVELS].shape[-2:])
            all_cls.append(cls)
            all_masks.append(masks)
        return torch.stack(all_cls), torch.stack(all_masks)


def semantic_scores(class_logits: Tensor, mask_logits: Tensor, size: tuple[int, int]) -> Tensor:
    """mmseg ``Mask2FormerHead.predict``: masks resized to ``size`` (bilinear, ``align_corners=False``), then
    ``einsum('bqc,bqhw->bchw', softmax(class)[..., :-1], sigmoid(mask))``.

    Args:
        class_logits: (B, Q, C+1) of the last stage.
        mask_logits: (B, Q, h, w) of the last stage.

    Returns:
        (B, C, H, W) per-class scores (not normalised over classes).
    """
    masks = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False).sigmoid()
    return torch.einsum("bqc,bqhw->bchw", class_logits.softmax(-1)[..., :-1], masks)
