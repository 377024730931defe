"""Depth Anything 3 as pure functions: official preprocessing, inference, sky fill and metric conversion.

The networks are in :mod:`depthany.models.da3`; load them with :func:`depthany.weights.load_network`.
"""

from .infer import (
    MonoPrediction,
    MultiViewPrediction,
    predict_mono,
    predict_views,
    prepare_views,
    views_from_input,
)
from .postprocess import metric_depth, resize_map, sky_fill, sky_mask
from .preprocess import (
    ResizePlan,
    normalize,
    plan_resize,
    preprocess,
    processed_image,
    resize_image,
    scale_intrinsics,
    to_uint8,
)

__all__ = ["MonoPrediction", "MultiViewPrediction", "ResizePlan", "metric_depth", "normalize", "plan_resize",
           "predict_mono", "predict_views", "prepare_views", "preprocess", "processed_image", "resize_image",
           "resize_map", "scale_intrinsics", "sky_fill", "sky_mask", "to_uint8", "views_from_input"]
