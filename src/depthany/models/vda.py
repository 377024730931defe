"""Video Depth Anything = the DA-V2 DINOv2 encoder (``pretrained``) + a DPT head with temporal modules (``head``).

Key names are the official ones (``pretrained.*``, ``head.projects.*``, ``head.scratch.*``,
``head.motion_modules.{0-3}.*``) so official ``.pth`` files load with ``strict=True``. The image head's keys
(``depth_head.*``) become ``head.*``; :func:`video_model_from_image` turns any relative image checkpoint into a
video model that starts as the image model. Tensors in, tensors out: no IO, no resizing, no device choice.

Temporal modules sit after the reassembled (projected and resized) features of levels 3 and 4, before their
``layer*_rn`` convolutions, and after ``refinenet4`` and ``refinenet3`` (official ``DPTHeadTemporal``).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..zoo import Arch, TemporalSpec
from .depth_anything import DepthAnything
from .dpt import DPTHead, head_activation
from .temporal import FrameStates, TemporalModule
from .vit import DinoVisionTransformer

MICRO_BATCH = 4  # the official head runs refinenet2/1 and the output convs 4 frames at a time


class TemporalDPTHead(DPTHead):
    """The DPT head with four :class:`TemporalModule` s (``motion_modules``)."""

    def __init__(self, arch: Arch) -> None:
        super().__init__(arch.encoder.embed_dim, arch.features, arch.out_channels, arch.encoder.patch_size,
                         head_activation(arch))
        if arch.temporal is None:
            raise ValueError("TemporalDPTHead needs an architecture with a temporal spec")
        c, f, t = arch.out_channels, arch.features, arch.temporal
        self.motion_modules = nn.ModuleList(TemporalModule(ch, t) for ch in (c[2], c[3], f, f))
        self.states_per_module = t.transformer_blocks * t.attention_blocks  # a frame leaves 4x this many (8)

    def forward(self, tokens: list[Tensor], ph: int, pw: int, frames: int,  # type: ignore[override]
                cache: FrameStates | None = None) -> tuple[Tensor, FrameStates]:
        """Four (B*T, ph*pw, D) token maps of B clips of T = ``frames`` frames -> (B*T, 1, 14*ph, 14*pw).

        ``cache`` holds earlier frames' states (module by module, see :mod:`.temporal`); the returned list
        holds this call's states in the same order.
        """
        s = self.scratch
        per = self.states_per_module
        states: FrameStates = []

        def temporal(i: int, x: Tensor) -> Tensor:
            out, st = self.motion_modules[i](x, frames, None if cache is None else cache[i * per:(i + 1) * per])
            states.extend(st)
            return out

        l1, l2, l3, l4 = self.reassemble(tokens, ph, pw)
        l3, l4 = temporal(0, l3), temporal(1, l4)
        l1, l2, l3, l4 = s.layer1_rn(l1), s.layer2_rn(l2), s.layer3_rn(l3), s.layer4_rn(l4)
        path = temporal(2, s.refinenet4(l4, size=l3.shape[2:]))
        path = temporal(3, s.refinenet3(path, l3, size=l2.shape[2:]))
        n = l1.shape[0]
        if n <= MICRO_BATCH or n % MICRO_BATCH:
            out = self._output(self.fuse_lower(path, l2, l1, ph, pw)[0])
        else:  # per-frame maths, in chunks: bounds the memory of the full-resolution layers
            out = torch.cat([self._output(self.fuse_lower(path[i:i + MICRO_BATCH], l2[i:i + MICRO_BATCH],
                                                          l1[i:i + MICRO_BATCH], ph, pw)[0])
                             for i in range(0, n, MICRO_BATCH)])
        return out, states

    def _output(self, x: Tensor) -> Tensor:
        # Official: output_conv2 in float32 with CUDA autocast disabled, cast back to the incoming dtype.
        with torch.autocast(device_type="cuda", enabled=False):
            return self.scratch.output_conv2(x.float()).to(x.dtype)


class VideoDepthAnything(nn.Module):
    """The Video Depth Anything network (relative or metric; the two differ only in their weights).

    ``forward`` takes normalised (B, T, 3, H, W) clips, H and W multiples of 14, T <= ``temporal.max_frames``,
    and returns (B, T, H, W): relative disparity (>= 0, unknown scale and shift) or depth in metres (>= 0).
    """

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        if arch.temporal is None:
            raise ValueError("VideoDepthAnything needs an architecture with a temporal spec (family 'vda')")
        self.arch = arch
        self.pretrained = DinoVisionTransformer(arch.encoder)
        self.head = TemporalDPTHead(arch)

    @property
    def patch_size(self) -> int:
        return self.arch.encoder.patch_size

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_depth(self.forward_features(x), tuple(x.shape))[0]

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """(B, T, 3, H, W) -> the four tapped (B*T, ph*pw, D) token maps (frames run independently)."""
        if x.dim() != 5:
            raise ValueError(f"expected a (B, T, 3, H, W) clip, got shape {tuple(x.shape)}")
        return self.pretrained.get_intermediate_layers(x.flatten(0, 1), self.arch.layers)

    def forward_depth(self, features: list[Tensor], shape: tuple[int, ...],
                      cache: FrameStates | None = None) -> tuple[Tensor, FrameStates]:
        """Encoder features of a (B, T, 3, H, W) input -> ((B, T, H, W) output, the frames' temporal states)."""
        b, t, _, h, w = shape
        out, states = self.head(features, h // self.patch_size, w // self.patch_size, t, cache)
        # The official resize to (H, W) here is a same-size copy: the head already outputs H x W.
        return F.relu(out).squeeze(1).unflatten(0, (b, t)), states

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(encoder parameters, head parameters incl. the temporal modules), for per-group learning rates."""
        return list(self.pretrained.parameters()), list(self.head.parameters())


def video_arch(arch: Arch, temporal: TemporalSpec | None = None) -> Arch:
    """The Video Depth Anything architecture on an image model's encoder and DPT widths.

    Raises:
        ValueError: ``arch`` is a bounded (V2 metric, sigmoid) head: VDA heads end in a ReLU, so such a model
            cannot start as its image model.
    """
    if arch.bounded:
        raise ValueError("a V2 metric head (sigmoid x max_depth) has no Video Depth Anything counterpart; start "
                         "from a relative model")
    if arch.temporal is not None:
        return arch
    return dataclasses.replace(arch, family="vda", max_depth=None, temporal=temporal or TemporalSpec())


def video_model_from_image(image: DepthAnything, temporal: TemporalSpec | None = None) -> VideoDepthAnything:
    """A video model whose encoder and DPT weights are ``image`` 's and whose temporal modules are the identity.

    The temporal modules get the official initialisation (PyTorch defaults, sinusoid tables, ``proj_out``
    zeroed), so each frame's output equals the image model's until the modules are trained. The new
    parameters draw from torch's global random generator (seed it for reproducible runs).
    """
    video = VideoDepthAnything(video_arch(image.arch, temporal))
    state = {("head." + k[len("depth_head."):] if k.startswith("depth_head.") else k): v
             for k, v in image.state_dict().items()}
    missing, unexpected = video.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("head.motion_modules.") for k in missing):
        raise ValueError(f"image weights do not fit the video model: missing {missing}, unexpected {unexpected}")
    return video.to(next(image.parameters()).device)
