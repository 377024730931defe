"""Random indoor rooms: a closed box room (floor, four walls, ceiling) with furniture, thin structures
(table and chair legs, shelf boards, lamp poles, skirting boards), clutter and one or two point lights.

The room spans [0, X] x [0, Y] x [0, Z] metres. Nothing is placed within reach of the camera, so the
camera is never inside or touching an object.
"""

from __future__ import annotations

import math

import numpy as np

from . import objects as obj
from .camera import Camera, sample_intrinsics
from .objects import Assembly
from .scene import Environment, Light, Scene
from .sensor import sample_sensor
from .shapes import Box, Cylinder, Plane, Sphere
from .textures import FAMILIES

FOV_RANGE = (math.radians(50), math.radians(95))
CAMERA_CLEARANCE = 0.4  # metres kept free around the camera when placing furniture (horizontal)
CAMERA_MARGIN = 0.25  # metres: any shape closer than this to the camera is removed at the end
LIGHT_MARGIN = 0.1  # metres: the same around each light

# kind -> (relative frequency, rough footprint radius used for spacing, placed against a wall)
_FURNITURE: dict[str, tuple[float, float, bool]] = {
    "table": (3, 1.0, False), "chair": (2, 0.4, False), "shelf": (3, 0.9, True), "cabinet": (3, 1.2, True),
    "lamp": (1.5, 0.25, False), "ball": (1.5, 0.35, False), "column": (1, 0.35, False),
    "bin": (1.5, 0.3, False), "pile": (2, 0.6, False), "plant": (1.5, 0.6, False),
}


def _camera(rng: np.random.Generator, width: int, height: int, room: tuple[float, float, float]) -> Camera:
    x, y, z = room
    ch = float(rng.uniform(1.1, 1.8)) if rng.random() < 0.7 else float(rng.uniform(0.4, 2.3))
    ch = min(ch, z - 0.3)
    pos = (float(rng.uniform(0.4, x - 0.4)), float(rng.uniform(0.4, y - 0.4)), ch)
    fx, fy, cx, cy = sample_intrinsics(rng, width, height, FOV_RANGE)
    # People photograph rooms across their length, not a wall from 30 cm: among a few random headings,
    # keep one with a long free view (the horizontal distance to the wall ahead).
    yaws = rng.uniform(-math.pi, math.pi, 6)
    reach = np.array([_distance_to_wall(pos[0], pos[1], float(a), x, y) for a in yaws])
    good = np.flatnonzero(reach >= min(2.0, 0.6 * reach.max()))
    yaw = float(yaws[good[int(rng.integers(len(good)))]])
    pitch = float(np.clip(rng.normal(-0.12, 0.18), -0.8, 0.45))
    roll = float(np.clip(rng.normal(0, 0.04), -0.12, 0.12))
    return Camera(width, height, fx, fy, cx, cy, pos, yaw, pitch, roll)


def _distance_to_wall(px: float, py: float, yaw: float, x: float, y: float) -> float:
    """Horizontal distance from (px, py) heading ``yaw`` (Camera convention) to the wall of [0,x]x[0,y]."""
    dx, dy = math.sin(yaw), math.cos(yaw)
    tx = (x - px) / dx if dx > 1e-9 else (-px / dx if dx < -1e-9 else math.inf)
    ty = (y - py) / dy if dy > 1e-9 else (-py / dy if dy < -1e-9 else math.inf)
    return min(tx, ty)


def _room_shell(asm: Assembly, x: float, y: float, z: float) -> None:
    floor, ceiling, wall = asm.material("floor"), asm.material("ceiling"), asm.material("wall")
    asm.add(Plane((0, 0, 1), 0.0, floor), label="floor")
    asm.add(Plane((0, 0, 1), z, ceiling), label="ceiling")
    for normal, offset in (((1, 0, 0), 0.0), ((1, 0, 0), x), ((0, 1, 0), 0.0), ((0, 1, 0), y)):
        asm.add(Plane(normal, offset, asm.material("wall") if asm.rng.random() < 0.25 else wall),  # type: ignore
                label="wall")
    r = asm.rng
    if r.random() < 0.6:  # skirting boards: thin boxes along the bottom of every wall
        m = asm.material("furniture")
        hh, t = float(r.uniform(0.03, 0.08)), float(r.uniform(0.005, 0.015))
        asm.add(Box((t, y / 2, hh), (t, y / 2, hh), 0.0, m), Box((x - t, y / 2, hh), (t, y / 2, hh), 0.0, m),
                Box((x / 2, t, hh), (x / 2, t, hh), 0.0, m), Box((x / 2, y - t, hh), (x / 2, t, hh), 0.0, m),
                label="skirting")
    for _ in range(int(r.integers(0, 5))):  # doors, pictures, windows: thin slabs on the walls
        m = asm.material("any")
        w, h = float(r.uniform(0.2, 1.0)), float(r.uniform(0.2, 1.1))
        zc = float(r.uniform(h + 0.1, max(h + 0.2, z - h - 0.1))) if r.random() < 0.7 else h
        t = float(r.uniform(0.01, 0.04))
        side = int(r.integers(4))
        if side < 2:
            yc = float(r.uniform(w, max(w + 0.01, y - w)))
            asm.add(Box((t if side == 0 else x - t, yc, zc), (t, w, h), 0.0, m), label="wall_decor")
        else:
            xc = float(r.uniform(w, max(w + 0.01, x - w)))
            asm.add(Box((xc, t if side == 2 else y - t, zc), (w, t, h), 0.0, m), label="wall_decor")


def _wall_anchor(rng: np.random.Generator, room: tuple[float, float, float], margin: float
                 ) -> tuple[float, float, float]:
    """A point on a random wall, at least ``margin`` from the corners, and the yaw facing into the room."""
    x, y, _ = room
    side = int(rng.integers(4))
    if side < 2:
        py = float(rng.uniform(margin, max(margin + 1e-3, y - margin)))
        px, inward = (0.0, (1.0, 0.0)) if side == 0 else (x, (-1.0, 0.0))
    else:
        px = float(rng.uniform(margin, max(margin + 1e-3, x - margin)))
        py, inward = (0.0, (0.0, 1.0)) if side == 2 else (y, (0.0, -1.0))
    return px, py, math.atan2(-inward[0], inward[1])  # local +y of a yawed box points into the room


def _furnish(asm: Assembly, room: tuple[float, float, float], cam: Camera) -> None:
    r = asm.rng
    x, y, z = room
    kinds = list(_FURNITURE)
    weights = np.array([_FURNITURE[k][0] for k in kinds])
    taken: list[tuple[float, float, float]] = [(cam.position[0], cam.position[1], CAMERA_CLEARANCE)]
    wanted = int(r.integers(3, 13))
    for _ in range(wanted * 4):
        if len(taken) > wanted:
            break
        kind = kinds[int(r.choice(len(kinds), p=weights / weights.sum()))]
        _, rad, on_wall = _FURNITURE[kind]
        if on_wall:
            ax, ay, yaw = _wall_anchor(r, room, rad)
            cx, cy = ax - math.sin(yaw) * rad * 0.5, ay + math.cos(yaw) * rad * 0.5
        else:
            cx, cy = float(r.uniform(rad, max(rad + 1e-3, x - rad))), float(r.uniform(rad, max(rad + 1e-3, y - rad)))
            ax, ay, yaw = cx, cy, float(r.uniform(-math.pi, math.pi))
        if any(math.hypot(cx - tx, cy - ty) < rad + tr for tx, ty, tr in taken):
            continue
        taken.append((cx, cy, rad))
        _place(asm, kind, ax, ay, yaw, z)


def _place(asm: Assembly, kind: str, x: float, y: float, yaw: float, room_z: float) -> None:
    r = asm.rng
    if kind == "table":
        obj.table(asm, x, y, yaw, asm.material("furniture"), asm.material("metal"))
    elif kind == "chair":
        obj.chair(asm, x, y, yaw, asm.material("furniture"))
    elif kind == "shelf":
        obj.shelf(asm, x, y, yaw, asm.material("furniture"))
    elif kind == "cabinet":
        obj.cabinet(asm, x, y, yaw, asm.material("furniture"))
    elif kind == "lamp":
        obj.floor_lamp(asm, x, y, asm.material("metal"), asm.material("any"))
    elif kind == "ball":
        rad = float(r.uniform(0.06, 0.35))
        asm.add(Sphere((x, y, rad), rad, asm.material("any"), float(r.uniform(-math.pi, math.pi))), label="ball")
    elif kind == "column":
        asm.add(Cylinder((x, y), 0.0, room_z, float(r.uniform(0.08, 0.3)), asm.material("wall")), label="column")
    elif kind == "bin":
        asm.add(Cylinder((x, y), 0.0, float(r.uniform(0.2, 0.9)), float(r.uniform(0.08, 0.3)),
                         asm.material("any")), label="bin")
    elif kind == "pile":
        z = 0.0
        for _ in range(int(r.integers(1, 4))):
            hx, hy, hz = (float(v) for v in r.uniform(0.1, 0.45, 3))
            hz = min(hz, 0.35)
            asm.add(Box((x + float(r.normal(0, 0.05)), y + float(r.normal(0, 0.05)), z + hz), (hx, hy, hz),
                        float(r.uniform(0, math.pi)), asm.material("any")), label="box")
            z += 2 * hz
    elif kind == "plant":
        pot = float(r.uniform(0.1, 0.25))
        ph = float(r.uniform(0.2, 0.5))
        asm.add(Cylinder((x, y), 0.0, ph, pot, asm.material("any")), label="plant")
        leaves = asm.material("foliage")
        asm.add(*[Sphere((x + float(r.normal(0, pot)), y + float(r.normal(0, pot)),
                          ph + float(r.uniform(0.1, 0.6))), float(r.uniform(0.12, 0.3)), leaves)
                  for _ in range(int(r.integers(3, 8)))], label="plant")


def indoor_scene(rng: np.random.Generator, width: int, height: int, families: tuple[str, ...] = FAMILIES,
                 max_depth: float = 20.0) -> Scene:
    """A random furnished room seen from a random interior viewpoint.

    Args:
        rng: the sample's generator (fully determines the scene).
        width, height: image size in pixels.
        families: allowed texture families.
        max_depth: planar depths beyond this many metres are labelled invalid.
    """
    room = (float(rng.uniform(3.0, 9.0)), float(rng.uniform(3.0, 12.0)), float(rng.uniform(2.4, 4.0)))
    asm = Assembly(rng, families)
    _room_shell(asm, *room)
    cam = _camera(rng, width, height, room)
    _furnish(asm, room, cam)
    asm.clear_around(cam.position, CAMERA_MARGIN)
    x, y, z = room
    tint = (1.0, float(rng.uniform(0.8, 1.0)), float(rng.uniform(0.6, 1.0)))
    if rng.random() < 0.3:
        tint = (float(rng.uniform(0.75, 0.95)), float(rng.uniform(0.85, 1.0)), 1.0)
    lights = [Light("point", (float(rng.uniform(0.2, 0.8)) * x, float(rng.uniform(0.2, 0.8)) * y,
                              z - float(rng.uniform(0.1, 0.5))), tint, float(rng.uniform(3.0, 12.0)))]
    if rng.random() < 0.35:
        lights.append(Light("point", (float(rng.uniform(0.3, x - 0.3)), float(rng.uniform(0.3, y - 0.3)),
                                      float(rng.uniform(0.8, z - 0.1))), (1.0, 0.95, 0.85),
                            float(rng.uniform(1.0, 5.0))))
    a = float(rng.uniform(0.04, 0.3))
    ambient = (a * tint[0], a * tint[1], a * tint[2])
    haze = float(rng.uniform(0.005, 0.04)) if rng.random() < 0.1 else 0.0
    env = Environment(zenith=ambient, horizon=(a, a, a), ambient=ambient,
                      ground_ambient=tuple(c * 0.5 for c in ambient), fog_density=haze)  # type: ignore[arg-type]
    for light in lights:  # a bulb inside a column or a tall cabinet would leave the room in shadow
        asm.clear_around(light.vector, LIGHT_MARGIN)
    return Scene(cam, asm.shapes, asm.materials, lights, env, sample_sensor(rng), max_depth, asm.groups,
                 labels=asm.labels)
