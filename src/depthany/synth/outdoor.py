"""Random outdoor scenes: an infinite ground plane up to the horizon, sky at infinity (invalid depth),
a sun with hard shadows, and either a street (road, pavements, buildings in rows, street lamps, parked
cars) or open land (scattered buildings, trees, bushes, rocks, fences, poles, crates), sometimes with
distant hills on the horizon and fog.

The camera stands at the origin (x = y = 0) at a random height; objects are scattered mostly inside a
sector around its heading so most of them are seen, and a few behind it so their shadows reach into view.
"""

from __future__ import annotations

import math

import numpy as np

from . import objects as obj
from .camera import Camera, sample_intrinsics
from .objects import Assembly
from .scene import Environment, Light, Scene
from .sensor import sample_sensor
from .shapes import Box, Plane, Sphere
from .textures import FAMILIES, RGB

FOV_RANGE = (math.radians(40), math.radians(90))
STREET_LENGTH = 400.0  # metres of road modelled ahead of and behind the camera
CAMERA_MARGIN = 0.5  # metres: any shape closer than this to the camera is removed at the end


class _Layout:
    """Keeps objects apart: a list of occupied discs on the ground."""

    def __init__(self, rng: np.random.Generator, yaw: float, spread: float) -> None:
        self.rng, self.yaw, self.spread = rng, yaw, spread
        self.taken: list[tuple[float, float, float]] = [(0.0, 0.0, 1.0)]  # the camera

    def free(self, x: float, y: float, r: float) -> bool:
        return all(math.hypot(x - tx, y - ty) >= r + tr for tx, ty, tr in self.taken)

    def claim(self, x: float, y: float, r: float) -> None:
        self.taken.append((x, y, r))

    def spot(self, r: float, dmin: float, dmax: float, behind: float = 0.1) -> tuple[float, float] | None:
        """A free ground point at log-uniform distance, mostly in view; None after a few failed tries."""
        for _ in range(8):
            dist = math.exp(self.rng.uniform(math.log(dmin + r), math.log(dmax + r)))
            wide = self.rng.random() < behind
            a = self.yaw + (self.rng.uniform(-math.pi, math.pi) if wide else self.rng.uniform(-1, 1) * self.spread)
            x, y = dist * math.sin(a), dist * math.cos(a)
            if self.free(x, y, r):
                self.claim(x, y, r)
                return x, y
        return None


def _camera(rng: np.random.Generator, width: int, height: int) -> Camera:
    u = rng.random()
    h = float(rng.uniform(1.2, 2.2)) if u < 0.7 else float(rng.uniform(2.2, 6.0)) if u < 0.9 else \
        float(rng.uniform(6.0, 25.0))
    pitch = float(np.clip(rng.normal(-0.04 - 0.02 * h, 0.08), -0.9, 0.25))
    roll = float(np.clip(rng.normal(0, 0.035), -0.12, 0.12))
    fx, fy, cx, cy = sample_intrinsics(rng, width, height, FOV_RANGE)
    return Camera(width, height, fx, fy, cx, cy, (0.0, 0.0, h), float(rng.uniform(-math.pi, math.pi)), pitch, roll)


def _street(asm: Assembly, lay: _Layout, cam: Camera) -> None:
    r = asm.rng
    heading = cam.yaw + float(r.normal(0, 0.35))
    ux, uy = math.sin(heading), math.cos(heading)  # along the road
    vx, vy = uy, -ux  # across the road (to the right)
    half = float(r.uniform(3.0, 8.0))
    off = float(r.uniform(-0.8, 0.8)) * half  # the camera's lateral position on the road
    road_yaw = -heading  # a Box's local y axis points along (sin h, cos h) when yaw = -h
    ox, oy = -off * vx, -off * vy  # road centre line passes through here
    asm.add(Box((ox, oy, 0.005), (half, STREET_LENGTH, 0.005), road_yaw, asm.material("road")), label="road")
    walk = float(r.uniform(1.5, 4.0))
    curb = float(r.uniform(0.08, 0.2))
    pave = asm.material("ground")
    for side in (-1, 1):
        c = side * (half + walk / 2)
        asm.add(Box((ox + c * vx, oy + c * vy, curb / 2), (walk / 2, STREET_LENGTH, curb / 2), road_yaw, pave),
                label="sidewalk")
    lamp = asm.material("metal")
    lamp_h = float(r.uniform(3.0, 9.0))
    spacing = float(r.uniform(8.0, 30.0))
    start = float(r.uniform(0, spacing))
    for side in (-1, 1):
        if r.random() < 0.3:
            continue
        c = side * (half + 0.4)
        for k in range(int(150 / spacing)):
            s = start + k * spacing - 20
            obj.street_lamp(asm, ox + c * vx + s * ux, oy + c * vy + s * uy, lamp, lamp_h)
    for side in (-1, 1):  # rows of buildings with gaps
        s = float(r.uniform(-30, 0))
        setback = half + walk + float(r.uniform(0, 6))
        while s < 220:
            width = float(r.uniform(6, 30))
            depth = float(r.uniform(8, 25))
            height = math.exp(r.uniform(math.log(4), math.log(50)))
            c = side * (setback + depth / 2)
            asm.add(Box((ox + c * vx + (s + width / 2) * ux, oy + c * vy + (s + width / 2) * uy, height / 2),
                        (depth / 2, width / 2, height / 2), road_yaw, asm.material("building")), label="building")
            s += width + (float(r.uniform(1, 15)) if r.random() < 0.5 else 0.0)
    body_mats = [asm.material("any") for _ in range(3)]
    glass = asm.material("metal")
    for _ in range(int(r.integers(0, 7))):
        s = float(r.uniform(6, 90))
        c = float(r.choice([-1, 1])) * float(r.uniform(0.3, 0.8)) * half
        x, y = ox + c * vx + s * ux, oy + c * vy + s * uy
        if lay.free(x, y, 2.5):
            lay.claim(x, y, 2.5)
            obj.car(asm, x, y, road_yaw, body_mats[int(r.integers(3))], glass)
    leaves, bark = asm.material("foliage"), asm.material("bark")
    if r.random() < 0.5:
        for _ in range(int(r.integers(2, 12))):
            s = float(r.uniform(3, 120))
            c = float(r.choice([-1, 1])) * (half + walk * 0.5)
            obj.tree(asm, ox + c * vx + s * ux, oy + c * vy + s * uy, bark, leaves)


def _open_land(asm: Assembly, lay: _Layout) -> None:
    r = asm.rng
    leaves = [asm.material("foliage") for _ in range(2)]
    bark = asm.material("bark")
    for _ in range(int(r.integers(0, 9))):
        spot = lay.spot(12.0, 15.0, 180.0)
        if spot:
            obj.building(asm, spot[0], spot[1], float(r.uniform(0, math.pi)), asm.material("building"),
                         asm.material("metal"))
    for _ in range(int(r.integers(0, 18))):
        spot = lay.spot(2.5, 3.0, 90.0)
        if spot:
            obj.tree(asm, spot[0], spot[1], bark, leaves[int(r.integers(2))], float(r.uniform(0.6, 1.6)))
    for _ in range(int(r.integers(0, 10))):
        spot = lay.spot(1.0, 2.0, 40.0)
        if spot:
            obj.bush(asm, spot[0], spot[1], leaves[int(r.integers(2))])
    rock = asm.material("rock")
    for _ in range(int(r.integers(0, 8))):
        rad = math.exp(r.uniform(math.log(0.15), math.log(2.0)))
        spot = lay.spot(rad, 2.0, 50.0)
        if spot:
            asm.add(Sphere((spot[0], spot[1], rad * float(r.uniform(-0.5, 0.4))), rad, rock,
                           float(r.uniform(-math.pi, math.pi))), label="rock")
    wood = asm.material("bark")
    for _ in range(int(r.integers(0, 3))):
        spot = lay.spot(6.0, 4.0, 40.0)
        if spot:
            obj.fence(asm, spot[0], spot[1], float(r.uniform(0, math.pi)), float(r.uniform(5, 25)), wood)
    metal = asm.material("metal")
    for _ in range(int(r.integers(0, 6))):
        spot = lay.spot(0.5, 2.0, 60.0)
        if spot:
            obj.street_lamp(asm, spot[0], spot[1], metal, float(r.uniform(2.0, 10.0)))
    for _ in range(int(r.integers(0, 6))):
        spot = lay.spot(1.0, 2.0, 40.0)
        if spot:
            h = float(r.uniform(0.2, 1.2))
            asm.add(Box((spot[0], spot[1], h), (float(r.uniform(0.2, 1.2)), float(r.uniform(0.2, 1.2)), h),
                        float(r.uniform(0, math.pi)), asm.material("any")), label="crate")


def _hills(asm: Assembly, yaw: float) -> None:
    """Huge, mostly buried spheres far away: a hilly horizon (beyond max_depth, so labelled invalid)."""
    r = asm.rng
    m = asm.material("foliage") if r.random() < 0.6 else asm.material("rock")
    for _ in range(int(r.integers(2, 7))):
        a = yaw + float(r.uniform(-1.2, 1.2))
        dist = float(r.uniform(600, 3000))
        rad = dist * float(r.uniform(0.1, 0.4))
        asm.add(Sphere((dist * math.sin(a), dist * math.cos(a), -rad * float(r.uniform(0.75, 0.97))), rad, m),
                label="hill")


def _sky_and_sun(rng: np.random.Generator) -> tuple[Light, Environment]:
    overcast = rng.random() < 0.25
    elevation = float(rng.uniform(0.12, 1.3))
    azimuth = float(rng.uniform(-math.pi, math.pi))
    ce = math.cos(elevation)
    direction = (ce * math.sin(azimuth), ce * math.cos(azimuth), math.sin(elevation))
    s = math.sin(elevation)
    sun_color = (1.0, 0.8 + 0.2 * s, 0.6 + 0.4 * s)  # redder when low
    if overcast:
        grey = float(rng.uniform(0.5, 0.9))
        zenith: RGB = (grey, grey, grey * 1.05)
        horizon: RGB = (grey * 1.1, grey * 1.1, grey * 1.12)
        sun = Light("sun", direction, sun_color, float(rng.uniform(0.2, 1.0)))
        k = float(rng.uniform(0.6, 1.0))
        ambient: RGB = (zenith[0] * k, zenith[1] * k, zenith[2] * k)
        clouds = float(rng.uniform(0.7, 1.0))
    else:
        b = float(rng.uniform(0.5, 1.0))
        zenith = (b * float(rng.uniform(0.15, 0.35)), b * float(rng.uniform(0.35, 0.55)), b)
        w = 0.5 * b * float(rng.uniform(0.7, 1.0))
        horizon = (min(1.0, 0.5 * zenith[0] + w), min(1.0, 0.5 * zenith[1] + w), min(1.0, 0.5 * zenith[2] + w))
        sun = Light("sun", direction, sun_color, float(rng.uniform(2.0, 5.0)))
        k = float(rng.uniform(0.35, 0.7))
        ambient = (0.5 * (zenith[0] + horizon[0]) * k, 0.5 * (zenith[1] + horizon[1]) * k,
                   0.5 * (zenith[2] + horizon[2]) * k)
        clouds = float(rng.uniform(0.1, 0.6)) if rng.random() < 0.6 else 0.0
    u = rng.random()
    visibility = math.exp(rng.uniform(math.log(150), math.log(3000))) if u < 0.35 else \
        float(rng.uniform(5000, 20000))
    env = Environment(zenith=zenith, horizon=horizon, ambient=ambient,
                      ground_ambient=(0.3 * ambient[0], 0.3 * ambient[1], 0.3 * ambient[2]),
                      clouds=clouds, cloud_seed=int(rng.integers(1 << 30)), fog_density=3.0 / visibility)
    return sun, env


def outdoor_scene(rng: np.random.Generator, width: int, height: int, families: tuple[str, ...] = FAMILIES,
                  max_depth: float = 200.0) -> Scene:
    """A random street or open landscape under a sun.

    Args:
        rng: the sample's generator (fully determines the scene).
        width, height: image size in pixels.
        families: allowed texture families.
        max_depth: planar depths beyond this many metres (far ground, hills) are labelled invalid.
    """
    asm = Assembly(rng, families)
    cam = _camera(rng, width, height)
    asm.add(Plane((0, 0, 1), 0.0, asm.material("ground")), label="ground")
    lay = _Layout(rng, cam.yaw, math.atan(cam.width / 2 / cam.fx) + 0.3)
    if rng.random() < 0.4:
        _street(asm, lay, cam)
    else:
        _open_land(asm, lay)
    if rng.random() < 0.5:
        _hills(asm, cam.yaw)
    asm.clear_around(cam.position, CAMERA_MARGIN)  # e.g. a tree crown around a raised camera
    sun, env = _sky_and_sun(rng)
    return Scene(cam, asm.shapes, asm.materials, [sun], env, sample_sensor(rng), max_depth, asm.groups,
                 labels=asm.labels)
