"""Exports of a multi-view result (:class:`~depthany.result.MultiViewResult`): a fused point cloud (PLY), a COLMAP
text model and a GLB scene with cameras.

All three start from the maps at the network's processing resolution, as the official exporters do
(ByteDance-Seed/Depth-Anything-3 @ 2c21ea8, ``utils/export/glb.py``, ``colmap.py``): every view's pixels with
finite positive depth and enough confidence are back-projected with the predicted intrinsics and moved into the
world frame (:func:`depthany.geometry.views.world_points`), coloured by the network's view of the image.

* ``points.ply``: the pixels at or above the 40th percentile of all confidences (the COLMAP export's rule), in
  world coordinates (the reference camera's frame, OpenCV axes, the scene's unknown unit).
* ``colmap/``: ``cameras.txt`` (one PINHOLE camera per view at its image's original size, the intrinsics scaled
  from the processing resolution), ``images.txt`` (poses and each point's pixel, scaled likewise) and
  ``points3D.txt`` (the same points as the PLY, one observation each), in COLMAP's pixel convention
  (:mod:`depthany.geometry.colmap`). The official export scales ``cx`` and the pixels without COLMAP's half-pixel
  offset; both are self-consistent, these match COLMAP's own convention.
* ``scene.glb``: the GLB rule's threshold (``min(max(1.05, p40), p90)``), at most 1,000,000 points (a seeded
  subset: the official one is unseeded), the cameras as wire pyramids and glTF cameras (:mod:`.glb`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..result import MultiViewResult
from .colmap import to_colmap_camera, write_colmap_text
from .glb import write_glb
from .pointcloud import write_ply
from .views import CONF_PERCENTILE, confidence_threshold, even_subset, glb_confidence_threshold, world_points

EXPORTS: tuple[str, ...] = ("ply", "colmap", "glb")
GLB_MAX_POINTS = 1_000_000  # official num_max_points


def _check(result: MultiViewResult) -> None:
    if result.resolution != "network":
        raise ValueError("exports need the result at the network's resolution (the official exporters' input)")
    if result.images is None:
        raise ValueError("exports need the views' pictures (result.images) for the colours")


def export_ply(result: MultiViewResult, path: str | Path, conf_percentile: float = CONF_PERCENTILE) -> Path:
    """The fused, confidence-filtered point cloud of all views in world coordinates (binary PLY)."""
    _check(result)
    thr = confidence_threshold(result.conf, conf_percentile)
    pts = world_points(result.depth, result.intrinsics, result.extrinsics, result.images, result.conf, thr)
    comments = [f"depthany multi-view point cloud from {result.model}: {len(result)} views, world = camera of view "
                f"{result.reference} ({result.names[result.reference]}), OpenCV axes, the scene's unknown scale",
                f"confidence >= {thr:.6g} (the {conf_percentile:g}th percentile of all views)"]
    return write_ply(path, pts.xyz, pts.rgb, comments=comments)


def export_colmap(result: MultiViewResult, folder: str | Path, conf_percentile: float = CONF_PERCENTILE
                  ) -> list[Path]:
    """A COLMAP text model: cameras at the images' original size, poses, the fused points with their pixels."""
    _check(result)
    thr = confidence_threshold(result.conf, conf_percentile)
    pts = world_points(result.depth, result.intrinsics, result.extrinsics, result.images, result.conf, thr)
    h, w = result.network_size
    cameras, scales = [], []
    for i, (ih, iw) in enumerate(result.image_sizes):
        sx, sy = iw / w, ih / h
        k = result.intrinsics[i].astype(np.float64).copy()
        k[0, 0], k[1, 1] = k[0, 0] * sx, k[1, 1] * sy
        k[0, 2], k[1, 2] = (k[0, 2] + 0.5) * sx - 0.5, (k[1, 2] + 0.5) * sy - 0.5  # pixel centres stay aligned
        cameras.append(to_colmap_camera(k, iw, ih))
        scales.append((sx, sy))
    s = np.asarray(scales, dtype=np.float64)[pts.view]
    point2d = (pts.pixel.astype(np.float64) + 0.5) * s  # COLMAP: the pixel's centre, in the original image
    assert pts.rgb is not None
    return write_colmap_text(folder, cameras, result.extrinsics, result.names, pts.xyz, pts.rgb, pts.view, point2d)


def export_glb(result: MultiViewResult, path: str | Path, conf_percentile: float = CONF_PERCENTILE,
               max_points: int = GLB_MAX_POINTS) -> Path:
    """The GLB scene: points (official threshold and point cap) and the cameras."""
    _check(result)
    thr = glb_confidence_threshold(result.conf, conf_percentile)
    pts = world_points(result.depth, result.intrinsics, result.extrinsics, result.images, result.conf, thr)
    pts = pts.subset(np.isfinite(pts.xyz).all(axis=1))
    pts = pts.subset(even_subset(len(pts), max_points))
    assert pts.rgb is not None
    return write_glb(path, pts.xyz, pts.rgb, result.intrinsics, result.extrinsics, result.network_size,
                     result.names)


def export_scene(result: MultiViewResult, out_dir: str | Path, formats: Sequence[str] = EXPORTS,
                 conf_percentile: float = CONF_PERCENTILE) -> dict[str, list[Path]]:
    """Write the chosen exports under ``out_dir``: ``points.ply``, ``colmap/``, ``scene.glb``.

    Raises:
        ValueError: an unknown format (naming it), or a result that cannot be exported.
    """
    unknown = [f for f in formats if f not in EXPORTS]
    if unknown:
        raise ValueError(f"unknown export {', '.join(map(repr, unknown))}; choose from {', '.join(EXPORTS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    if "ply" in formats:
        written["ply"] = [export_ply(result, out / "points.ply", conf_percentile)]
    if "colmap" in formats:
        written["colmap"] = export_colmap(result, out / "colmap", conf_percentile)
    if "glb" in formats:
        written["glb"] = [export_glb(result, out / "scene.glb", conf_percentile)]
    return written
