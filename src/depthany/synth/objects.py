"""Composite objects built from primitives (tables, shelves, chairs, lamps, trees, cars, fences...) and
the ``Assembly`` that collects shapes, materials and shadow-culling groups while a world is built.

Every function takes the sample's ``rng`` and draws its own sizes, so an object's look depends only on
the random stream: worlds stay reproducible from (seed, index).
"""

from __future__ import annotations

import math

import numpy as np

from .labels import check_label
from .materials import Material, sample_material
from .shapes import Box, Cylinder, Plane, Shape, Sphere
from .textures import FAMILIES


class Assembly:
    """Shapes, their semantic classes, materials and groups under construction.

    Args:
        rng: the sample's generator.
        families: allowed texture families for every material drawn through :meth:`material`.
    """

    def __init__(self, rng: np.random.Generator, families: tuple[str, ...] = FAMILIES) -> None:
        self.rng = rng
        self.families = families
        self.shapes: list[Shape] = []
        self.labels: list[str] = []  # semantic class of each shape (synth.labels.SYNTH_CLASSES)
        self.materials: list[Material] = []
        self.groups: list[list[int]] = []

    def material(self, role: str) -> int:
        """Draw a new material for ``role`` and return its index."""
        self.materials.append(sample_material(self.rng, role, self.families))
        return len(self.materials) - 1

    def add(self, *shapes: Shape, label: str) -> None:
        """Add shapes of semantic class ``label``; several at once form one shadow-culling group."""
        check_label(label)
        start = len(self.shapes)
        self.shapes.extend(shapes)
        self.labels.extend([label] * len(shapes))
        if len(shapes) > 1:
            self.groups.append(list(range(start, start + len(shapes))))

    def clear_around(self, point: tuple[float, float, float], margin: float) -> int:
        """Remove every bounded shape within ``margin`` metres of ``point`` (or containing it), e.g. the
        tree crown a camera would otherwise stand in. Returns how many were removed."""
        p = np.asarray(point, float)
        keep = [isinstance(s, Plane) or s.distance(p) >= margin for s in self.shapes]
        if all(keep):
            return 0
        new_index = np.cumsum(keep) - 1
        self.shapes = [s for s, k in zip(self.shapes, keep) if k]
        self.labels = [lab for lab, k in zip(self.labels, keep) if k]
        groups = [[int(new_index[i]) for i in g if keep[i]] for g in self.groups]
        self.groups = [g for g in groups if len(g) > 1]
        return len(keep) - sum(keep)


def _rot(x: float, y: float, yaw: float) -> tuple[float, float]:
    """Rotate a local (x, y) offset by ``yaw`` radians into world axes (the Box convention)."""
    c, s = math.cos(yaw), math.sin(yaw)
    return c * x - s * y, s * x + c * y


def table(asm: Assembly, x: float, y: float, yaw: float, mat: int, leg_mat: int) -> float:
    """Table (top + four thin legs) centred at (x, y) on z = 0. Returns its footprint radius in metres."""
    r = asm.rng
    hx, hy, h = r.uniform(0.3, 0.9), r.uniform(0.3, 0.6), r.uniform(0.45, 1.05)
    t = r.uniform(0.02, 0.06)
    leg = r.uniform(0.015, 0.04)
    shapes: list[Shape] = [Box((x, y, h - t), (hx, hy, t), yaw, mat)]
    round_legs = r.random() < 0.5
    for sx in (-1, 1):
        for sy in (-1, 1):
            lx, ly = _rot(sx * (hx - 2 * leg), sy * (hy - 2 * leg), yaw)
            if round_legs:
                shapes.append(Cylinder((x + lx, y + ly), 0.0, h - 2 * t, leg, leg_mat))
            else:
                shapes.append(Box((x + lx, y + ly, (h - 2 * t) / 2), (leg, leg, (h - 2 * t) / 2), yaw, leg_mat))
    asm.add(*shapes, label="table")
    for _ in range(int(r.integers(0, 4))):  # things on the table top
        ox, oy = _rot(r.uniform(-hx * 0.8, hx * 0.8), r.uniform(-hy * 0.8, hy * 0.8), yaw)
        size = r.uniform(0.03, 0.15)
        m = asm.material("any")
        if r.random() < 0.4:
            asm.add(Cylinder((x + ox, y + oy), h, h + size * r.uniform(1, 3), size * 0.6, m), label="clutter")
        elif r.random() < 0.5:
            asm.add(Sphere((x + ox, y + oy, h + size), size, m), label="clutter")
        else:
            asm.add(Box((x + ox, y + oy, h + size * 0.5), (size, size * 1.4, size * 0.5),
                        float(r.uniform(0, math.pi)), m), label="clutter")
    return math.hypot(hx, hy)


def chair(asm: Assembly, x: float, y: float, yaw: float, mat: int) -> float:
    """Chair: seat, four legs and a back rest. Returns its footprint radius."""
    r = asm.rng
    s, h = r.uniform(0.2, 0.28), r.uniform(0.4, 0.5)
    leg, t = r.uniform(0.015, 0.03), 0.025
    shapes: list[Shape] = [Box((x, y, h), (s, s, t), yaw, mat)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            lx, ly = _rot(sx * (s - leg), sy * (s - leg), yaw)
            shapes.append(Box((x + lx, y + ly, (h - t) / 2), (leg, leg, (h - t) / 2), yaw, mat))
    bx, by = _rot(0.0, -s + t, yaw)
    back = r.uniform(0.3, 0.5)
    shapes.append(Box((x + bx, y + by, h + back / 2), (s, t, back / 2), yaw, mat))
    asm.add(*shapes, label="chair")
    return s * 1.5


def shelf(asm: Assembly, x: float, y: float, yaw: float, mat: int) -> float:
    """Open shelf with side panels, a back and thin boards, a few items on them.

    (x, y) is the middle of its back edge; it extends along its local +y (set ``yaw`` so that points
    away from a wall). Returns its footprint radius.
    """
    r = asm.rng
    hx, hy, h = r.uniform(0.3, 1.0), r.uniform(0.15, 0.25), r.uniform(0.8, 2.2)
    t = r.uniform(0.01, 0.025)
    cx, cy = _rot(0.0, hy + 0.005, yaw)
    x, y = x + cx, y + cy
    shapes: list[Shape] = []
    for sx in (-1, 1):
        lx, ly = _rot(sx * (hx - t), 0.0, yaw)
        shapes.append(Box((x + lx, y + ly, h / 2), (t, hy, h / 2), yaw, mat))
    bx, by = _rot(0.0, -hy + t, yaw)
    shapes.append(Box((x + bx, y + by, h / 2), (hx, t, h / 2), yaw, mat))
    boards = int(r.integers(2, 6))
    for k in range(boards + 1):
        z = t + k * (h - 2 * t) / boards
        shapes.append(Box((x, y, z), (hx - 2 * t, hy, t), yaw, mat))
    asm.add(*shapes, label="shelf")
    for _ in range(int(r.integers(0, 5))):
        board = int(r.integers(0, boards))
        z = 2 * t + board * (h - 2 * t) / boards
        ox, oy = _rot(r.uniform(-hx + 0.1, hx - 0.1), r.uniform(-hy / 2, hy / 2), yaw)
        size = r.uniform(0.04, min(0.15, (h - 2 * t) / boards / 2.5))
        m = asm.material("any")
        if r.random() < 0.5:
            asm.add(Box((x + ox, y + oy, z + size), (size, size * r.uniform(0.5, 1), size), yaw, m),
                    label="clutter")
        else:
            asm.add(Sphere((x + ox, y + oy, z + size), size, m), label="clutter")
    return math.hypot(hx, hy)


def cabinet(asm: Assembly, x: float, y: float, yaw: float, mat: int) -> float:
    """Closed cabinet, bed or sofa-like block, sometimes with a back rest or an upper unit.

    (x, y) is the middle of its back edge; it extends along its local +y. Returns its footprint radius.
    """
    r = asm.rng
    hx, hy, hz = r.uniform(0.25, 1.1), r.uniform(0.2, 0.9), r.uniform(0.2, 1.0)
    cx, cy = _rot(0.0, hy + 0.005, yaw)
    x, y = x + cx, y + cy
    shapes: list[Shape] = [Box((x, y, hz), (hx, hy, hz), yaw, mat)]
    if r.random() < 0.4:
        bx, by = _rot(0.0, -hy * 0.75, yaw)
        up = r.uniform(0.15, 0.5)
        shapes.append(Box((x + bx, y + by, 2 * hz + up), (hx, hy * 0.25, up), yaw, mat))
    asm.add(*shapes, label="cabinet")
    return math.hypot(hx, hy)


def floor_lamp(asm: Assembly, x: float, y: float, mat: int, shade_mat: int) -> float:
    """A thin pole with a round or cylindrical shade. Returns its footprint radius."""
    r = asm.rng
    h = r.uniform(1.2, 1.8)
    pole = Cylinder((x, y), 0.0, h, r.uniform(0.01, 0.025), mat)
    base = Cylinder((x, y), 0.0, 0.03, r.uniform(0.1, 0.18), mat)
    if r.random() < 0.5:
        top: Shape = Sphere((x, y, h + 0.12), r.uniform(0.1, 0.2), shade_mat)
    else:
        top = Cylinder((x, y), h - 0.1, h + 0.2, r.uniform(0.12, 0.25), shade_mat)
    asm.add(pole, base, top, label="lamp")
    return 0.25


def tree(asm: Assembly, x: float, y: float, bark: int, leaves: int, scale: float = 1.0) -> float:
    """Trunk plus a cluster of overlapping spheres as the crown. Returns the crown radius."""
    r = asm.rng
    h = r.uniform(1.5, 5.0) * scale
    trunk = Cylinder((x, y), 0.0, h, r.uniform(0.06, 0.3) * scale, bark)
    crown = r.uniform(1.0, 3.0) * scale
    shapes: list[Shape] = [trunk]
    for _ in range(int(r.integers(4, 13))):
        off = r.normal(0, 0.45, 3) * crown
        rad = crown * r.uniform(0.35, 0.7)
        shapes.append(Sphere((x + off[0], y + off[1], h + crown * 0.4 + off[2] * 0.7), rad, leaves))
    asm.add(*shapes, label="tree")
    return crown * 1.5


def bush(asm: Assembly, x: float, y: float, leaves: int) -> float:
    """A low cluster of spheres. Returns its radius."""
    r = asm.rng
    size = r.uniform(0.3, 1.2)
    shapes = [Sphere((x + r.normal(0, size * 0.5), y + r.normal(0, size * 0.5), size * r.uniform(0.2, 0.8)),
                     size * r.uniform(0.4, 0.8), leaves) for _ in range(int(r.integers(3, 8)))]
    asm.add(*shapes, label="bush")
    return size * 1.5


def street_lamp(asm: Assembly, x: float, y: float, mat: int, height: float) -> None:
    """A pole with a small box lamp head."""
    r = asm.rng
    rad = r.uniform(0.04, 0.15)
    asm.add(Cylinder((x, y), 0.0, height, rad, mat),
            Box((x, y, height + 0.1), (rad * 3, rad * 3, 0.1), float(r.uniform(0, math.pi)), mat), label="pole")


def fence(asm: Assembly, x: float, y: float, yaw: float, length: float, mat: int) -> None:
    """Posts every ~1-3 m joined by one or two thin rails along ``yaw``."""
    r = asm.rng
    h = r.uniform(0.6, 1.5)
    post = r.uniform(0.03, 0.08)
    step = r.uniform(1.0, 3.0)
    n = max(2, int(length / step) + 1)
    shapes: list[Shape] = []
    for k in range(n):
        px, py = _rot(-length / 2 + k * length / (n - 1), 0.0, yaw)
        shapes.append(Box((x + px, y + py, h / 2), (post, post, h / 2), yaw, mat))
    for z in ([h * 0.85] if r.random() < 0.5 else [h * 0.85, h * 0.4]):
        shapes.append(Box((x, y, z), (length / 2, post * 0.6, post * 0.6), yaw, mat))
    asm.add(*shapes, label="fence")


def car(asm: Assembly, x: float, y: float, yaw: float, body: int, glass: int) -> float:
    """A car-sized body with a cabin on top. Returns its footprint radius."""
    r = asm.rng
    hx, hy = r.uniform(0.8, 1.0), r.uniform(1.9, 2.6)
    low = r.uniform(0.45, 0.7)
    asm.add(Box((x, y, 0.2 + low / 2), (hx, hy, low / 2), yaw, body),
            Box((x, y, 0.2 + low + 0.3), (hx * 0.85, hy * 0.55, 0.3), yaw, glass), label="car")
    return hy


def building(asm: Assembly, x: float, y: float, yaw: float, mat: int, roof: int) -> float:
    """A block building, sometimes with a setback upper storey or a flat roof slab. Returns footprint."""
    r = asm.rng
    hx, hy = r.uniform(3, 15), r.uniform(3, 15)
    h = math.exp(r.uniform(math.log(3), math.log(45)))
    shapes: list[Shape] = [Box((x, y, h / 2), (hx, hy, h / 2), yaw, mat)]
    u = r.random()
    if u < 0.35:
        h2 = r.uniform(2, max(2.5, h / 2))
        shapes.append(Box((x, y, h + h2 / 2), (hx * r.uniform(0.5, 0.9), hy * r.uniform(0.5, 0.9), h2 / 2),
                          yaw, mat))
    elif u < 0.6:
        shapes.append(Box((x, y, h + 0.15), (hx + 0.3, hy + 0.3, 0.15), yaw, roof))
    asm.add(*shapes, label="building")
    return math.hypot(hx, hy)
