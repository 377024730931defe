"""The ControlNet conditioning image: depthany's ``controlnet`` map, resized to the size the pipeline generates.

What a depth ControlNet sees (all the depth ControlNets in :mod:`depthany.generate.known` were trained on maps
made this way): per-image min..max of the *nearness* (disparity for relative models, 1/depth for metric ones)
mapped to 0..255 and truncated, near = bright, the same gray in all three channels. That is exactly
``depthany predict --format controlnet`` (:func:`depthany.io.visual.controlnet_image`), computed at the photo's
own size.

The generated image has the photo's aspect ratio: its short side is ``resolution`` (the base model's native
size by default: 512 for Stable Diffusion 1.x, 1024 for SDXL), its long side is capped at
``MAX_ASPECT * resolution`` (a bound on the work per image), and each side is rounded to the nearest multiple
of 8 (the VAE's downsampling; halves round up), at least 8. The map is resized to that size with Pillow's
``Image.resize(..., Image.BILINEAR)``, a triangle filter that widens when shrinking (so a large photo is
averaged, not aliased). The pipeline then gets an image of exactly its output size, so it does not resize
again; it divides by 255 and hands the (1, 3, H, W) tensor in [0, 1] to the ControlNet.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..io.visual import controlnet_image
from ..result import DepthResult

MULTIPLE = 8  # pixels per latent cell of the Stable Diffusion VAEs
MAX_ASPECT = 2.0  # long side <= MAX_ASPECT * resolution
MIN_RESOLUTION, MAX_RESOLUTION = 64, 2048


def control_size(height: int, width: int, resolution: int, multiple: int = MULTIPLE) -> tuple[int, int]:
    """(H', W') to generate for an (height, width) photo: short side ``resolution``, aspect kept, long side at
    most ``MAX_ASPECT * resolution``, each side rounded to the nearest multiple of ``multiple`` (at least one).

    Example: a 3024 x 4032 photo at 512 gives 512 x 680 (682.7 rounds to 680).

    Raises:
        ValueError: a non-positive image size, or ``resolution`` outside [64, 2048].
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise ValueError(f"resolution must be in [{MIN_RESOLUTION}, {MAX_RESOLUTION}], got {resolution}")
    scale = min(resolution / min(height, width), MAX_ASPECT * resolution / max(height, width))

    def side(n: int) -> int:
        return max(multiple, int(math.floor(n * scale / multiple + 0.5)) * multiple)

    return side(height), side(width)


def resize_map(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (H', W', 3) uint8 with Pillow's bilinear filter; the same size is returned as is."""
    if picture.shape[:2] == tuple(size):
        return picture
    return np.asarray(Image.fromarray(picture).resize((size[1], size[0]), Image.Resampling.BILINEAR))


def conditioning_image(result: DepthResult, size: tuple[int, int]) -> np.ndarray:
    """The ControlNet input for a depth prediction: (H', W', 3) uint8, near = bright, at ``size`` = (H', W').

    Equals :func:`depthany.io.visual.controlnet_image` (``depthany predict --format controlnet``) resized by
    :func:`resize_map`.
    """
    return resize_map(controlnet_image(result), size)
