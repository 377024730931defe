"""Depth Anything 3 postprocessing, as pure functions: the sky fill, the sky mask, metric depth.

Official behaviour (``model/da3.py`` ``_process_mono_sky_estimation``, ``utils/alignment.py``,
``utils/io/output_processor.py``, README):

* pixels whose sky score is >= 0.3 are sky; when more than 10 pixels are sky and more than 10 are not, every
  sky pixel's depth becomes the 0.99 quantile (linear interpolation) of the non-sky depths;
* the returned sky mask is ``score >= 0.5`` (a different threshold from the fill's 0.3);
* DA3Metric outputs depth at a 300 px focal length: metres = output * ((fx + fy) / 2) / 300, with fx, fy in
  pixels of the processing resolution.

Two deliberate differences from the official code (``docs/depth_anything_3.md``): with more than 100,000 non-sky
pixels it estimates the quantile from 100,000 values drawn at random (``torch.randint``, unseeded); here the
quantile is computed on all of them, so results are deterministic (identical to the official ones whenever there
are at most 100,000 non-sky pixels, e.g. every image of up to 316 x 316 processing pixels). And the official
statistics are shared by all images of a batch; here each image is filled from its own.
"""

from __future__ import annotations

import torch
from torch import Tensor

SKY_FILL_THRESHOLD = 0.3  # sky score >= this: the pixel's depth is replaced
SKY_MASK_THRESHOLD = 0.5  # sky score >= this: reported as sky
SKY_FILL_QUANTILE = 0.99
SKY_MIN_PIXELS = 10  # the fill needs more than this many sky and non-sky pixels
OFFICIAL_QUANTILE_SAMPLES = 100_000  # above this the official code samples (randomly) instead


def sky_fill(depth: Tensor, sky: Tensor) -> Tensor:
    """Replace the depth of sky pixels by the 0.99 quantile of the other pixels' depths, image by image.

    Args:
        depth: (..., H, W) float depth (any leading dims; each (H, W) map is filled from its own statistics).
        sky: sky scores, same shape.

    Returns:
        a new tensor, same shape and dtype as ``depth``; maps with 10 or fewer sky (or non-sky) pixels unchanged.
    """
    if depth.shape != sky.shape:
        raise ValueError(f"depth {tuple(depth.shape)} and sky {tuple(sky.shape)} must have the same shape")
    flat_d = depth.reshape(-1, *depth.shape[-2:])
    flat_s = sky.reshape(-1, *sky.shape[-2:])
    out = flat_d.clone()
    for i in range(flat_d.shape[0]):
        is_sky = flat_s[i] >= SKY_FILL_THRESHOLD
        n_sky = int(is_sky.sum())
        if n_sky <= SKY_MIN_PIXELS or is_sky.numel() - n_sky <= SKY_MIN_PIXELS:
            continue
        out[i][is_sky] = _quantile(flat_d[i][~is_sky], SKY_FILL_QUANTILE)
    return out.reshape(depth.shape)


_TORCH_QUANTILE_MAX = 2**24  # torch.quantile refuses larger inputs


def _quantile(x: Tensor, q: float) -> Tensor:
    """``torch.quantile(x, q)`` (linear interpolation), also for inputs above torch's 2**24-element limit."""
    if x.numel() <= _TORCH_QUANTILE_MAX:
        return torch.quantile(x, q)
    v = x.flatten().sort().values
    rank = q * (v.numel() - 1)
    lo = int(rank)
    hi = min(lo + 1, v.numel() - 1)
    return torch.lerp(v[lo], v[hi], torch.tensor(rank - lo, dtype=v.dtype, device=v.device))


def sky_mask(sky: Tensor) -> Tensor:
    """Boolean sky mask as the official output reports it: score >= 0.5."""
    return sky >= SKY_MASK_THRESHOLD


def metric_depth(depth: Tensor, fx: float | Tensor, fy: float | Tensor, metric_focal: float) -> Tensor:
    """DA3Metric output -> metres: ``depth * ((fx + fy) / 2) / metric_focal``.

    Args:
        depth: (..., H, W) network depth (after the sky fill).
        fx, fy: focal lengths in pixels at the resolution of ``depth`` (scalars or tensors broadcastable to the
            leading dims, e.g. (B, 1, 1)).
        metric_focal: the model's reference focal length (300 px for DA3Metric-Large, ``zoo``).
    """
    return depth * (((fx + fy) / 2) / metric_focal)
