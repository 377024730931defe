"""Depth Anything 3 as pure functions: official preprocessing, inference, sky fill and metric conversion.

The networks are in :mod:`depthany.models.da3`; load them with :func:`depthany.weights.load_network`.
"""

from .infer import MonoPrediction, MultiViewPrediction, predict_mono, predict_views
from .postprocess import metric_depth, sky_fill, sky_mask
from .preprocess import ResizePlan, plan_resize, preprocess, scale_intrinsics

__all__ = ["MonoPrediction", "MultiViewPrediction", "ResizePlan", "metric_depth", "plan_resize", "predict_mono",
           "predict_views", "preprocess", "scale_intrinsics", "sky_fill", "sky_mask"]
