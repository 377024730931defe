"""Shadow rays: is anything between a surface point and the light?

All shadow rays of one light are parallel (sun) or meet at one point (point light), so a group of shapes
inside a bounding sphere can only shadow the points inside a cylinder (sun) or a cone (point light)
behind it. Culling happens on two levels before any exact intersection:

1. blocks of ``BLOCK`` consecutive rays (the caller orders surface points in small image tiles, so a block
   is a compact patch of surface) are tested with their own bounding sphere, in float64, a few hundred
   tests per group;
2. the rays of the surviving blocks are tested one by one against the cylinder or cone.

Planes are handled exactly and cheaply: a segment crosses a plane iff its ends lie on opposite sides.
"""

from __future__ import annotations

import math

import numpy as np

from .raycast import group_bounds
from .shapes import Plane, Shape
from .vec import dot3, take

BLOCK = 64  # rays per culling block
SLACK = 1.001  # bounding radii are enlarged this much (plus 1 mm) against float32 rounding


def _blocks(x: np.ndarray, nb: int) -> np.ndarray:
    """(..., M) -> (..., nb, BLOCK), padding the tail by repeating the last ray (harmless for bounds)."""
    pad = nb * BLOCK - x.shape[-1]
    if pad:
        x = np.concatenate([x, np.repeat(x[..., -1:], pad, axis=-1)], axis=-1)
    return x.reshape(x.shape[:-1] + (nb, BLOCK)).astype(np.float64)


def _rays_of(blocks: np.ndarray, m: int) -> np.ndarray:
    """Ray indices (ascending) covered by the block indices ``blocks``."""
    idx = (blocks[:, None] * BLOCK + np.arange(BLOCK)).ravel()
    return idx[idx < m]


def occluded(shapes: list[Shape], groups: list[list[int]], origins: np.ndarray, light: np.ndarray,
             kind: str, ignore: np.ndarray | None = None) -> np.ndarray:
    """Shadow test for M rays from ``origins`` to one light.

    Args:
        shapes: the primitives.
        groups: shape-index groups covering every shape that may cast shadows.
        origins: (3, M) float32 ray origins in metres (already nudged off their surface), ideally ordered
            so that consecutive rays are close together (see ``BLOCK``); any order is correct.
        light: (3,) the unit direction towards a sun (``kind="sun"``) or a point light's position in metres
            (``kind="point"``).
        kind: "sun" or "point".
        ignore: optional (M,) bool, rays not to trace (e.g. surfaces facing away from the light); they
            are reported as blocked.

    Returns:
        (M,) bool, True where the light is blocked (or the ray was ignored).
    """
    if kind not in ("sun", "point"):
        raise ValueError(f"kind must be 'sun' or 'point', got {kind!r}")
    o = origins
    m = o.shape[1]
    blocked = np.zeros(m, bool) if ignore is None else ignore.copy()
    if m == 0:
        return blocked
    lv = np.asarray(light, np.float64)
    for plane in [s for g in groups for i in g if isinstance(s := shapes[i], Plane)]:
        side_o = dot3(o, np.asarray(plane.normal, np.float32)) - np.float32(plane.offset)
        side_light = float(np.dot(plane.normal, lv)) - (plane.offset if kind == "point" else 0.0)
        blocked |= side_o * np.float32(side_light) < 0
    nb = (m + BLOCK - 1) // BLOCK
    if kind == "sun":
        d = lv.astype(np.float32).reshape(3, 1)  # one direction for all rays, broadcast by the shapes
        tmax = np.full(m, np.inf, np.float32)
        helper = np.array([1.0, 0.0, 0.0]) if abs(lv[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        a1 = np.cross(lv, helper)
        a1 /= np.linalg.norm(a1)
        a2 = np.cross(lv, a1)
        pa, pb, pl = (dot3(o, v.astype(np.float32)) for v in (a1, a2, lv))  # light-aligned coordinates
        ba, bb = _blocks(pa, nb), _blocks(pb, nb)
        b_lo, b_hi = np.stack([ba.min(1), bb.min(1)]), np.stack([ba.max(1), bb.max(1)])
        b_c, b_r = (b_lo + b_hi) / 2, np.hypot(*(b_hi - b_lo)) / 2
        b_pl = _blocks(pl, nb).min(1)
    else:
        e = o - lv.astype(np.float32).reshape(3, 1)  # from the light to the origins
        tmax = np.sqrt(dot3(e, e))
        d = None  # per-ray directions -e / |e|, computed only for rays that reach an exact test
        bo = _blocks(o, nb)
        lo, hi = bo.min(2), bo.max(2)
        vb = (lo + hi) / 2 - lv[:, None]  # block centres seen from the light
        b_r = np.linalg.norm(hi - lo, axis=0) / 2
        b_d = np.linalg.norm(vb, axis=0)
        b_ang = np.where(b_d > b_r, np.arcsin(np.minimum(b_r / np.maximum(b_d, 1e-12), 1)), math.pi)
    def inside(idx: np.ndarray, c: np.ndarray, r: float) -> np.ndarray:
        """Per ray of ``idx``: may the sphere (c, r) block it? (the cylinder or cone test)"""
        if kind == "sun":
            ca, cb, cl = float(c @ a1), float(c @ a2), float(c @ lv)
            near = (pa[idx] - np.float32(ca)) ** 2 + (pb[idx] - np.float32(cb)) ** 2 <= np.float32(r * r)
            return near & (pl[idx] <= np.float32(cl + r))
        v = c - lv
        dist = float(np.linalg.norm(v))
        if dist <= r:
            return np.ones(idx.size, bool)
        tm = tmax[idx]
        # e . u = |e| cos(angle between the ray and the sphere's centre, seen from the light)
        cos_ray = dot3(take(e, idx), (v / dist).astype(np.float32))
        return (cos_ray >= np.float32(math.sqrt(dist * dist - r * r) / dist) * tm) & (tm >= np.float32(dist - r))

    for group in groups:
        members = [i for i in group if not isinstance(shapes[i], Plane)]
        bounds = group_bounds(shapes, members)
        if bounds is None:
            continue
        c, r = bounds[0], bounds[1] * SLACK + 1e-3  # a little slack against float32 rounding
        if kind == "sun":
            ca, cb, cl = float(c @ a1), float(c @ a2), float(c @ lv)
            near = (np.hypot(b_c[0] - ca, b_c[1] - cb) <= r + b_r) & (b_pl <= cl + r)
        else:
            v = c - lv
            dist = float(np.linalg.norm(v))
            if dist <= r:  # the light is inside the group's sphere: every block may be crossed
                near = np.ones(nb, bool)
            else:
                cos_b = (vb.T @ v) / (np.maximum(b_d, 1e-12) * dist)
                reach = np.minimum(b_ang + math.asin(r / dist), math.pi)
                near = (cos_b >= np.cos(reach)) & (b_d + b_r >= dist - r)
        idx = _rays_of(np.flatnonzero(near), m)
        idx = idx[~blocked[idx]]
        idx = idx[inside(idx, c, r)]
        for i in members:
            if idx.size == 0:
                break
            sub = idx
            if len(members) > 1:  # the member's own, tighter sphere first
                mc, mr = shapes[i].bounds()  # type: ignore[misc]
                sub = idx[inside(idx, mc, mr * SLACK + 1e-3)]
                if sub.size == 0:
                    continue
            dirs = d if d is not None else take(e, sub) / -np.maximum(tmax[sub], np.float32(1e-9))
            t = shapes[i].intersect(take(o, sub), dirs, 0.0)
            hit = sub[t < tmax[sub]]
            if hit.size:
                blocked[hit] = True
                idx = idx[~blocked[idx]]
    return blocked
