"""Depth Anything 3 cameras: the decoder (camera token -> pose encoding -> extrinsics, intrinsics) and the
encoder's weights (known poses -> camera tokens).

Pose encoding (9 numbers per view): translation t (3), quaternion q = (x, y, z, w) (4, scalar last, not
necessarily unit), vertical and horizontal field of view (2, radians). It describes camera-to-world:
``R = R(q)``, camera centre ``t``. Extrinsics are returned world-to-camera, ``[R^T | -R^T t]`` (3 x 4), and
intrinsics ``fx = (W/2) / tan(fov_w/2)``, ``fy = (H/2) / tan(fov_h/2)`` (tangents clamped at 1e-6),
``cx = W/2``, ``cy = H/2`` in pixels of the processing resolution. The world frame is the reference view's
camera frame (its extrinsics are close to identity; the scale is the network's).

Attribute names follow the official checkpoints (``model.cam_dec.fc_qvec``, ``model.cam_enc.trunk.0.attn.qkv``,
...), so official state dicts load with ``strict=True`` and no renaming.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...zoo import EncoderSpec
from ..vit import Block, Mlp

POSE_DIM = 9  # t (3) + quaternion (4) + fov (2)
CAM_ENC_DEPTH = 4  # camera-encoder transformer blocks
CAM_ENC_HEADS = 16
CAM_ENC_EPS = 1e-5  # nn.LayerNorm default, used throughout the camera encoder
FOCAL_TAN_MIN = 1e-6


class CameraDecoder(nn.Module):
    """Camera token (B, S, dim_in) -> pose encoding (B, S, 9).

    ``backbone``: Linear-ReLU-Linear-ReLU (width dim_in); ``fc_t`` (3), ``fc_qvec`` (4), ``fc_fov`` (Linear to 2,
    then ReLU, so fields of view are >= 0).
    """

    def __init__(self, dim_in: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(dim_in, dim_in), nn.ReLU(), nn.Linear(dim_in, dim_in), nn.ReLU())
        self.fc_t = nn.Linear(dim_in, 3)
        self.fc_qvec = nn.Linear(dim_in, 4)
        self.fc_fov = nn.Sequential(nn.Linear(dim_in, 2), nn.ReLU())

    def forward(self, token: Tensor) -> Tensor:
        feat = self.backbone(token.reshape(-1, token.shape[-1]))  # 2D, as the official code: same GEMM rounding
        pose = torch.cat((self.fc_t(feat), self.fc_qvec(feat), self.fc_fov(feat)), dim=-1)
        return pose.reshape(*token.shape[:-1], pose.shape[-1])


class CameraEncoder(nn.Module):
    """Known poses -> camera tokens (pose-conditioned inference). Weights only for now: loaded so that official
    any-view checkpoints load strictly; the pose-conditioned path is not implemented yet.

    ``pose_branch`` MLP (9 -> D/2 -> D), ``token_norm``, four pre-norm blocks (``trunk``; 16 heads, LayerScale,
    LayerNorm eps 1e-5), ``trunk_norm``.
    """

    def __init__(self, dim_out: int) -> None:
        super().__init__()
        spec = EncoderSpec("da3-camera-encoder", dim_out, CAM_ENC_DEPTH, CAM_ENC_HEADS)
        self.trunk = nn.Sequential(*(Block(spec, eps=CAM_ENC_EPS) for _ in range(CAM_ENC_DEPTH)))
        self.token_norm = nn.LayerNorm(dim_out, eps=CAM_ENC_EPS)
        self.trunk_norm = nn.LayerNorm(dim_out, eps=CAM_ENC_EPS)
        self.pose_branch = Mlp(POSE_DIM, dim_out // 2)
        self.pose_branch.fc2 = nn.Linear(dim_out // 2, dim_out)


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """(..., 4) quaternions (x, y, z, w), any non-zero norm -> (..., 3, 3) rotation matrices."""
    x, y, z, w = q.unbind(-1)
    s = 2.0 / (q * q).sum(-1)
    m = (
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
    )
    return torch.stack(m, dim=-1).reshape(*q.shape[:-1], 3, 3)


def invert_rigid(pose: Tensor) -> Tensor:
    """(..., 3, 4) ``[R | t]`` -> ``[R^T | -R^T t]`` (the inverse rigid transform)."""
    r, t = pose[..., :3, :3], pose[..., :3, 3:]
    rt = r.mT
    return torch.cat((rt, -rt @ t), dim=-1)


def pose_to_cameras(pose: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Pose encodings -> (world-to-camera extrinsics (..., 3, 4), intrinsics (..., 3, 3)) at ``size`` = (H, W)."""
    h, w = size
    cam_to_world = torch.cat((quaternion_to_matrix(pose[..., 3:7]), pose[..., :3, None]), dim=-1)
    fy = (h / 2.0) / torch.clamp(torch.tan(pose[..., 7] / 2.0), FOCAL_TAN_MIN)
    fx = (w / 2.0) / torch.clamp(torch.tan(pose[..., 8] / 2.0), FOCAL_TAN_MIN)
    k = torch.zeros(*pose.shape[:-1], 3, 3, dtype=pose.dtype, device=pose.device)
    k[..., 0, 0], k[..., 1, 1], k[..., 0, 2], k[..., 1, 2], k[..., 2, 2] = fx, fy, w / 2, h / 2, 1.0
    return invert_rigid(cam_to_world), k
