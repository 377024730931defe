"""Cameras and metres: intrinsics, back-projection to 3D, flying-pixel removal, point clouds (PLY) and metric
calibration.

Conventions (OpenCV): pixel centres at integer coordinates, ``u`` right and ``v`` down; camera coordinates in
metres with ``x`` right, ``y`` down, ``z`` forward; depth is z-depth along the optical axis.
"""

from __future__ import annotations

from .anchors import Anchors, anchors_from_sparse, read_points_csv, read_sparse_depth, sample_bilinear
from .apply import FolderReport, apply_to_folder, iter_apply, list_predictions
from .backproject import (
    DEFAULT_FLYING_RTOL,
    PointCloud,
    backproject,
    depth_to_points,
    flying_pixel_mask,
    project,
    valid_depth_mask,
)
from .calibrate import Calibration, CalibrationWarning, PointResiduals, fit_calibration
from .exif import intrinsics_from_exif
from .intrinsics import Intrinsics, focal_from_fov, fov_from_focal, orient_coords
from .pointcloud import write_ply, write_result_ply
from .resolve import DEFAULT_FOV_DEG, IntrinsicsWarning, intrinsics_for_result, resolve_intrinsics
from .robust import CalibrationError, robust_disparity_fit

__all__ = [
    "DEFAULT_FLYING_RTOL", "DEFAULT_FOV_DEG", "Anchors", "Calibration", "CalibrationError", "CalibrationWarning",
    "FolderReport", "Intrinsics", "IntrinsicsWarning", "PointCloud", "PointResiduals", "anchors_from_sparse",
    "apply_to_folder", "backproject", "depth_to_points", "fit_calibration", "flying_pixel_mask", "focal_from_fov",
    "fov_from_focal", "intrinsics_for_result", "intrinsics_from_exif", "iter_apply", "list_predictions",
    "orient_coords", "project", "read_points_csv", "read_sparse_depth", "resolve_intrinsics",
    "robust_disparity_fit", "sample_bilinear", "valid_depth_mask", "write_ply", "write_result_ply",
]
