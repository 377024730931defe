"""Primary visibility: the nearest surface along each camera ray.

The loop is over shapes (tens to a few hundred), each step vectorised over pixels; a shape is only
tested against the pixel rectangle its bounding sphere can cover. Shadow rays are in ``shadows.py``.
"""

from __future__ import annotations

import numpy as np

from .camera import Camera
from .shapes import Shape

NEAR = 1e-4  # metres: hits closer than this to the camera are ignored


def trace(camera: Camera, shapes: list[Shape], directions: np.ndarray | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit per pixel.

    Args:
        camera: the camera (origin, rays).
        shapes: the primitives.
        directions: optional precomputed ``camera.ray_directions()``, (3, H, W) float32.

    Returns:
        depth: (H, W) float32 planar depth in metres of the nearest hit, ``inf`` where nothing is hit.
        shape_id: (H, W) int32 index into ``shapes`` of that hit, -1 where nothing is hit.
    """
    d = camera.ray_directions() if directions is None else directions
    o = np.asarray(camera.position, np.float32)
    depth = np.full(d.shape[1:], np.inf, np.float32)
    shape_id = np.full(d.shape[1:], -1, np.int32)
    full = (0, camera.height, 0, camera.width)
    for i, shape in enumerate(shapes):
        b = shape.bounds()
        rect = full if b is None else camera.screen_rect(b[0], b[1])
        if rect is None:
            continue
        v0, v1, u0, u1 = rect
        t = shape.intersect(o, d[:, v0:v1, u0:u1], NEAR)
        cur = depth[v0:v1, u0:u1]
        closer = t < cur
        if closer.any():
            cur[closer] = t[closer]
            shape_id[v0:v1, u0:u1][closer] = i
    return depth, shape_id


def group_bounds(shapes: list[Shape], group: list[int]) -> tuple[np.ndarray, float] | None:
    """Bounding sphere (centre (3,), radius) of a group of shapes; None if any member is unbounded."""
    spheres = [shapes[i].bounds() for i in group]
    if not spheres or any(s is None for s in spheres):
        return None
    centers = np.stack([s[0] for s in spheres])  # type: ignore[index]
    radii = np.array([s[1] for s in spheres])  # type: ignore[index]
    c = centers.mean(axis=0)
    return c, float(np.max(np.linalg.norm(centers - c, axis=1) + radii))
