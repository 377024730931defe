"""Visibility: the nearest surface along each camera ray, and whether a shadow ray is blocked.

Both loops are over shapes (tens to a few hundred), each step vectorised over pixels, with cheap culling:
camera rays only test the pixel rectangle a shape's bounding sphere can cover, and shadow rays only the
rays that pass through a group's bounding sphere.
"""

from __future__ import annotations

import math

import numpy as np

from .camera import Camera
from .shapes import Plane, Shape
from .vec import dot3, take

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


def occluded(shapes: list[Shape], groups: list[list[int]], origins: np.ndarray, light: np.ndarray,
             kind: str, ignore: np.ndarray | None = None) -> np.ndarray:
    """Shadow test: is anything hit between each origin and the light?

    Args:
        shapes: the primitives.
        groups: shape-index groups covering every shape that may cast shadows.
        origins: (3, M) float32 ray origins in metres (already nudged off their surface).
        light: (3,) the unit direction towards a sun (``kind="sun"``) or a point light's position in metres
            (``kind="point"``).
        kind: "sun" or "point".
        ignore: optional (M,) bool, rays not to trace (e.g. surfaces facing away from the light); they
            are reported as blocked.

    Returns:
        (M,) bool, True where the light is blocked (or the ray was ignored).

    Culling uses the fact that all shadow rays of one light are parallel (sun) or meet at one point:
    a group's bounding sphere then shadows a disc (sun) or a cone (point light), tested in ~8 operations
    per ray before any exact intersection.
    """
    o = origins
    m = o.shape[1]
    blocked = np.zeros(m, bool) if ignore is None else ignore.copy()
    lv = np.asarray(light, np.float64)
    if kind == "sun":
        d = lv.astype(np.float32).reshape(3, 1)  # one direction for all rays, broadcast by the shapes
        tmax = np.full(m, np.inf, np.float32)
        helper = np.array([1.0, 0.0, 0.0]) if abs(lv[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        a1 = np.cross(lv, helper)
        a1 /= np.linalg.norm(a1)
        a2 = np.cross(lv, a1)
        pa, pb, pl = (dot3(o, v.astype(np.float32)) for v in (a1, a2, lv))
    elif kind == "point":
        e = o - lv.astype(np.float32).reshape(3, 1)  # from the light to the origins
        tmax = np.sqrt(dot3(e, e))
        d = -e / np.maximum(tmax, np.float32(1e-9))
    else:
        raise ValueError(f"kind must be 'sun' or 'point', got {kind!r}")
    planes = [s for g in groups for i in g if isinstance(s := shapes[i], Plane)]
    for plane in planes:
        # A segment crosses a plane iff its ends lie on opposite sides: an exact test with no gathering.
        side_o = dot3(o, np.asarray(plane.normal, np.float32)) - np.float32(plane.offset)
        side_light = float(np.dot(plane.normal, lv)) - (plane.offset if kind == "point" else 0.0)
        blocked |= side_o * np.float32(side_light) < 0
    for group in groups:
        group = [i for i in group if not isinstance(shapes[i], Plane)]
        b = group_bounds(shapes, group)
        if not group:
            continue
        if b is None:
            idx = np.flatnonzero(~blocked)
        else:
            c, r = b[0], b[1] * 1.001 + 1e-3  # a little slack against float32 rounding
            if kind == "sun":
                ca, cb, cl = float(c @ a1), float(c @ a2), float(c @ lv)
                cand = ((pa - np.float32(ca)) ** 2 + (pb - np.float32(cb)) ** 2 <= np.float32(r * r)) \
                    & (pl <= np.float32(cl + r))
            else:
                v = c - lv
                dist = float(np.linalg.norm(v))
                if dist <= r:
                    cand = np.ones(m, bool)
                else:
                    cos_half = math.sqrt(dist * dist - r * r) / dist
                    u = (v / dist).astype(np.float32)
                    # e . u = |e| cos(angle between the ray and the sphere's centre, seen from the light)
                    cand = (dot3(e, u) >= np.float32(cos_half) * tmax) & (tmax >= np.float32(dist - r))
            idx = np.flatnonzero(cand)
            idx = idx[~blocked[idx]]
        for i in group:
            if idx.size == 0:
                break
            t = shapes[i].intersect(take(o, idx), d if d.shape[1] == 1 else take(d, idx), 0.0)
            hit = t < tmax[idx]
            blocked[idx[hit]] = True
            idx = idx[~hit]
    return blocked
