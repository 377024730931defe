"""Linear-light shading: textured albedo, Lambert + Blinn-Phong with hard cast shadows, hemispheric
ambient light, sky (gradient, sun glow, clouds) and depth-dependent fog.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .noise import fbm
from .scene import Environment, Light, Scene
from .shadows import occluded
from .vec import dot3, put, take

CLOUD_HEIGHT = 1500.0  # metres: the cloud layer is a plane this high above the ground


@lru_cache(maxsize=8)
def tile_order(height: int, width: int, tile: int = 8) -> np.ndarray:
    """Flat pixel indices of an (H, W) image listed tile by tile (``tile`` x ``tile`` squares).

    Shading hit points in this order makes consecutive points close in space, which is what the block
    culling of shadow rays needs.
    """
    v, u = np.divmod(np.arange(height * width), width)
    key = ((v // tile) * ((width + tile - 1) // tile) + u // tile) * tile * tile + (v % tile) * tile + u % tile
    order = np.argsort(key, kind="stable")
    order.flags.writeable = False
    return order


def _vec(c: tuple[float, ...]) -> np.ndarray:
    return np.asarray(c, np.float32).reshape(3, 1)


def surface_attributes(scene: Scene, depth: np.ndarray, shape_id: np.ndarray, d: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-hit geometry and material.

    Args:
        depth, shape_id: (M,) planar depth (metres) and shape index of M hit pixels.
        d: (3, M) their ray directions (camera-frame z = 1).

    Returns:
        p: (3, M) hit points (metres); n: (3, M) unit normals facing the camera; albedo: (3, M) linear RGB;
        specular: (M,) coefficient; shininess: (M,) exponent.
    """
    m = depth.shape[0]
    o = np.asarray(scene.camera.position, np.float32).reshape(3, 1)
    p = o + depth[None] * d
    n = np.empty((3, m), np.float32)
    albedo = np.empty((3, m), np.float32)
    spec = np.empty(m, np.float32)
    shin = np.empty(m, np.float32)
    # Metres per pixel across the ray at this depth; on a slanted surface the pixel stretches by
    # 1/cos(incidence) in one direction only, so the isotropic filter takes the geometric mean.
    across = depth / np.float32(0.5 * (scene.camera.fx + scene.camera.fy))
    order = np.argsort(shape_id, kind="stable")
    ids, starts = np.unique(shape_id[order], return_index=True)
    ends = list(starts[1:]) + [m]
    for sid, a, b in zip(ids, starts, ends):
        idx = order[a:b]
        shape = scene.shapes[int(sid)]
        mat = scene.materials[shape.material]
        pk, dk = take(p, idx), take(d, idx)
        nk = shape.normal_at(pk)
        cos = dot3(nk, dk) / np.sqrt(dot3(dk, dk))
        nk *= np.where(cos > 0, np.float32(-1), np.float32(1))  # face the viewer (two-sided planes)
        footprint = across[idx] / np.sqrt(np.maximum(np.abs(cos), np.float32(0.02)))
        u, v = shape.uv(pk)
        put(n, idx, nk)
        put(albedo, idx, mat.texture.evaluate(u, v, footprint))
        spec[idx] = mat.specular
        shin[idx] = mat.shininess
    return p, n, albedo, spec, shin


def direct_light(scene: Scene, light: Light, p: np.ndarray, n: np.ndarray, view: np.ndarray,
                 albedo: np.ndarray, spec: np.ndarray, shin: np.ndarray) -> np.ndarray:
    """(3, M) reflected radiance from one light, zero where the light is blocked.

    ``view``: (3, M) unit vectors from the surface towards the camera; other arrays as in
    :func:`surface_attributes`. Everything is computed on all M pixels and masked at the end: on numpy,
    arithmetic on every pixel is cheaper than gathering the lit ones.
    """
    lv = _vec(light.vector)
    if light.kind == "sun":
        to_light = lv
        irradiance: np.ndarray | np.float32 = np.float32(light.intensity)
    else:
        delta = lv - p
        dist = np.sqrt(dot3(delta, delta))
        to_light = delta / np.maximum(dist, np.float32(1e-6))
        # Clamp the distance so a surface touching the bulb is not infinitely bright.
        irradiance = np.float32(light.intensity) / np.maximum(dist, np.float32(0.25)) ** 2
    ndl = dot3(n, to_light)
    # Nudge shadow-ray origins off the surface by more than the float32 rounding of the hit point.
    eps = np.float32(2e-4) * (np.float32(1) + np.maximum(np.maximum(np.abs(p[0]), np.abs(p[1])), np.abs(p[2])))
    blocked = occluded(scene.shapes, scene.shadow_groups(), p + n * eps, np.asarray(light.vector), light.kind,
                       ignore=ndl <= 0)
    half = to_light + view
    ndh = np.maximum(dot3(n, half), np.float32(1e-12)) / np.maximum(np.sqrt(dot3(half, half)), np.float32(1e-6))
    # Normalised Blinn-Phong lobe (sharper highlights are brighter, not just smaller); exp(s log x) is
    # several times faster than x ** s with an array exponent.
    lobe = spec * (shin + 8) / np.float32(8 * math.pi) * np.exp(shin * np.log(np.minimum(ndh, 1)))
    e = np.where(blocked, np.float32(0), ndl * irradiance)
    return _vec(light.color) * e[None] * (albedo * (1 - spec)[None] + lobe[None])


def ambient_light(env: Environment, n: np.ndarray, albedo: np.ndarray) -> np.ndarray:
    """(3, M) hemispheric ambient: ``ambient`` from above blended into ``ground_ambient`` from below."""
    up = np.float32(0.5) + np.float32(0.5) * n[2]
    return albedo * (_vec(env.ground_ambient) + (_vec(env.ambient) - _vec(env.ground_ambient)) * up[None])


def sky_radiance(scene: Scene, d: np.ndarray) -> np.ndarray:
    """(3, M) sky radiance along ray directions ``d`` (3, M): gradient, sun glow and clouds."""
    env = scene.environment
    dn = d / np.sqrt((d * d).sum(0))[None]
    elev = np.clip(dn[2], 0, 1)
    t = np.sqrt(elev)
    sky = _vec(env.horizon) + (_vec(env.zenith) - _vec(env.horizon)) * t[None]
    for light in scene.lights:
        if light.kind == "sun":
            c = np.clip((dn * _vec(light.vector)).sum(0), 0, 1)
            glow = np.float32(0.6) * c ** 32 + np.float32(40.0) * (c > np.float32(math.cos(0.01)))
            sky = sky + _vec(light.color) * (np.float32(light.intensity) * np.float32(0.05) * glow)[None]
    if env.clouds > 0:
        up = np.maximum(dn[2], np.float32(0.02))
        reach = np.float32(CLOUD_HEIGHT) / up  # ray length to the cloud layer
        x = dn[0] * reach / np.float32(800.0)
        y = dn[1] * reach / np.float32(800.0)
        n = fbm(x, y, env.cloud_seed, 5, reach / np.float32(scene.camera.fx * 800.0))
        cover = np.clip((n - np.float32(1 - env.clouds)) * 4, 0, 1) * np.clip(dn[2] * 8, 0, 1)
        brightness = _vec(env.horizon) * np.float32(1.3) * (1 - np.float32(0.35) * n)[None]
        sky = sky + (brightness - sky) * cover[None]
    return sky.astype(np.float32)


def apply_fog(env: Environment, radiance: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Blend (3, M) radiance towards the horizon colour by exp(-density * distance) (distance in metres)."""
    if env.fog_density <= 0:
        return radiance
    keep = np.exp(-np.float32(env.fog_density) * distance)[None]
    return radiance * keep + _vec(env.horizon) * (1 - keep)


def shade(scene: Scene, depth: np.ndarray, shape_id: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Linear radiance image.

    Args:
        depth: (H, W) float32 planar depth in metres (``inf`` = nothing hit).
        shape_id: (H, W) int32 shape index (-1 = nothing hit).
        d: (3, H, W) float32 ray directions from :meth:`Camera.ray_directions`.

    Returns:
        (3, H, W) float32 linear RGB radiance (unbounded, before exposure).
    """
    h, w = depth.shape
    flat_id = shape_id.reshape(-1)
    flat_d = d.reshape(3, -1)
    out = np.empty((3, h * w), np.float32)
    order = tile_order(h, w)
    hit = order[flat_id[order] >= 0]
    miss = np.flatnonzero(flat_id < 0)
    if miss.size:
        put(out, miss, sky_radiance(scene, take(flat_d, miss)))
    if hit.size:
        dh = take(flat_d, hit)
        p, n, albedo, spec, shin = surface_attributes(scene, depth.reshape(-1)[hit], flat_id[hit], dh)
        ray_len = np.sqrt(dot3(dh, dh))
        view = -dh / ray_len[None]
        rad = ambient_light(scene.environment, n, albedo)
        for light in scene.lights:
            rad += direct_light(scene, light, p, n, view, albedo, spec, shin)
        put(out, hit, apply_fog(scene.environment, rad, depth.reshape(-1)[hit] * ray_len))
    return out.reshape(3, h, w)

