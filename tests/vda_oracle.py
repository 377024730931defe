"""An independent re-implementation of the official Video Depth Anything code, for the VDA tests.

Written from the official description (docs/video_depth_anything.md, DepthAnything/Video-Depth-Anything at
4f5ae23172ba60fd7bc11ef671cca678842c7072): plain tensor ops on a state dict with the official key names, no
depthany module code. It follows the official scripts' shape, not ours:

* :func:`official_forward` - ``VideoDepthAnything.forward`` / ``forward_depth`` with optional cached states
  (explicit softmax attention, functional convolutions; the encoder pieces are the V2 oracle's);
* :func:`official_infer_video_depth` - ``infer_video_depth``: the whole video decoded and padded up front,
  every window's outputs kept, stitched at the end;
* :class:`OfficialStream` - ``infer_video_depth_one`` with its ``frame_cache_list`` / ``frame_id_list``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from depthany import zoo
from official_forward import _block, _conv, _linear, _ln, _pos_embed, _rcu

Sd = dict[str, torch.Tensor]
INFER_LEN, OVERLAP, INTERP_LEN = 32, 10, 8
KEYFRAMES = [0, 12, 24, 25, 26, 27, 28, 29, 30, 31]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


# ----------------------------------------------------------------------------------------- checkpoints


def sinusoid(max_len: int, dim: int) -> torch.Tensor:
    """The official PositionalEncoding table (1, max_len, dim): sin at even, cos at odd channels."""
    pe = torch.zeros(1, max_len, dim)
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    pe[0, :, 0::2] = torch.sin(pos * freq).float()
    pe[0, :, 1::2] = torch.cos(pos * freq).float()
    return pe


def random_vda_state(arch: zoo.Arch, seed: int = 0) -> Sd:
    """A random checkpoint in the official layout: every tensor non-zero, temporal modules included, the
    positional-encoding buffers the real sinusoid tables, a positive output bias (outputs above the ReLU)."""
    from depthany.weights import expected_shapes  # only the key list; values are drawn here

    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in expected_shapes(arch).items():
        t = torch.randn(shape, generator=g)
        if key.endswith("pos_encoder.pe"):
            t = sinusoid(shape[1], shape[2])
        elif "norm" in key and key.endswith("weight"):
            t = 1.0 + 0.2 * t
        elif key.endswith("gamma"):
            t = 0.5 + 0.2 * t
        elif key.endswith("bias"):
            t = 0.1 * t
        elif key.endswith(("pos_embed", "cls_token")):
            pass
        else:
            t = t / math.sqrt(math.prod(shape[1:]) if len(shape) > 1 else 1)
        sd[key] = t
    sd["head.scratch.output_conv2.2.bias"].fill_(1.0)
    return sd


# ----------------------------------------------------------------------------------------- network


def _attention(sd: Sd, p: str, x: torch.Tensor, b: int, t: int, cache: torch.Tensor | None,
               heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """TemporalAttention: x (b*t, d, c) normalised -> output (b*t, d, c), state (b*d, t, c)."""
    _, d, c = x.shape
    state = x.reshape(b, t, d, c).permute(0, 2, 1, 3).reshape(b * d, t, c)
    seq = state if cache is None else torch.cat([cache, state], 1)
    seq = seq + sd[f"{p}.pos_encoder.pe"][:, : seq.shape[1]]
    q = seq[:, -t:] @ sd[f"{p}.to_q.weight"].T
    k = seq @ sd[f"{p}.to_k.weight"].T
    v = seq @ sd[f"{p}.to_v.weight"].T
    split = [z.reshape(z.shape[0], z.shape[1], heads, c // heads).permute(0, 2, 1, 3) for z in (q, k, v)]
    att = torch.softmax(split[0] @ split[1].transpose(-1, -2) * (c // heads) ** -0.5, dim=-1)
    o = (att @ split[2]).permute(0, 2, 1, 3).reshape(b * d, t, c)
    o = _linear(sd, f"{p}.to_out.0", o)
    return o.reshape(b, d, t, c).permute(0, 2, 1, 3).reshape(b * t, d, c), state


def _layer_norm(sd: Sd, name: str, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-5)


def motion_module(sd: Sd, i: int, x: torch.Tensor, t: int, cache: list[torch.Tensor] | None,
                  heads: int = 8) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``head.motion_modules.i`` on (b*t, C, H, W): GroupNorm(32, eps 1e-6) -> proj_in -> 2 pre-norm temporal
    attentions -> GEGLU FF -> proj_out -> + x."""
    p = f"head.motion_modules.{i}.temporal_transformer"
    bt, c, h, w = x.shape
    y = F.group_norm(x, 32, sd[f"{p}.norm.weight"], sd[f"{p}.norm.bias"], eps=1e-6)
    y = _linear(sd, f"{p}.proj_in", y.permute(0, 2, 3, 1).reshape(bt, h * w, c))
    blk = f"{p}.transformer_blocks.0"
    states = []
    for j in range(2):
        out, st = _attention(sd, f"{blk}.attention_blocks.{j}", _layer_norm(sd, f"{blk}.norms.{j}", y), bt // t, t,
                             None if cache is None else cache[j], heads)
        y = out + y
        states.append(st)
    hidden, gate = _linear(sd, f"{blk}.ff.net.0.proj", _layer_norm(sd, f"{blk}.ff_norm", y)).chunk(2, dim=-1)
    y = _linear(sd, f"{blk}.ff.net.2", hidden * 0.5 * gate * (1 + torch.erf(gate / math.sqrt(2)))) + y
    y = _linear(sd, f"{p}.proj_out", y).reshape(bt, h, w, c).permute(0, 3, 1, 2)
    return y + x, states


def _fuse(sd: Sd, k: int, x: torch.Tensor, skip: torch.Tensor | None, size) -> torch.Tensor:
    name = f"head.scratch.refinenet{k}"
    if skip is not None:
        x = x + _rcu(sd, f"{name}.resConfUnit1", skip)
    x = _rcu(sd, f"{name}.resConfUnit2", x)
    up = dict(size=size) if size is not None else dict(scale_factor=2)
    return _conv(sd, f"{name}.out_conv", F.interpolate(x, **up, mode="bilinear", align_corners=True))


def official_forward(sd: Sd, arch: zoo.Arch, x: torch.Tensor,
                     cache: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(B, T, 3, H, W) normalised -> ((B, T, H, W) ReLU depth, the 8 temporal states)."""
    b, t, _, hh, ww = x.shape
    ph, pw = hh // 14, ww // 14
    x = x.flatten(0, 1)
    tok = F.conv2d(x, sd["pretrained.patch_embed.proj.weight"], sd["pretrained.patch_embed.proj.bias"], stride=14)
    tok = tok.flatten(2).transpose(1, 2)
    tok = torch.cat([sd["pretrained.cls_token"].expand(b * t, -1, -1), tok], 1) + _pos_embed(sd, ph, pw)
    taps = []
    for i in range(max(arch.layers) + 1):
        tok = _block(sd, i, tok, arch.encoder.num_heads)
        if i in arch.layers:
            taps.append(_ln(sd, "pretrained.norm", tok)[:, 1:])
    levels = []
    for k, tk in enumerate(taps):
        f = _conv(sd, f"head.projects.{k}", tk.transpose(1, 2).reshape(b * t, -1, ph, pw))
        if k in (0, 1):
            f = F.conv_transpose2d(f, sd[f"head.resize_layers.{k}.weight"], sd[f"head.resize_layers.{k}.bias"],
                                   stride=4 if k == 0 else 2)
        elif k == 3:
            f = _conv(sd, "head.resize_layers.3", f, padding=1, stride=2)
        levels.append(f)
    states: list[torch.Tensor] = []

    def mm(i: int, z: torch.Tensor) -> torch.Tensor:
        out, st = motion_module(sd, i, z, t, None if cache is None else cache[2 * i:2 * i + 2])
        states.extend(st)
        return out

    levels[2], levels[3] = mm(0, levels[2]), mm(1, levels[3])
    l1, l2, l3, l4 = (F.conv2d(f, sd[f"head.scratch.layer{k + 1}_rn.weight"], padding=1) for k, f in enumerate(levels))
    p = mm(2, _fuse(sd, 4, l4, None, l3.shape[2:]))
    p = mm(3, _fuse(sd, 3, p, l3, l2.shape[2:]))
    p = _fuse(sd, 2, p, l2, l1.shape[2:])
    p = _fuse(sd, 1, p, l1, None)
    out = _conv(sd, "head.scratch.output_conv1", p, padding=1)
    out = F.interpolate(out, (ph * 14, pw * 14), mode="bilinear", align_corners=True)
    out = torch.relu(_conv(sd, "head.scratch.output_conv2.0", out, padding=1))
    out = torch.relu(_conv(sd, "head.scratch.output_conv2.2", out))
    return torch.relu(out).squeeze(1).unflatten(0, (b, t)), states


# ----------------------------------------------------------------------------------------- preprocessing


def official_input_size(frame_h: int, frame_w: int, input_size: int) -> int:
    ratio = max(frame_h, frame_w) / min(frame_h, frame_w)
    if ratio > 1.78:
        input_size = int(input_size * 1.777 / ratio)
        input_size = round(input_size / 14) * 14
    return input_size


def official_transform(frame: np.ndarray, size: int) -> torch.Tensor:
    """Resize(lower_bound, multiple of 14, INTER_CUBIC) -> NormalizeImage -> PrepareForNet on
    ``frame.astype(np.float32) / 255.0``; returns (3, h, w) float32."""
    image = frame.astype(np.float32) / 255.0
    h, w = image.shape[:2]
    scale = max(size / h, size / w)

    def constrain(x: float) -> int:
        y = int(np.round(x / 14) * 14)
        return int(np.ceil(x / 14) * 14) if y < size else y

    image = cv2.resize(image, (constrain(scale * w), constrain(scale * h)), interpolation=cv2.INTER_CUBIC)
    image = (image - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(np.transpose(image, (2, 0, 1))).astype(np.float32))


# ----------------------------------------------------------------------------------------- offline


def official_scale_shift(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray):
    prediction, target, mask = (a.astype(np.float32) for a in (prediction, target, mask))
    a_00 = np.sum(mask * prediction * prediction)
    a_01 = np.sum(mask * prediction)
    a_11 = np.sum(mask)
    b_0 = np.sum(mask * prediction * target)
    b_1 = np.sum(mask * target)
    x_0, x_1 = 1, 0
    det = a_00 * a_11 - a_01 * a_01
    if det != 0:
        x_0 = (a_11 * b_0 - a_01 * b_1) / det
        x_1 = (-a_01 * b_0 + a_00 * b_1) / det
    return x_0, x_1


def official_interpolate(pre: list[np.ndarray], post: list[np.ndarray]) -> list[np.ndarray]:
    step = 1.0 / (len(pre) - 1)
    weights = [0.0] + [i * step for i in range(1, len(pre) - 1)] + [1.0]
    return [a * (1 - w) + b * w for a, b, w in zip(pre, post, weights)]


Forward = Callable[[torch.Tensor], torch.Tensor]


def official_infer_video_depth(forward: Forward, frames: np.ndarray, input_size: int,
                               metric: bool = False) -> np.ndarray:
    """``infer_video_depth(frames, fps, input_size, fp32=True)``: (N, H, W, 3) uint8 -> (N, H, W) float32.

    ``forward`` maps a normalised (1, 32, 3, h, w) clip to (1, 32, h, w) depth.
    """
    n, fh, fw = frames.shape[:3]
    size = official_input_size(fh, fw, input_size)
    frame_list = [frames[i] for i in range(n)]
    step = INFER_LEN - OVERLAP
    append = (step - (n % step)) % step + (INFER_LEN - step)
    frame_list = frame_list + [frame_list[-1].copy()] * append
    depth_list: list[np.ndarray] = []
    pre_input = None
    for frame_id in range(0, n, step):
        cur = torch.stack([official_transform(frame_list[frame_id + i], size) for i in range(INFER_LEN)])[None]
        if pre_input is not None:
            cur[:, :OVERLAP] = pre_input[:, KEYFRAMES]
        with torch.no_grad():
            depth = forward(cur)
        depth = F.interpolate(depth.flatten(0, 1).unsqueeze(1), size=(fh, fw), mode="bilinear", align_corners=True)
        depth_list += [depth[i][0].numpy() for i in range(depth.shape[0])]
        pre_input = cur
    aligned: list[np.ndarray] = []
    ref: list[np.ndarray] = []
    align_len = OVERLAP - INTERP_LEN
    kf_align = KEYFRAMES[:align_len]
    for frame_id in range(0, len(depth_list), INFER_LEN):
        if not aligned:
            aligned += depth_list[:INFER_LEN]
            ref += [depth_list[frame_id + k] for k in kf_align]
            continue
        curr = [depth_list[frame_id + i] for i in range(len(kf_align))]
        if metric:
            scale, shift = 1.0, 0.0
        else:
            scale, shift = official_scale_shift(np.concatenate(curr), np.concatenate(ref),
                                                np.concatenate(np.ones_like(ref) == 1))
        pre = aligned[-INTERP_LEN:]
        post = list(depth_list[frame_id + align_len:frame_id + OVERLAP])
        for i in range(len(post)):
            post[i] = post[i] * scale + shift
            post[i][post[i] < 0] = 0
        aligned[-INTERP_LEN:] = official_interpolate(pre, post)
        for i in range(OVERLAP, INFER_LEN):
            d = depth_list[frame_id + i] * scale + shift
            d[d < 0] = 0
            aligned.append(d)
        ref = ref[:1]
        for k in kf_align[1:]:
            d = depth_list[frame_id + k] * scale + shift
            d[d < 0] = 0
            ref.append(d)
    return np.stack(aligned[:n], axis=0)


# ----------------------------------------------------------------------------------------- streaming


class OfficialStream:
    """``infer_video_depth_one`` with the official cache bookkeeping (ids kept too, to check the schedule).

    ``forward(clip, cache)`` maps a (1, 1, 3, h, w) clip and the concatenated cache (or None) to
    ((1, 1, h, w) depth, the frame's 8 states).
    """

    def __init__(self, forward: Callable, input_size: int) -> None:
        self.forward, self.input_size = forward, input_size
        self.gap = (INFER_LEN - OVERLAP) * 2 - 1 - (OVERLAP - INTERP_LEN)
        assert self.gap == 41
        self.frame_id_list: list[int] = []
        self.frame_cache_list: list = []
        self.id = -1
        self.size: int | None = None
        self.context_ids: list[list[int]] = []

    def step(self, frame: np.ndarray) -> np.ndarray:
        self.id += 1
        fh, fw = frame.shape[:2]
        if self.size is None:
            self.size = official_input_size(fh, fw, self.input_size)
            cur = official_transform(frame, self.size)[None, None]
            with torch.no_grad():
                depth, states = self.forward(cur, None)
            self.frame_cache_list = [states] * INFER_LEN
            self.frame_id_list.extend([0] * (INFER_LEN - 1))
        else:
            cur = official_transform(frame, self.size)[None, None]
            cur_list = self.frame_cache_list[0:2] + self.frame_cache_list[-INFER_LEN + 3:]
            self.context_ids.append(self.frame_id_list[0:2] + self.frame_id_list[-INFER_LEN + 3:])
            assert len(cur_list) == INFER_LEN - 1
            cache = [torch.cat([h[i] for h in cur_list], dim=1) for i in range(len(cur_list[0]))]
            with torch.no_grad():
                depth, states = self.forward(cur, cache)
            self.frame_cache_list.append(states)
        depth = F.interpolate(depth.flatten(0, 1).unsqueeze(1), size=(fh, fw), mode="bilinear", align_corners=True)
        self.frame_id_list.append(self.id)
        if self.id + INFER_LEN > self.gap + 1:
            del self.frame_id_list[1]
            del self.frame_cache_list[1]
        return depth[0][0].numpy()
