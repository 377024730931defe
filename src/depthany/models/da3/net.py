"""Depth Anything 3 networks: tensors in, tensors out (no image IO, resizing or device choice).

Official checkpoints (``model.safetensors`` of the Hugging Face repos) store the network under ``model.``, the
attribute of the Hub wrapper class; :class:`DepthAnything3` has that one attribute, so its state dict is the
file's, key for key (``model.backbone.pretrained.*``, ``model.head.*``, ``model.cam_enc.*``, ``model.cam_dec.*``,
``model.gs_head.*``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...zoo import Arch
from .backbone import AnyViewEncoder, Backbone, mono_encoder
from .camera import CameraDecoder, CameraEncoder, pose_to_cameras
from .heads import DualDPTHead, GaussianHeadWeights, SkyDPTHead
from .refview import RefViewStrategy


@dataclass
class MonoOutput:
    """Raw network output for B images at processing resolution.

    Attributes:
        depth: (B, h, w) float32 > 0, relative depth (DA3Mono) or depth at focal 300 px (DA3Metric), before
            the sky fill.
        sky: (B, h, w) float32 >= 0, sky score (ReLU output; the official code calls < 0.3 "not sky").
    """

    depth: Tensor
    sky: Tensor


@dataclass
class MultiViewOutput:
    """Raw any-view output for B scenes of S views each, at processing resolution (h, w).

    Attributes:
        depth: (B, S, h, w) float32 > 0, depth in the scene's (unknown) scale.
        conf: (B, S, h, w) float32 >= 1, confidence (exp + 1).
        extrinsics: (B, S, 3, 4) float32 world-to-camera ``[R | t]``; world = the reference view's camera.
        intrinsics: (B, S, 3, 3) float32 pinhole intrinsics in pixels at (h, w).
        pose: (B, S, 9) the decoder's pose encoding (t, quaternion xyzw, fov_h, fov_w).
        reference: (B,) int64 index of the reference view (whose camera defines the world frame).
        ray, ray_conf: (B, S, 8*ph, 8*pw, 6) and (B, S, 8*ph, 8*pw) auxiliary rays, only when requested.
    """

    depth: Tensor
    conf: Tensor
    extrinsics: Tensor
    intrinsics: Tensor
    pose: Tensor
    reference: Tensor
    ray: Tensor | None = None
    ray_conf: Tensor | None = None


class DA3Net(nn.Module):
    """The network: ``backbone`` (encoder at ``backbone.pretrained``), ``head``, and for any-view models the
    camera encoder/decoder (``cam_enc``, ``cam_dec``) and, for DA3-Giant, the Gaussian head (``gs_head``)."""

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        if not arch.is_da3:
            raise ValueError(f"not a Depth Anything 3 architecture (family {arch.family!r})")
        self.arch = arch
        enc = arch.encoder
        if arch.views is None:
            self.backbone = Backbone(mono_encoder(enc))
            self.head: nn.Module = SkyDPTHead(arch)
            return
        self.backbone = Backbone(AnyViewEncoder(enc, arch.views))
        dim = enc.embed_dim * (2 if arch.views.cat_token else 1)
        self.head = DualDPTHead(dim, arch.features, arch.out_channels, enc.patch_size)
        self.cam_enc = CameraEncoder(enc.embed_dim)
        self.cam_dec = CameraDecoder(dim)
        if arch.gaussian_head:
            self.gs_head = GaussianHeadWeights(dim, arch.features, arch.out_channels, enc.patch_size)


class DepthAnything3(nn.Module):
    """A Depth Anything 3 model with the official state-dict layout (one attribute, ``model``).

    ``forward_mono`` serves DA3Mono/DA3Metric, ``forward_views`` the any-view models. Inputs are normalised
    images with H and W multiples of 14 (:func:`depthany.da3.preprocess.preprocess`).
    """

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        self.arch = arch
        self.model = DA3Net(arch)

    @property
    def patch_size(self) -> int:
        return self.arch.encoder.patch_size

    @property
    def is_multiview(self) -> bool:
        return self.arch.views is not None

    def forward_mono(self, x: Tensor) -> MonoOutput:
        """(B, 3, H, W) normalised images -> :class:`MonoOutput` at (H, W). Images are independent."""
        if self.is_multiview:
            raise ValueError("this is an any-view model; call forward_views with (B, S, 3, H, W)")
        ps = self.patch_size
        ph, pw = x.shape[-2] // ps, x.shape[-1] // ps
        tokens = self.model.backbone.pretrained.get_intermediate_layers(x, self.arch.layers)
        depth, sky = self.model.head(tokens, ph, pw)
        return MonoOutput(depth, sky)

    def forward_views(self, x: Tensor, ref_view_strategy: RefViewStrategy = "saddle_balanced",
                      rays: bool = False) -> MultiViewOutput:
        """(B, S, 3, H, W) normalised views of B scenes -> :class:`MultiViewOutput` at (H, W)."""
        if not self.is_multiview:
            raise ValueError("this is a single-image (mono/metric) model; call forward_mono with (B, 3, H, W)")
        if x.ndim != 5:
            raise ValueError(f"expected views as (B, S, 3, H, W), got shape {tuple(x.shape)}")
        b, s, _, h, w = x.shape
        ps = self.patch_size
        feats, cams, ref = self.model.backbone.pretrained(x, self.arch.layers, ref_view_strategy)
        out = self.model.head([f.reshape(b * s, *f.shape[2:]) for f in feats], h // ps, w // ps, rays=rays)
        pose = self.model.cam_dec(cams[-1])
        extrinsics, intrinsics = pose_to_cameras(pose, (h, w))
        views = {k: v.reshape(b, s, *v.shape[1:]) for k, v in out.items()}
        return MultiViewOutput(views["depth"], views["depth_conf"], extrinsics, intrinsics, pose, ref,
                               views.get("ray"), views.get("ray_conf"))

    def forward(self, x: Tensor) -> MonoOutput | MultiViewOutput:
        return self.forward_views(x) if self.is_multiview else self.forward_mono(x)


def build_da3(arch: Arch, device: torch.device | str | None = None) -> DepthAnything3:
    """Construct an untrained DA3 model (zero / default initialisation) in eval mode."""
    model = DepthAnything3(arch)
    if device is not None:
        model = model.to(device)
    return model.eval()
