"""An independent functional re-implementation of the official V1 metric (ZoeDepth) inference, for the tests.

Written from the official description (LiheYoung/Depth-Anything @ 1d03336771fe09c5398ffdd211441e33941a97dc,
``metric_depth/zoedepth/models/``: ``zoedepth/zoedepth_v1.py`` ZoeDepth.forward, ``layers/localbins_layers.py``,
``layers/attractor.py``, ``layers/dist_layers.py``, ``base_models/depth_anything.py`` (PrepForMidas, Resize,
hooks), ``base_models/dpt_dinov2/dpt.py``, ``depth_model.py`` (infer_pil, padding, flip); docs/zoedepth.md) with
plain tensor functions reading the state dict by its official key names. No depthany module code is called:
the encoder/decoder helpers come from the functional oracle of tests/official_forward.py.

It also generates state dicts in the official file layout whose outputs are *not* flat: the seed bins and the
attractor points are spread over the depth range and the log-binomial temperature is low, so the depth map
varies by metres across an image and every weight group moves it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from depthany import zoo
from depthany.weights import expected_shapes
from official_forward import _block, _conv, _fuse, _ln, _pos_embed
from weights_helpers import random_state

Sd = dict[str, torch.Tensor]
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Official:
    """The settings of one official run; the defaults are the official ones. Changing one gives the output of a
    pipeline that gets that step wrong (used to show each step matters)."""

    pad_input: bool = True
    with_flip_aug: bool = True
    resize_align_corners: bool = True  # PrepForMidas' Resize: bilinear, align_corners=True
    upsampling: str = "bicubic"  # _infer_with_pad_aug's upsampling_mode
    keep_aspect: bool | None = None  # None: the model config's


# ------------------------------------------------------------------------------------ weights in the official layout

def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return torch.log(torch.expm1(y))


def official_state(arch: zoo.Arch, seed: int = 0) -> Sd:
    """A random state dict of the official ZoeDepth layout (``core.core.*`` + head) for ``arch`` (``arch.zoe`` set).

    The key set and shapes are written here from the official module definitions, not taken from our modules:
    ``conv2`` F->F; seed regressor F->256->n_bins; projectors F->128->E; attractors E->128->n (softplus) or 2n
    (normed); conditional log-binomial (33 + E) -> (33 + E) // 2 -> 4, plus the buffers ``k_idx`` (int64
    arange) and ``K_minus_1``.
    """
    cfg, f, e = arch.zoe, arch.features, None
    assert cfg is not None and arch.max_depth is not None
    e = cfg.bin_embedding_dim
    g = torch.Generator().manual_seed(1000 + seed)
    core_arch = zoo.Arch(arch.encoder, arch.layers, arch.features, arch.out_channels, family="v1")
    sd = {f"core.core.{k}": v for k, v in random_state(core_arch, seed).items()}

    def conv(name: str, cin: int, cout: int, scale: float = 1.0) -> None:
        sd[f"{name}.weight"] = torch.randn(cout, cin, 1, 1, generator=g) * scale / math.sqrt(cin)
        sd[f"{name}.bias"] = 0.1 * torch.randn(cout, generator=g)

    conv("conv2", f, f)
    conv("seed_bin_regressor._net.0", f, 256)
    conv("seed_bin_regressor._net.2", 256, cfg.n_bins, 0.3)
    span = (0.05 * arch.max_depth, 0.9 * arch.max_depth)
    if cfg.bin_centers_type in ("softplus", "hybrid2"):  # softplus centres spread over the range
        sd["seed_bin_regressor._net.2.bias"] = _inverse_softplus(torch.linspace(*span, cfg.n_bins))
    else:  # positive ReLU widths of different sizes
        sd["seed_bin_regressor._net.2.bias"] = 0.2 + torch.rand(cfg.n_bins, generator=g)
    conv("seed_projector._net.0", f, 128)
    conv("seed_projector._net.2", 128, e)
    for i, n in enumerate(cfg.n_attractors):
        conv(f"projectors.{i}._net.0", f, 128)
        conv(f"projectors.{i}._net.2", 128, e)
        conv(f"attractors.{i}._net.0", e, 128)
        normed = cfg.bin_centers_type in ("normed", "hybrid2")
        conv(f"attractors.{i}._net.2", 128, 2 * n if normed else n, 0.5)
        if normed:  # ReLU outputs (the first of each pair is the point) in (0, 1)
            sd[f"attractors.{i}._net.2.bias"] = 0.05 + 0.9 * torch.rand(2 * n, generator=g)
        else:  # softplus points in metres, spread over the range
            sd[f"attractors.{i}._net.2.bias"] = _inverse_softplus(span[0] + (span[1] - span[0]) * torch.rand(n, generator=g))
    c = 32 + 1 + e
    conv("conditional_log_binomial.mlp.0", c, c // 2)
    conv("conditional_log_binomial.mlp.2", c // 2, 4, 3.0)
    sd["conditional_log_binomial.mlp.2.bias"] = torch.tensor([0.0, 0.0, -3.0, 3.0])  # low temperature: peaked
    sd["conditional_log_binomial.log_binomial_transform.k_idx"] = torch.arange(cfg.n_bins).view(1, -1, 1, 1)
    sd["conditional_log_binomial.log_binomial_transform.K_minus_1"] = torch.tensor([cfg.n_bins - 1.0]).view(1, 1, 1, 1)
    return sd


def official_file(sd: Sd, prefix: str = "") -> dict:
    """What the official trainer's ``save_checkpoint`` writes (``prefix="module."`` for a DDP-wrapped save)."""
    return {"model": {prefix + k: v for k, v in sd.items()}, "optimizer": None, "epoch": 4}


# ------------------------------------------------------------------------------------------------------ the network

def core(sd: Sd, arch: zoo.Arch, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DPT_DINOv2.forward on the normalised input, plus the tensors the official hooks capture."""
    c = {k.removeprefix("core.core."): v for k, v in sd.items() if k.startswith("core.core.")}
    b, _, hh, ww = x.shape
    ph, pw = hh // 14, ww // 14
    t = F.conv2d(x, c["pretrained.patch_embed.proj.weight"], c["pretrained.patch_embed.proj.bias"], stride=14)
    t = torch.cat([c["pretrained.cls_token"].expand(b, -1, -1), t.flatten(2).transpose(1, 2)], dim=1)
    t = t + _pos_embed(c, ph, pw)
    taps = []
    for i in range(arch.encoder.depth):  # get_intermediate_layers(x, 4): the last four blocks
        t = _block(c, i, t, arch.encoder.num_heads)
        if i >= arch.encoder.depth - 4:
            taps.append(_ln(c, "pretrained.norm", t)[:, 1:])
    levels = []
    for k, tok in enumerate(taps):
        y = _conv(c, f"depth_head.projects.{k}", tok.transpose(1, 2).reshape(b, -1, ph, pw))
        if k < 2:
            y = F.conv_transpose2d(y, c[f"depth_head.resize_layers.{k}.weight"],
                                   c[f"depth_head.resize_layers.{k}.bias"], stride=4 // (k + 1))
        elif k == 3:
            y = _conv(c, "depth_head.resize_layers.3", y, padding=1, stride=2)
        levels.append(F.conv2d(y, c[f"depth_head.scratch.layer{k + 1}_rn.weight"], padding=1))
    hooks = {"l4_rn": levels[3]}
    hooks["r4"] = _fuse(c, 4, levels[3], None, levels[2].shape[2:])
    hooks["r3"] = _fuse(c, 3, hooks["r4"], levels[2], levels[1].shape[2:])
    hooks["r2"] = _fuse(c, 2, hooks["r3"], levels[1], levels[0].shape[2:])
    hooks["r1"] = _fuse(c, 1, hooks["r2"], levels[0], None)
    out = _conv(c, "depth_head.scratch.output_conv1", hooks["r1"], padding=1)
    out = F.interpolate(out, (ph * 14, pw * 14), mode="bilinear", align_corners=True)
    hooks["out_conv"] = torch.relu(_conv(c, "depth_head.scratch.output_conv2.0", out, padding=1))  # children()[1]
    out = torch.relu(_conv(c, "depth_head.scratch.output_conv2.2", hooks["out_conv"]))
    rel = torch.relu(F.interpolate(out, size=(hh, ww), mode="bilinear", align_corners=True)).squeeze(1)
    return rel, hooks


def _mlp(sd: Sd, name: str, x: torch.Tensor, act: str) -> torch.Tensor:
    """``name._net``: 1x1 conv, ReLU, 1x1 conv, then ``act``."""
    y = _conv(sd, f"{name}._net.2", torch.relu(_conv(sd, f"{name}._net.0", x)))
    return {"relu": torch.relu, "softplus": F.softplus, "none": lambda v: v}[act](y)


def _up(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def head(sd: Sd, arch: zoo.Arch, rel: torch.Tensor, hooks: dict[str, torch.Tensor]) -> torch.Tensor:
    """ZoeDepth.forward after the core: (B, 1, h, w) metres."""
    cfg = arch.zoe
    assert cfg is not None and arch.max_depth is not None
    lo, hi = cfg.min_depth, arch.max_depth
    normed_seed = cfg.bin_centers_type in ("normed", "hybrid1")
    normed_attr = cfg.bin_centers_type in ("normed", "hybrid2")
    x = _conv(sd, "conv2", hooks["l4_rn"])
    if normed_seed:  # SeedBinRegressor
        widths = _mlp(sd, "seed_bin_regressor", x, "relu") + 1e-3
        widths = (hi - lo) * (widths / widths.sum(dim=1, keepdim=True))
        edges = torch.cumsum(F.pad(widths, (0, 0, 0, 0, 1, 0), mode="constant", value=lo), dim=1)
        centres = 0.5 * (edges[:, :-1] + edges[:, 1:])
    else:  # SeedBinRegressorUnnormed
        centres = _mlp(sd, "seed_bin_regressor", x, "softplus")
    b_prev = (centres - lo) / (hi - lo) if normed_attr else centres
    prev_emb = _mlp(sd, "seed_projector", x, "none")
    alpha, gamma = cfg.attractor_alpha, cfg.attractor_gamma
    for i, name in enumerate(("r4", "r3", "r2", "r1")):
        emb = _mlp(sd, f"projectors.{i}", hooks[name], "none")
        z = emb + _up(prev_emb, emb.shape[-2:])
        if normed_attr:  # AttractorLayer: A + eps, viewed as pairs, the first of each pair
            a = _mlp(sd, f"attractors.{i}", z, "relu") + 1e-3
            n, _, h, w = a.shape
            points = a.view(n, cfg.n_attractors[i], 2, h, w)[:, :, 0, ...]
        else:  # AttractorLayerUnnormed
            points = _mlp(sd, f"attractors.{i}", z, "softplus")
        b_c = _up(b_prev, points.shape[-2:])
        dx = points.unsqueeze(2) - b_c.unsqueeze(1)
        if cfg.attractor_type == "exp":
            dc = torch.exp(-alpha * (torch.abs(dx) ** gamma)) * dx
        else:
            dc = dx.div(1 + alpha * dx.pow(gamma))
        delta = torch.mean(dc, dim=1) if cfg.attractor_kind == "mean" else torch.sum(dc, dim=1)
        b_new = b_c + delta
        if normed_attr:
            bc = torch.clip(torch.sort((hi - lo) * b_new + lo, dim=1)[0], lo, hi)
        else:
            bc = b_new
        b_prev, prev_emb = b_new.clone(), emb.clone()
    last = torch.cat([hooks["out_conv"], _up(rel.unsqueeze(1), hooks["out_conv"].shape[2:])], dim=1)
    cond = _up(prev_emb, last.shape[-2:])
    pt = F.softplus(_conv(sd, "conditional_log_binomial.mlp.2",
                          F.gelu(_conv(sd, "conditional_log_binomial.mlp.0", torch.cat([last, cond], dim=1)))))
    p, t = pt[:, :2] + 1e-4, pt[:, 2:] + 1e-4
    p = (p[:, 0] / (p[:, 0] + p[:, 1])).unsqueeze(1)
    t = (cfg.max_temp - cfg.min_temp) * (t[:, 0] / (t[:, 0] + t[:, 1])).unsqueeze(1) + cfg.min_temp
    kk = torch.arange(cfg.n_bins).view(1, -1, 1, 1)
    nn_ = torch.tensor([cfg.n_bins - 1.0]).view(1, 1, 1, 1)
    q, r = nn_ + 1e-7, kk + 1e-7
    log_binom = q * torch.log(q) - r * torch.log(r) - (q - r) * torch.log(q - r + 1e-7)
    y = log_binom + kk * torch.log(torch.clamp(p, 1e-4, 1)) + (cfg.n_bins - 1 - kk) * torch.log(torch.clamp(1 - p, 1e-4, 1))
    probs = torch.softmax(y / t, dim=1)
    return torch.sum(probs * _up(bc, probs.shape[-2:]), dim=1, keepdim=True)


# ------------------------------------------------------------------------------------------------- the inference

def resize_target(h: int, w: int, img_size: tuple[int, int], keep_aspect: bool) -> tuple[int, int]:
    """``Resize(net_w, net_h, keep_aspect_ratio, ensure_multiple_of=14, resize_method="minimal").get_size``."""
    sh, sw = img_size[0] / h, img_size[1] / w
    if keep_aspect:
        if abs(1 - sw) < abs(1 - sh):
            sh = sw
        else:
            sw = sh
    return int(np.round(sh * h / 14) * 14), int(np.round(sw * w / 14) * 14)


def forward(sd: Sd, arch: zoo.Arch, x01: torch.Tensor, how: Official = Official()) -> torch.Tensor:
    """ZoeDepth.forward on a [0, 1] image (the core prepares it): (B, 1, h, w) metres at the network size."""
    cfg = arch.zoe
    assert cfg is not None
    keep = cfg.keep_aspect if how.keep_aspect is None else how.keep_aspect
    size = resize_target(x01.shape[2], x01.shape[3], cfg.img_size, keep)
    x = F.interpolate(x01, size, mode="bilinear", align_corners=how.resize_align_corners)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    rel, hooks = core(sd, arch, x)
    return head(sd, arch, rel, hooks)


def _pad_infer(sd: Sd, arch: zoo.Arch, x: torch.Tensor, how: Official) -> torch.Tensor:
    if how.pad_input:
        pad_h, pad_w = int(np.sqrt(x.shape[2] / 2) * 3), int(np.sqrt(x.shape[3] / 2) * 3)
        x = F.pad(x, [pad_w, pad_w, pad_h, pad_h], mode="reflect")
    out = forward(sd, arch, x, how)
    if out.shape[-2:] != x.shape[-2:]:
        kw = {} if how.upsampling == "nearest" else {"align_corners": False}
        out = F.interpolate(out, size=(x.shape[2], x.shape[3]), mode=how.upsampling, **kw)
    if how.pad_input:
        out = out[:, :, pad_h:-pad_h, pad_w:-pad_w]
    return out


def infer_pil(sd: Sd, arch: zoo.Arch, rgb: np.ndarray, how: Official = Official()) -> np.ndarray:
    """``DepthModel.infer_pil(img, pad_input, with_flip_aug)``: (H, W) float32 metres."""
    x = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)  # transforms.ToTensor
    with torch.no_grad():
        out = _pad_infer(sd, arch, x, how)
        if how.with_flip_aug:
            out = (out + torch.flip(_pad_infer(sd, arch, torch.flip(x, dims=[3]), how), dims=[3])) / 2
    return out.squeeze().numpy()


def shapes_match(arch: zoo.Arch, sd: Sd) -> bool:
    """The generated state dict has exactly our model's keys and shapes (checked, not assumed)."""
    return {k: tuple(v.shape) for k, v in sd.items()} == expected_shapes(arch)
