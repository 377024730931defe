"""``render(scene)``: one ray per pixel centre -> RGB, exact planar depth, validity and shape ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import label_image
from .raycast import trace
from .scene import Scene
from .sensor import expose
from .shading import shade


@dataclass
class Rendering:
    """A rendered view.

    Attributes:
        rgb: (H, W, 3) uint8 RGB.
        depth: (H, W) float32 planar depth (z along the optical axis) in metres of the surface hit by the
            ray through the pixel centre; ``inf`` where the ray hits nothing (sky).
        valid: (H, W) bool, True where depth is finite and <= the scene's ``max_depth``.
        shape_id: (H, W) int32 index into ``scene.shapes`` of the visible surface, -1 for sky.
        intrinsics: (fx, fy, cx, cy) in pixels, pixel-centre convention.
        labels: (H, W) uint8 semantic class of the visible surface (indices into
            :data:`~depthany.synth.labels.SYNTH_CLASSES`, ``sky`` where nothing is hit), or None for a scene
            without class names.
        dynamic: (H, W) bool, True where the visible surface belongs to a moving object; set by
            :mod:`depthany.synth.sequence` for sequences with moving objects, None otherwise.
    """

    rgb: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    shape_id: np.ndarray
    intrinsics: tuple[float, float, float, float]
    labels: np.ndarray | None = None
    dynamic: np.ndarray | None = None


def render(scene: Scene) -> Rendering:
    """Render ``scene`` deterministically (the same scene gives the same bytes).

    Depth is the ray parameter of the nearest hit along rays whose camera-frame z component is 1, i.e.
    exactly the planar depth, computed in float32.
    """
    d = scene.camera.ray_directions()
    depth, shape_id = trace(scene.camera, scene.shapes, d)
    radiance = shade(scene, depth, shape_id, d)
    rgb = expose(radiance, scene.sensor)
    valid = np.isfinite(depth) & (depth <= np.float32(scene.max_depth))
    labels = label_image(shape_id, scene.labels) if scene.labels else None
    return Rendering(rgb, depth, valid, shape_id, scene.camera.intrinsics, labels)
