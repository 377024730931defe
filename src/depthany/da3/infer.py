"""Depth Anything 3 end to end, as plain functions: images in, typed numpy results out.

:func:`predict_mono` reproduces the official ``DepthAnything3.inference([image], process_res=504,
process_res_method="upper_bound_resize")`` of DA3Mono / DA3Metric for one image (depth at processing
resolution, float32; the sky fill is deterministic, see :mod:`.postprocess`), and adds the metric conversion.
:func:`predict_views` reproduces ``inference(images)`` of the any-view models for one set of views (depth,
confidence, world-to-camera extrinsics, intrinsics at processing resolution).

Precision: everything runs in the model's dtype (float32 for exactness). The official ``forward`` wraps the
encoder in ``torch.autocast`` (bfloat16 on CUDA devices that support it, else float16) and runs heads and camera
decoder in float32, so official GPU outputs differ from float32 ones by that rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .. import zoo
from ..models.da3 import DepthAnything3, RefViewStrategy
from .postprocess import metric_depth, sky_fill, sky_mask
from .preprocess import ResizePlan, preprocess, scale_intrinsics


@dataclass
class MonoPrediction:
    """One image through DA3Mono / DA3Metric, at processing resolution (h, w).

    Attributes:
        depth: (h, w) float32 network depth after the sky fill: relative depth for DA3Mono (bigger = farther,
            unknown scale), depth at a ``metric_focal`` (300 px) focal length for DA3Metric. This is the official
            ``prediction.depth[0]``.
        sky: (h, w) float32 sky score (ReLU output).
        sky_mask: (h, w) bool, ``sky >= 0.5`` (the official ``prediction.sky[0]``).
        metres: (h, w) float32 metric depth (DA3Metric with intrinsics given), else None.
        intrinsics: (3, 3) float64 intrinsics at (h, w) when given (scaled from the image's), else None.
        kind: ``"relative_depth"`` or ``"metric_depth"`` (what ``values`` holds).
        plan: the sizes (image -> bound -> processing).
    """

    depth: np.ndarray
    sky: np.ndarray
    sky_mask: np.ndarray
    metres: np.ndarray | None
    intrinsics: np.ndarray | None
    kind: str
    plan: ResizePlan

    @property
    def values(self) -> np.ndarray:
        """Metres for a metric result, else the relative depth."""
        return self.metres if self.metres is not None else self.depth


def _device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters())
    return p.device, p.dtype


@torch.inference_mode()
def predict_mono(model: DepthAnything3, image: np.ndarray, intrinsics: np.ndarray | None = None,
                 pre: zoo.Preprocess = zoo.DA3_PRE, process_res: int | None = None) -> MonoPrediction:
    """Run DA3Mono / DA3Metric on one image.

    Args:
        model: a mono/metric :class:`~depthany.models.DepthAnything3` (any device; inputs follow it).
        image: (H, W, 3) uint8 RGB.
        intrinsics: (3, 3) pinhole intrinsics of ``image`` in pixels (``depthany.geometry`` resolves them from
            --fx/--fov, EXIF or a default). Required for metres from DA3Metric; ignored by DA3Mono.
        pre: preprocessing (the zoo's ``DA3_PRE``: upper_bound_resize at 504).
        process_res: overrides ``pre.input_size``.

    Returns:
        :class:`MonoPrediction` at processing resolution.
    """
    if model.is_multiview:
        raise ValueError("predict_mono needs DA3Mono / DA3Metric; use predict_views for any-view models")
    x, plan = preprocess(image, pre, process_res)
    device, dtype = _device_dtype(model)
    out = model.forward_mono(x[None].to(device=device, dtype=dtype))
    depth = sky_fill(out.depth, out.sky)[0].float()
    sky = out.sky[0].float()
    k = scale_intrinsics(np.asarray(intrinsics, dtype=np.float64), plan) if intrinsics is not None else None
    metres = None
    if model.arch.head == "focal_metric" and k is not None:
        assert model.arch.metric_focal is not None
        metres = metric_depth(depth, float(k[0, 0]), float(k[1, 1]), model.arch.metric_focal).cpu().numpy()
    kind = "metric_depth" if metres is not None else "relative_depth"
    return MonoPrediction(depth.cpu().numpy(), sky.cpu().numpy(), sky_mask(sky).cpu().numpy(), metres, k, kind,
                          plan)


@dataclass
class MultiViewPrediction:
    """N views of one scene through an any-view model, at processing resolution (h, w).

    Attributes:
        depth: (N, h, w) float32 depth along each camera's axis, one (unknown) scale for the whole scene.
        conf: (N, h, w) float32 confidence (>= 1, bigger = more confident).
        extrinsics: (N, 3, 4) float32 world-to-camera ``[R | t]``; world = the reference view's camera frame.
        intrinsics: (N, 3, 3) float32 pinhole intrinsics in pixels at (h, w).
        reference: index of the reference view.
        plans: per view, the sizes (image -> bound -> processing).
    """

    depth: np.ndarray
    conf: np.ndarray
    extrinsics: np.ndarray
    intrinsics: np.ndarray
    reference: int
    plans: list[ResizePlan]


@torch.inference_mode()
def predict_views(model: DepthAnything3, images: Sequence[np.ndarray],
                  ref_view_strategy: RefViewStrategy = "saddle_balanced", pre: zoo.Preprocess = zoo.DA3_PRE,
                  process_res: int | None = None) -> MultiViewPrediction:
    """Run an any-view model on views of one scene (all must reach the same processing size).

    Args:
        model: an any-view :class:`~depthany.models.DepthAnything3`.
        images: N >= 1 (H, W, 3) uint8 RGB views.
        ref_view_strategy: how the reference view is chosen with 3+ views (official default saddle_balanced).
        pre, process_res: as :func:`predict_mono`.

    Raises:
        ValueError: no views, or views whose processing sizes differ (the official code would centre-crop them
            all to the smallest; resize them to one size first).
    """
    if not model.is_multiview:
        raise ValueError("predict_views needs an any-view model (da3-small, da3-base, ...); use predict_mono")
    if len(images) == 0:
        raise ValueError("predict_views needs at least one view")
    tensors, plans = zip(*(preprocess(img, pre, process_res) for img in images))
    sizes = sorted({p.final for p in plans})
    if len(sizes) > 1:
        detail = ", ".join(f"view {i}: {p.image[0]}x{p.image[1]} -> {p.final[0]}x{p.final[1]}"
                           for i, p in enumerate(plans))
        raise ValueError(f"views reach different processing sizes ({detail}); give views of one size")
    device, dtype = _device_dtype(model)
    x = torch.stack(tensors)[None].to(device=device, dtype=dtype)
    out = model.forward_views(x, ref_view_strategy)
    return MultiViewPrediction(out.depth[0].float().cpu().numpy(), out.conf[0].float().cpu().numpy(),
                               out.extrinsics[0].float().cpu().numpy(), out.intrinsics[0].float().cpu().numpy(),
                               int(out.reference[0]), list(plans))
