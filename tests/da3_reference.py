"""An independent functional re-implementation of Depth Anything 3's forward, for parity tests.

Written from the official description (ByteDance-Seed/Depth-Anything-3 @ 2c21ea849ceec7b469a3e62ea0c0e270afc3281a:
``model/da3.py``, ``model/dinov2/vision_transformer.py``, ``model/dinov2/layers/{block,attention,rope}.py``,
``model/dpt.py``, ``model/dualdpt.py``, ``model/cam_dec.py``, ``model/utils/{transform,head_utils}.py``,
``model/reference_view_selector.py``, ``utils/alignment.py``), as plain torch functions over a state dict with
the official ``model.*`` keys. Nothing here imports depthany's networks.

Also: the official key table (key -> shape) of a configuration, random "lively" official-layout state dicts,
and the official folder writer (``config.json`` + ``model.safetensors`` as ``safetensors.torch.save_model``
writes a model whose aux LayerNorm is shared).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

P = "model."


@dataclass(frozen=True)
class Cfg:
    """A DA3 configuration (the fields of configs/*.yaml that matter)."""

    dim: int
    depth: int
    heads: int
    layers: tuple[int, ...]
    features: int
    out_channels: tuple[int, int, int, int]
    alt_start: int = -1  # -1: mono / metric
    qknorm_start: int = -1
    rope_start: int = -1
    swiglu: bool = False
    gs_head: bool = False
    grid: int = 37

    @property
    def anyview(self) -> bool:
        return self.alt_start != -1


# ------------------------------------------------------------------------------------------------ key table
def official_shapes(c: Cfg) -> dict[str, tuple[int, ...]]:
    """Every official state-dict key and shape for ``c`` (the shared aux LayerNorm listed under all 4 names)."""
    d, f, oc = c.dim, c.features, c.out_channels
    s: dict[str, tuple[int, ...]] = {}
    e = P + "backbone.pretrained."
    s[e + "cls_token"] = (1, 1, d)
    if c.anyview:
        s[e + "camera_token"] = (1, 2, d)
    s[e + "pos_embed"] = (1, c.grid * c.grid + 1, d)
    s[e + "patch_embed.proj.weight"] = (d, 3, 14, 14)
    s[e + "patch_embed.proj.bias"] = (d,)
    hid = (int(4 * d * 2 / 3) + 7) // 8 * 8 if c.swiglu else 4 * d
    for i in range(c.depth):
        b = f"{e}blocks.{i}."
        s.update({b + "norm1.weight": (d,), b + "norm1.bias": (d,), b + "attn.qkv.weight": (3 * d, d),
                  b + "attn.qkv.bias": (3 * d,)})
        if c.qknorm_start != -1 and i >= c.qknorm_start:
            hd = d // c.heads
            s.update({b + "attn.q_norm.weight": (hd,), b + "attn.q_norm.bias": (hd,),
                      b + "attn.k_norm.weight": (hd,), b + "attn.k_norm.bias": (hd,)})
        s.update({b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,), b + "ls1.gamma": (d,),
                  b + "norm2.weight": (d,), b + "norm2.bias": (d,)})
        if c.swiglu:
            s.update({b + "mlp.w12.weight": (2 * hid, d), b + "mlp.w12.bias": (2 * hid,),
                      b + "mlp.w3.weight": (d, hid), b + "mlp.w3.bias": (d,)})
        else:
            s.update({b + "mlp.fc1.weight": (hid, d), b + "mlp.fc1.bias": (hid,), b + "mlp.fc2.weight": (d, hid),
                      b + "mlp.fc2.bias": (d,)})
        s.update({b + "ls2.gamma": (d,)})
    s.update({e + "norm.weight": (d,), e + "norm.bias": (d,)})
    din = 2 * d if c.anyview else d
    s.update(_dpt_shapes(P + "head.", din, f, oc, 2 if c.anyview else 1, layer_norm=c.anyview))
    h = P + "head.scratch."
    if not c.anyview:
        s.update({h + "sky_output_conv2.0.weight": (32, f // 2, 3, 3), h + "sky_output_conv2.0.bias": (32,),
                  h + "sky_output_conv2.2.weight": (1, 32, 1, 1), h + "sky_output_conv2.2.bias": (1,)})
        return s
    for r in (1, 2, 3, 4):
        s.update(_fusion_shapes(f"{h}refinenet{r}_aux.", f, skip=r != 4))
    for lvl in range(4):
        widths = [f, f // 2, f, f // 2, f, f // 2]
        for k in range(5):
            s[f"{h}output_conv1_aux.{lvl}.{k}.weight"] = (widths[k + 1], widths[k], 3, 3)
            s[f"{h}output_conv1_aux.{lvl}.{k}.bias"] = (widths[k + 1],)
    for lvl in range(4):
        o = f"{h}output_conv2_aux.{lvl}."
        s.update({o + "0.weight": (32, f // 2, 3, 3), o + "0.bias": (32,), o + "2.weight": (32,), o + "2.bias": (32,),
                  o + "5.weight": (7, 32, 1, 1), o + "5.bias": (7,)})
    c_enc = P + "cam_enc."
    for i in range(4):
        b = f"{c_enc}trunk.{i}."
        s.update({b + "norm1.weight": (d,), b + "norm1.bias": (d,), b + "attn.qkv.weight": (3 * d, d),
                  b + "attn.qkv.bias": (3 * d,), b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
                  b + "ls1.gamma": (d,), b + "norm2.weight": (d,), b + "norm2.bias": (d,),
                  b + "mlp.fc1.weight": (4 * d, d), b + "mlp.fc1.bias": (4 * d,), b + "mlp.fc2.weight": (d, 4 * d),
                  b + "mlp.fc2.bias": (d,), b + "ls2.gamma": (d,)})
    s.update({c_enc + "token_norm.weight": (d,), c_enc + "token_norm.bias": (d,), c_enc + "trunk_norm.weight": (d,),
              c_enc + "trunk_norm.bias": (d,), c_enc + "pose_branch.fc1.weight": (d // 2, 9),
              c_enc + "pose_branch.fc1.bias": (d // 2,), c_enc + "pose_branch.fc2.weight": (d, d // 2),
              c_enc + "pose_branch.fc2.bias": (d,)})
    c_dec = P + "cam_dec."
    s.update({c_dec + "backbone.0.weight": (din, din), c_dec + "backbone.0.bias": (din,),
              c_dec + "backbone.2.weight": (din, din), c_dec + "backbone.2.bias": (din,),
              c_dec + "fc_t.weight": (3, din), c_dec + "fc_t.bias": (3,), c_dec + "fc_qvec.weight": (4, din),
              c_dec + "fc_qvec.bias": (4,), c_dec + "fc_fov.0.weight": (2, din), c_dec + "fc_fov.0.bias": (2,)})
    if c.gs_head:
        g = P + "gs_head."
        s.update(_dpt_shapes(g, din, f, oc, 38, layer_norm=False))
        m = f // 2
        for k, (ci, co) in zip((0, 2, 4), ((3, m // 4), (m // 4, m // 2), (m // 2, m))):
            s[f"{g}images_merger.{k}.weight"] = (co, ci, 3, 3)
            s[f"{g}images_merger.{k}.bias"] = (co,)
    return s


def _fusion_shapes(n: str, f: int, skip: bool) -> dict[str, tuple[int, ...]]:
    s: dict[str, tuple[int, ...]] = {}
    for unit in (("resConfUnit1", "resConfUnit2") if skip else ("resConfUnit2",)):
        for conv in ("conv1", "conv2"):
            s[f"{n}{unit}.{conv}.weight"] = (f, f, 3, 3)
            s[f"{n}{unit}.{conv}.bias"] = (f,)
    s[n + "out_conv.weight"] = (f, f, 1, 1)
    s[n + "out_conv.bias"] = (f,)
    return s


def _dpt_shapes(h: str, din: int, f: int, oc: tuple[int, ...], out_dim: int, layer_norm: bool
                ) -> dict[str, tuple[int, ...]]:
    s: dict[str, tuple[int, ...]] = {}
    if layer_norm:
        s.update({h + "norm.weight": (din,), h + "norm.bias": (din,)})
    for k in range(4):
        s.update({f"{h}projects.{k}.weight": (oc[k], din, 1, 1), f"{h}projects.{k}.bias": (oc[k],)})
    for k, ksz in ((0, 4), (1, 2), (3, 3)):
        s.update({f"{h}resize_layers.{k}.weight": (oc[k], oc[k], ksz, ksz), f"{h}resize_layers.{k}.bias": (oc[k],)})
    for k in range(4):
        s[f"{h}scratch.layer{k + 1}_rn.weight"] = (f, oc[k], 3, 3)
    for r in (1, 2, 3, 4):
        s.update(_fusion_shapes(f"{h}scratch.refinenet{r}.", f, skip=r != 4))
    s.update({h + "scratch.output_conv1.weight": (f // 2, f, 3, 3), h + "scratch.output_conv1.bias": (f // 2,),
              h + "scratch.output_conv2.0.weight": (32, f // 2, 3, 3), h + "scratch.output_conv2.0.bias": (32,),
              h + "scratch.output_conv2.2.weight": (out_dim, 32, 1, 1), h + "scratch.output_conv2.2.bias": (out_dim,)})
    return s


SHARED_AUX_NORM = [f"{P}head.scratch.output_conv2_aux.{i}.2.{w}" for w in ("weight", "bias") for i in range(4)]


def lively_state(c: Cfg, seed: int = 0, sky_bias: float = 0.0, fov_bias: float = 0.9) -> dict[str, Tensor]:
    """Random official state dict whose outputs are non-degenerate: weights ~ N(0, 1/fan_in), norms ~ 1,
    LayerScales ~ 0.5, unit-scale tokens and positional table; the sky bias sets the sky share, a positive fov
    bias keeps focal lengths finite. The shared aux LayerNorm gets one value under all four names."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in official_shapes(c).items():
        t = torch.randn(shape, generator=g)
        if "norm" in key and key.endswith("weight"):
            t = 1.0 + 0.2 * t
        elif key.endswith("gamma"):
            t = 0.5 + 0.2 * t
        elif key.endswith("bias"):
            t = 0.1 * t
        elif "pos_embed" not in key and "token" not in key:
            t = t / math.sqrt(math.prod(shape[1:]) if len(shape) > 1 else 1)
        sd[key] = t
    if not c.anyview:
        sd[P + "head.scratch.sky_output_conv2.2.bias"].fill_(sky_bias)
        return sd
    for w in ("weight", "bias"):
        shared = sd[f"{P}head.scratch.output_conv2_aux.0.2.{w}"]
        for i in range(1, 4):
            sd[f"{P}head.scratch.output_conv2_aux.{i}.2.{w}"] = shared
    sd[P + "cam_dec.fc_fov.0.bias"].fill_(fov_bias)
    sd[P + "cam_dec.fc_fov.0.weight"] *= 0.05  # fields of view near fov_bias, never clipped to 0 by the ReLU
    return sd


def write_official_folder(folder: Path, sd: dict[str, Tensor], model_name: str, dedupe: bool = True) -> Path:
    """config.json ({"model_name": ...}) + model.safetensors, shared tensors stored once under the sorted-first
    name with {dropped: kept} metadata (what safetensors.torch.save_model writes), or all names (``dedupe=False``)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    out = {k: v.clone().contiguous() for k, v in sd.items()}
    meta: dict[str, str] = {}
    if dedupe and SHARED_AUX_NORM[0] in out:
        for w in ("weight", "bias"):
            names = sorted(f"{P}head.scratch.output_conv2_aux.{i}.2.{w}" for i in range(4))
            for n in names[1:]:
                del out[n]
                meta[n] = names[0]
    save_file(out, str(folder / "model.safetensors"), metadata=meta or None)
    (folder / "config.json").write_text(json.dumps({"model_name": model_name}))
    return folder


# ------------------------------------------------------------------------------------------------ encoder
def _ln(x: Tensor, sd: dict, n: str, eps: float) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[n + ".weight"], sd[n + ".bias"], eps)


def _lin(x: Tensor, sd: dict, n: str) -> Tensor:
    return F.linear(x, sd[n + ".weight"], sd[n + ".bias"])


def _rope(t: Tensor, pos: Tensor, base: float = 100.0) -> Tensor:
    """t (B, h, N, hd); pos (B, N, 2). Row angle on the first half of hd, column on the second; within a half
    channel j pairs with j + n/2 (rotate-half) at frequency base^(-2j/n)."""
    out = []
    for axis, part in enumerate(t.chunk(2, dim=-1)):
        n = part.shape[-1]
        freqs = torch.tensor([base ** (-(2 * j) / n) for j in range(n // 2)], dtype=torch.float64)
        ang = (pos[..., axis].double()[:, None, :, None] * freqs).float()  # (B, 1, N, n/2)
        a, b = part[..., : n // 2], part[..., n // 2:]
        cos, sin = ang.cos(), ang.sin()
        out += [a * cos - b * sin, b * cos + a * sin]
    return torch.cat([torch.cat(out[:2], -1), torch.cat(out[2:], -1)], -1)


def _block(x: Tensor, sd: dict, n: str, heads: int, qknorm: bool, pos: Tensor | None, eps: float = 1e-6,
           swiglu: bool = False) -> Tensor:
    b, t, d = x.shape
    hd = d // heads
    qkv = _lin(_ln(x, sd, n + "norm1", eps), sd, n + "attn.qkv").reshape(b, t, 3, heads, hd)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    if qknorm:
        q, k = _ln(q, sd, n + "attn.q_norm", 1e-5), _ln(k, sd, n + "attn.k_norm", 1e-5)
    if pos is not None:
        q, k = _rope(q, pos), _rope(k, pos)
    att = torch.softmax((q * hd**-0.5) @ k.transpose(-1, -2), dim=-1) @ v
    x = x + sd[n + "ls1.gamma"] * _lin(att.transpose(1, 2).reshape(b, t, d), sd, n + "attn.proj")
    h = _ln(x, sd, n + "norm2", eps)
    if swiglu:
        x1, x2 = _lin(h, sd, n + "mlp.w12").chunk(2, -1)
        m = _lin(F.silu(x1) * x2, sd, n + "mlp.w3")
    else:
        m = _lin(F.gelu(_lin(h, sd, n + "mlp.fc1")), sd, n + "mlp.fc2")
    return x + sd[n + "ls2.gamma"] * m


def _embed(x: Tensor, sd: dict, c: Cfg) -> Tensor:
    """(V, 3, H, W) -> (V, 1 + ph*pw, D): class token + patches + DINOv2-interpolated positional table."""
    e = P + "backbone.pretrained."
    v, _, h, w = x.shape
    ph, pw = h // 14, w // 14
    patches = F.conv2d(x, sd[e + "patch_embed.proj.weight"], sd[e + "patch_embed.proj.bias"], stride=14)
    tok = torch.cat([sd[e + "cls_token"].expand(v, 1, -1), patches.flatten(2).transpose(1, 2)], 1)
    pos = sd[e + "pos_embed"]
    if (ph, pw) != (c.grid, c.grid):
        grid = pos[:, 1:].reshape(1, c.grid, c.grid, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((ph + 0.1) / c.grid, (pw + 0.1) / c.grid), mode="bicubic",
                             antialias=False)
        pos = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, ph * pw, -1)], 1)
    return tok + pos


def select_reference(cls: Tensor, strategy: str) -> int:
    """cls (S, D) class tokens of one scene -> reference index (reference_view_selector.py)."""
    s = cls.shape[0]
    if strategy == "first":
        return 0
    if strategy == "middle":
        return s // 2
    norms = torch.sqrt((cls * cls).sum(-1))
    u = cls / norms[:, None]
    cos = u @ u.T
    off = cos - torch.eye(s)
    if strategy == "saddle_sim_range":
        return int((off.max(1).values - off.min(1).values).argmax())
    var = ((u - u.mean(-1, keepdim=True)) ** 2).sum(-1) / (u.shape[-1] - 1)

    def unit(m: Tensor) -> Tensor:
        return (m - m.min()) / (m.max() - m.min() + 1e-8)

    score = (unit(off.sum(1) / (s - 1)) - 0.5).abs() + (unit(norms) - 0.5).abs() + (unit(var) - 0.5).abs()
    return int(score.argmin())


def encoder(x: Tensor, sd: dict, c: Cfg, strategy: str = "saddle_balanced", rope_start: int | None = None
            ) -> tuple[list[Tensor], list[Tensor], int]:
    """(S, 3, H, W) views of one scene -> (per tap (S, ph*pw, C) features, per tap (S, C) camera tokens, ref).

    ``rope_start`` overrides the configured block (to show it matters; -1 disables RoPE)."""
    e = P + "backbone.pretrained."
    rope_from = c.rope_start if rope_start is None else rope_start
    s, _, h, w = x.shape
    ph, pw = h // 14, w // 14
    tok = _embed(x, sd, c)
    n = tok.shape[1]
    rc = torch.tensor([(0, 0)] + [(i // pw + 1, i % pw + 1) for i in range(ph * pw)])
    same = torch.tensor([(0, 0)] + [(1, 1)] * (ph * pw))
    order = list(range(s))
    last_local = tok
    taps, cams = [], []
    for i in range(c.depth):
        if c.anyview and i == c.alt_start - 1 and s >= 3:
            ref = select_reference(tok[:, 0], strategy)
            order = [ref] + [j for j in range(s) if j != ref]
            tok, last_local = tok[order], last_local[order]
        if c.anyview and i == c.alt_start:
            cam = sd[e + "camera_token"][0]
            tok = tok.clone()
            tok[0, 0] = cam[0]
            tok[1:, 0] = cam[1]
        glob = c.anyview and i >= c.alt_start and i % 2 == 1
        qk = c.qknorm_start != -1 and i >= c.qknorm_start
        use_rope = rope_from != -1 and i >= rope_from
        name = f"{e}blocks.{i}."
        if glob:
            pos = same.repeat(s, 1)[None] if use_rope else None
            tok = _block(tok.reshape(1, s * n, -1), sd, name, c.heads, qk, pos, swiglu=c.swiglu).reshape(s, n, -1)
        else:
            pos = rc[None].expand(s, -1, -1) if use_rope else None
            tok = _block(tok, sd, name, c.heads, qk, pos, swiglu=c.swiglu)
            last_local = tok
        if i in c.layers:
            inv = [order.index(j) for j in range(s)]
            normed = _ln(tok, sd, e + "norm", 1e-5)
            if c.anyview:
                cams.append(torch.cat([last_local[:, 0], tok[:, 0]], -1)[inv])
                taps.append(torch.cat([last_local, normed], -1)[inv][:, 1:])
            else:
                taps.append(normed[:, 1:])
    return taps, cams, order[0]


# ------------------------------------------------------------------------------------------------ heads
def _conv(x: Tensor, sd: dict, n: str, pad: int = 1) -> Tensor:
    return F.conv2d(x, sd[n + ".weight"], sd.get(n + ".bias"), padding=pad)


def _up(x: Tensor, size: tuple[int, ...]) -> Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def _rcu(x: Tensor, sd: dict, n: str) -> Tensor:
    return x + _conv(F.relu(_conv(F.relu(x), sd, n + ".conv1")), sd, n + ".conv2")


def _fusion(x: Tensor, skip: Tensor | None, sd: dict, n: str, size: tuple[int, ...] | None) -> Tensor:
    if skip is not None:
        x = x + _rcu(skip, sd, n + ".resConfUnit1")
    x = _rcu(x, sd, n + ".resConfUnit2")
    x = _up(x, size if size is not None else (2 * x.shape[-2], 2 * x.shape[-1]))
    return _conv(x, sd, n + ".out_conv", 0)


def uv_embed(ch: int, h: int, w: int, aspect: float) -> Tensor:
    """(ch, h, w) UV embedding x 0.1 (head_utils.create_uv_grid + position_grid_to_embed, omega_0 = 100)."""
    diag = math.sqrt(aspect * aspect + 1)
    xs = torch.linspace(-aspect / diag * (w - 1) / w, aspect / diag * (w - 1) / w, w)
    ys = torch.linspace(-1 / diag * (h - 1) / h, 1 / diag * (h - 1) / h, h)
    k = torch.arange(ch // 4, dtype=torch.float32)
    om = 100.0 ** (-k / (ch // 4))

    def sc(p: Tensor) -> Tensor:  # (L,) -> (L, ch/2): sin block then cos block
        a = p[:, None] * om[None]
        return torch.cat([a.sin(), a.cos()], 1)

    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    emb = torch.cat([sc(xx.reshape(-1)), sc(yy.reshape(-1))], 1) * 0.1
    return emb.reshape(h, w, ch).permute(2, 0, 1)


def _dpt_levels(taps: list[Tensor], sd: dict, h: str, ph: int, pw: int, uv: bool, norm: bool) -> list[Tensor]:
    out = []
    for k, t in enumerate(taps):
        if norm:
            t = _ln(t, sd, h + "norm", 1e-5)
        x = t.transpose(1, 2).reshape(t.shape[0], t.shape[2], ph, pw)
        x = _conv(x, sd, f"{h}projects.{k}", 0)
        if uv:
            x = x + uv_embed(x.shape[1], ph, pw, pw / ph)
        r = f"{h}resize_layers.{k}"
        if k == 0:
            x = F.conv_transpose2d(x, sd[r + ".weight"], sd[r + ".bias"], stride=4)
        elif k == 1:
            x = F.conv_transpose2d(x, sd[r + ".weight"], sd[r + ".bias"], stride=2)
        elif k == 3:
            x = F.conv2d(x, sd[r + ".weight"], sd[r + ".bias"], stride=2, padding=1)
        out.append(x)
    return out


def _fuse(levels: list[Tensor], sd: dict, h: str, suffix: str = "") -> Tensor:
    rn = [_conv(levels[k], sd, f"{h}scratch.layer{k + 1}_rn") for k in range(4)]
    x = _fusion(rn[3], None, sd, f"{h}scratch.refinenet4{suffix}", rn[2].shape[-2:])
    x = _fusion(x, rn[2], sd, f"{h}scratch.refinenet3{suffix}", rn[1].shape[-2:])
    x = _fusion(x, rn[1], sd, f"{h}scratch.refinenet2{suffix}", rn[0].shape[-2:])
    return _fusion(x, rn[0], sd, f"{h}scratch.refinenet1{suffix}", None)


def _out2(x: Tensor, sd: dict, n: str) -> Tensor:
    return _conv(F.relu(_conv(x, sd, n + ".0")), sd, n + ".2", 0)


def mono_head(taps: list[Tensor], sd: dict, ph: int, pw: int) -> tuple[Tensor, Tensor]:
    """DA3Mono/Metric DPT: (V, h, w) depth = exp(...) and sky = relu(...)."""
    h = P + "head."
    x = _conv(_fuse(_dpt_levels(taps, sd, h, ph, pw, uv=False, norm=False), sd, h), sd, h + "scratch.output_conv1")
    x = _up(x, (14 * ph, 14 * pw))
    depth = torch.exp(_out2(x, sd, h + "scratch.output_conv2"))[:, 0]
    sky = F.relu(_out2(x, sd, h + "scratch.sky_output_conv2"))[:, 0]
    return depth, sky


def dual_head(taps: list[Tensor], sd: dict, ph: int, pw: int) -> dict[str, Tensor]:
    """DualDPT: depth exp(c0), conf exp(c1) + 1 at (14ph, 14pw); ray (6) and ray_conf at (8ph, 8pw)."""
    h = P + "head."
    levels = _dpt_levels(taps, sd, h, ph, pw, uv=True, norm=True)
    x = _conv(_fuse(levels, sd, h), sd, h + "scratch.output_conv1")
    x = _up(x, (14 * ph, 14 * pw))
    x = x + uv_embed(x.shape[1], 14 * ph, 14 * pw, pw / ph)
    logits = _out2(x, sd, h + "scratch.output_conv2")
    a = _fuse(levels, sd, h, "_aux")
    for k in range(5):
        a = _conv(a, sd, f"{h}scratch.output_conv1_aux.3.{k}")
    a = a + uv_embed(a.shape[1], a.shape[-2], a.shape[-1], pw / ph)
    n = h + "scratch.output_conv2_aux.3."
    r = _conv(a, sd, n + "0").permute(0, 2, 3, 1)
    r = F.relu(F.layer_norm(r, (32,), sd[n + "2.weight"], sd[n + "2.bias"], 1e-5)).permute(0, 3, 1, 2)
    r = _conv(r, sd, n + "5", 0).permute(0, 2, 3, 1)
    return {"depth": logits[:, 0].exp(), "conf": logits[:, 1].exp() + 1, "ray": r[..., :6],
            "ray_conf": r[..., 6].exp() + 1}


def cameras(token: Tensor, sd: dict, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Camera tokens (S, C) -> world-to-camera (S, 3, 4) and intrinsics (S, 3, 3) (cam_dec.py, transform.py)."""
    n = P + "cam_dec."
    f = F.relu(_lin(F.relu(_lin(token, sd, n + "backbone.0")), sd, n + "backbone.2"))
    t, q, fov = _lin(f, sd, n + "fc_t"), _lin(f, sd, n + "fc_qvec"), F.relu(_lin(f, sd, n + "fc_fov.0"))
    x, y, z, r = (q / q.norm(dim=-1, keepdim=True)).unbind(-1)  # unit quaternion, real part last
    rot = torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * r), 2 * (x * z + y * r)], -1),
        torch.stack([2 * (x * y + z * r), 1 - 2 * (x * x + z * z), 2 * (y * z - x * r)], -1),
        torch.stack([2 * (x * z - y * r), 2 * (y * z + x * r), 1 - 2 * (x * x + y * y)], -1)], -2)
    w2c = torch.cat([rot.transpose(-1, -2), -(rot.transpose(-1, -2) @ t[..., None])], -1)
    fy = (h / 2) / torch.tan(fov[:, 0] / 2).clamp(min=1e-6)
    fx = (w / 2) / torch.tan(fov[:, 1] / 2).clamp(min=1e-6)
    k = torch.zeros(token.shape[0], 3, 3)
    k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2], k[:, 2, 2] = fx, fy, w / 2, h / 2, 1
    return w2c, k


def sky_fill(depth: Tensor, sky: Tensor) -> Tensor:
    """Official _process_mono_sky_estimation for one map with <= 100,000 non-sky pixels (no sampling)."""
    keep = sky < 0.3
    if keep.sum() <= 10 or (~keep).sum() <= 10:
        return depth
    vals = depth[keep].double().sort().values
    rank = 0.99 * (vals.numel() - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, vals.numel() - 1)
    q = vals[lo] + (vals[hi] - vals[lo]) * (rank - lo)
    out = depth.clone()
    out[~keep] = q.float()
    return out


def mono_forward(x: Tensor, sd: dict, c: Cfg) -> tuple[Tensor, Tensor]:
    """(3, H, W) normalised image -> (depth after the sky fill, sky score), both (H, W)."""
    taps, _, _ = encoder(x[None], sd, c)
    depth, sky = mono_head(taps, sd, x.shape[-2] // 14, x.shape[-1] // 14)
    return sky_fill(depth[0], sky[0]), sky[0]


def views_forward(x: Tensor, sd: dict, c: Cfg, strategy: str = "saddle_balanced", rope_start: int | None = None
                  ) -> dict[str, Tensor]:
    """(S, 3, H, W) normalised views -> depth, conf (S, H, W), extrinsics (S, 3, 4), intrinsics (S, 3, 3), ray
    outputs and the reference index."""
    taps, cams, ref = encoder(x, sd, c, strategy, rope_start)
    h, w = x.shape[-2:]
    out = dual_head(taps, sd, h // 14, w // 14)
    out["extrinsics"], out["intrinsics"] = cameras(cams[-1], sd, h, w)
    out["reference"] = torch.tensor(ref)
    return out
