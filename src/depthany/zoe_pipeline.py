"""The official high-level inference of the V1 metric (ZoeDepth) models, as pure functions.

Step by step what ``DepthModel.infer_pil(img, pad_input=True, with_flip_aug=True)`` and the ``DepthAnythingCore``
preprocessing do in the V1 repository (``metric_depth/zoedepth/models/depth_model.py``,
``metric_depth/zoedepth/models/base_models/depth_anything.py``; ``docs/zoedepth.md``), all in float32:

1. ``ToTensor``: (H, W, 3) uint8 RGB -> (1, 3, H, W) in [0, 1] (:func:`image_tensor`);
2. reflect padding by ``int(sqrt(H / 2) * 3)`` rows and ``int(sqrt(W / 2) * 3)`` columns on each side
   (:func:`pad_amounts`);
3. the core's own resize of the padded image to the network size (:func:`network_size`: exactly
   ``zoe.img_size``, 392x518, unless ``zoe.keep_aspect``), bilinear with ``align_corners=True``, then
   ImageNet normalisation (:func:`prepare`);
4. the network (:class:`~depthany.models.ZoeDepth`): depth in metres at the network size (:func:`forward`);
5. bicubic upsampling (``align_corners=False``) to the padded size, then cropping the padding away
   (:func:`infer_padded`);
6. the same for the horizontally flipped image, flipped back, and the average of the two (:func:`infer`).

The network always runs at the configured size, so its cost does not depend on the image size; padding and
upsampling scale with the image. With ``keep_aspect`` the network size follows the image's aspect ratio and is
bounded by :data:`MAX_NETWORK_AREA_FACTOR` times the configured area.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from . import zoo
from .models import ZoeDepth

PAD_FACTOR = 3.0  # official fh = fw = 3: pad = int(sqrt(side / 2) * 3)
MAX_NETWORK_AREA_FACTOR = 4  # keep_aspect: refuse network inputs larger than 4x the configured area


def network_size(height: int, width: int, zoe: zoo.ZoeConfig, multiple: int = 14,
                 max_area_factor: float | None = MAX_NETWORK_AREA_FACTOR) -> tuple[int, int]:
    """The core's resize target for an (already padded) image: the official ``Resize`` in "minimal" mode.

    Without ``keep_aspect`` each side is scaled to its ``img_size`` side (the aspect ratio is not kept). With it,
    both sides use whichever of the two scale factors is closer to 1. Sides are then rounded (half to even) to
    multiples of ``multiple``.

    Args:
        max_area_factor: refuse sizes above this many times the configured area (None: no bound here; the
            inference pipeline bounds the size with the token budget instead, :mod:`depthany.budget`).

    Raises:
        ValueError: a side would round to 0, or (keep_aspect) the size exceeds ``max_area_factor`` times the
            configured area.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    net_h, net_w = zoe.img_size
    scale_h, scale_w = net_h / height, net_w / width
    if zoe.keep_aspect:
        if abs(1 - scale_w) < abs(1 - scale_h):
            scale_h = scale_w
        else:
            scale_w = scale_h
    h = int(np.round(scale_h * height / multiple) * multiple)
    w = int(np.round(scale_w * width / multiple) * multiple)
    if h < multiple or w < multiple:
        raise ValueError(f"a {height}x{width} image resizes to {h}x{w} for a {net_h}x{net_w} network with the "
                         "aspect ratio kept; the image is too elongated")
    if max_area_factor is not None and h * w > max_area_factor * net_h * net_w:
        raise ValueError(f"a {height}x{width} image would run the network at {h}x{w}, more than "
                         f"{max_area_factor:g}x the configured {net_h}x{net_w}; the image is too elongated for "
                         "keep_aspect")
    return h, w


def prepare(x: Tensor, zoe: zoo.ZoeConfig, pre: zoo.Preprocess = zoo.V1_PRE) -> Tensor:
    """The core's preprocessing: (B, 3, H, W) float32 RGB in [0, 1] -> (B, 3, h, w) normalised network input.

    Bilinear resize with ``align_corners=True`` to :func:`network_size`, then ``(x - mean) / std`` in float32.
    """
    h, w = network_size(x.shape[-2], x.shape[-1], zoe)
    x = F.interpolate(x, (h, w), mode="bilinear", align_corners=True)
    mean = torch.tensor(pre.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(pre.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def forward(model: ZoeDepth, x: Tensor, pre: zoo.Preprocess = zoo.V1_PRE) -> Tensor:
    """The raw forward, the official ``model(x)["metric_depth"]``.

    Args:
        model: the network (any device; its parameter dtype is used for the forward pass).
        x: (B, 3, H, W) float32 RGB in [0, 1], any size.
        pre: mean and std.

    Returns:
        (B, 1, h, w) float32 depth in metres at the network size (392x518 for the official models).
    """
    param = next(model.parameters())
    x = prepare(x.to(device=param.device, dtype=torch.float32), model.cfg, pre)
    return model.forward_full(x.to(param.dtype)).depth.float()


def pad_amounts(height: int, width: int, factor: float = PAD_FACTOR) -> tuple[int, int]:
    """Rows and columns of reflect padding added on each side: ``int(sqrt(H / 2) * factor)``, likewise W.

    Raises:
        ValueError: the image is too small to reflect that much (fewer than 5 rows or columns at factor 3).
    """
    pad_h, pad_w = int(math.sqrt(height / 2) * factor), int(math.sqrt(width / 2) * factor)
    if pad_h >= height or pad_w >= width:
        raise ValueError(f"a {height}x{width} image is too small for the official reflect padding ({pad_h} rows, "
                         f"{pad_w} columns); use pad_input=False")
    return pad_h, pad_w


def infer_padded(model: ZoeDepth, x: Tensor, pad_input: bool = True, pre: zoo.Preprocess = zoo.V1_PRE) -> Tensor:
    """The official ``_infer_with_pad_aug``: pad, forward, bicubic upsampling to the padded size, crop.

    Args:
        model: the network.
        x: (B, 3, H, W) float32 RGB in [0, 1].
        pad_input: reflect-pad the image first (the official default).
        pre: mean and std.

    Returns:
        (B, 1, H, W) float32 depth in metres at the image size.
    """
    x = x.to(device=next(model.parameters()).device, dtype=torch.float32)  # every step on the model's device
    pad_h = pad_w = 0
    if pad_input:
        pad_h, pad_w = pad_amounts(x.shape[-2], x.shape[-1])
        x = F.pad(x, [pad_w, pad_w, pad_h, pad_h] if pad_h > 0 else [pad_w, pad_w], mode="reflect")
    out = forward(model, x, pre)
    if out.shape[-2:] != x.shape[-2:]:
        out = F.interpolate(out, size=(x.shape[2], x.shape[3]), mode="bicubic", align_corners=False)
    if pad_h > 0:
        out = out[:, :, pad_h:-pad_h, :]
    if pad_w > 0:
        out = out[:, :, :, pad_w:-pad_w]
    return out


@torch.no_grad()
def infer(model: ZoeDepth, x: Tensor, pad_input: bool = True, with_flip_aug: bool = True,
          pre: zoo.Preprocess = zoo.V1_PRE) -> Tensor:
    """The official ``DepthModel.infer``: :func:`infer_padded`, averaged with the flipped image's when asked.

    Args:
        model: the network.
        x: (B, 3, H, W) float32 RGB in [0, 1].
        pad_input: reflect padding (official default True).
        with_flip_aug: average with the prediction for the horizontally flipped image (official default True).
        pre: mean and std.

    Returns:
        (B, 1, H, W) float32 depth in metres.
    """
    out = infer_padded(model, x, pad_input, pre)
    if with_flip_aug:
        flipped = infer_padded(model, torch.flip(x, dims=[3]), pad_input, pre)
        out = (out + torch.flip(flipped, dims=[3])) / 2
    return out


def image_tensor(image: np.ndarray | Image.Image) -> Tensor:
    """``torchvision.transforms.ToTensor`` of an RGB image: (H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1].

    Raises:
        ValueError / TypeError: not an (H, W, 3) uint8 array or a PIL image.
    """
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected an (H, W, 3) uint8 array or a PIL image, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {image.dtype}")
    if not (image.flags.writeable and image.flags.c_contiguous):  # torch wants its own writable memory
        image = np.array(image)
    return torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)


def infer_pil(model: ZoeDepth, image: np.ndarray | Image.Image, pad_input: bool = True, with_flip_aug: bool = True,
              pre: zoo.Preprocess = zoo.V1_PRE) -> np.ndarray:
    """The official ``infer_pil(img, pad_input, with_flip_aug)`` with ``output_type="numpy"``.

    Args:
        model: the network (weights loaded, eval mode).
        image: (H, W, 3) uint8 RGB array or a PIL image (converted to RGB).
        pad_input: reflect padding (official default True).
        with_flip_aug: flip averaging (official default True).
        pre: mean and std.

    Returns:
        (H, W) float32 depth in metres at the image size.
    """
    return infer(model, image_tensor(image), pad_input, with_flip_aug, pre)[0, 0].cpu().numpy()
