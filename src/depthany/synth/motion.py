"""Moving objects in synthetic sequences: which of a world's objects may move, and a rigid, deterministic
trajectory for each.

An *object* is a cluster of bounded primitives of the movable classes (:data:`MOVABLE_CLASSES`): a builder's
shadow group (a table with its legs, a lamp) or a single primitive, merged with the movable ones it touches (the
clutter on a table, a stacked box, two chairs side by side) and, for the same class, with those whose ground
footprints overlap (a plant's pot and its leaves). A cluster touching a primitive that stays put (a shelf, a
wall decoration, a skirting board, a tree) is not movable. Touching means that the axis-aligned bounding boxes,
grown by :data:`TOUCH` metres, overlap.

A moving object keeps its height and turns about the vertical axis through the centre of its footprint
(:attr:`ObjectMotion.center`): at frame f the centre is at ``fold(center + f * velocity)`` (per axis) and the
object has turned by ``f * spin`` radians, anticlockwise seen from above (the ``Box.yaw`` direction), so a point
``p`` of the object at frame 0 is at ``R(f * spin) @ (p - center) + centre_f`` (``p``'s height unchanged). In a
room, ``fold`` reflects the centre between the walls minus the object's footprint radius (it bounds off the
walls); outdoors there are no walls and the velocity is constant.

Guaranteed at every frame (checked on the exact moved primitives; an object whose drawn trajectory fails is
given another draw, up to :data:`TRIES`, then another object is tried):

* no moving primitive comes within :data:`CLEARANCE` metres of the camera's centre, nor within
  :data:`LIGHT_CLEARANCE` of a point light;
* indoors, the object's footprint (a disc of :attr:`ObjectMotion.radius` about its centre, which contains every
  turned position) stays inside the room's walls; objects whose disc does not fit at frame 0 are not moved.

Not guaranteed: moving objects may pass through static furniture and through each other (there is no collision
handling), and outdoors nothing bounds them (a car may drive into a building).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .camera import Camera
from .raycast import trace
from .scene import Scene
from .shapes import Box, Cylinder, Plane, Shape, Sphere

MOVABLE_CLASSES: frozenset[str] = frozenset({
    "table", "chair", "ball", "bin", "box", "lamp", "plant", "clutter",  # indoor
    "car", "crate", "rock", "bush"})  # outdoor
GROUND_CLASSES: frozenset[str] = frozenset({"road", "sidewalk"})  # surfaces things stand on: touching them is fine
TOUCH = 0.01  # metres: bounding boxes this close count as touching
CLEARANCE = 0.3  # metres between a moving primitive and the camera centre, at every frame
LIGHT_CLEARANCE = 0.1  # metres between a moving primitive and a point light
TRIES = 8  # trajectory draws per object
MOTION_STREAM = 1  # the motion generator is seeded with SeedSequence([seed, index, MOTION_STREAM])


class TooFewObjects(ValueError):
    """A world has fewer objects that can move than were asked for; ``reason`` says why without naming the
    option (the CLI names ``--moving-objects``, Python ``moving_objects``)."""

    def __init__(self, asked: int, reason: str) -> None:
        self.asked, self.reason = asked, reason
        super().__init__(f"moving_objects={asked}: {reason}")


@dataclass(frozen=True)
class ObjectMotion:
    """One moving object and its trajectory (see the module docstring for the formula).

    Attributes:
        shapes: indices into ``scene.shapes`` of the object's primitives.
        label: semantic class of its first primitive.
        center: (x, y) world metres of the vertical axis it turns about, at frame 0.
        radius: horizontal radius in metres of its footprint about ``center`` (every turned position).
        velocity: (vx, vy) metres per frame before reflection.
        spin: radians per frame, anticlockwise seen from above.
        bounds: (x0, x1, y0, y1) the centre is folded into (the room minus ``radius``), or None (outdoors).
    """

    shapes: tuple[int, ...]
    label: str
    center: tuple[float, float]
    radius: float
    velocity: tuple[float, float]
    spin: float
    bounds: tuple[float, float, float, float] | None = None

    def placement(self, frame: int) -> tuple[float, float, float]:
        """(x, y, angle): the centre at ``frame`` in world metres and the angle turned since frame 0 (radians)."""
        x = self.center[0] + self.velocity[0] * frame
        y = self.center[1] + self.velocity[1] * frame
        if self.bounds is not None:
            x, y = _fold(x, self.bounds[0], self.bounds[1]), _fold(y, self.bounds[2], self.bounds[3])
        return x, y, self.spin * frame

    def transform(self, frame: int) -> np.ndarray:
        """(4, 4) float64 rigid motion taking the object's world points at frame 0 to frame ``frame``."""
        x, y, a = self.placement(frame)
        c, s = math.cos(a), math.sin(a)
        t = np.eye(4)
        t[:2, :2] = [[c, -s], [s, c]]
        t[:2, 3] = np.array([x, y]) - t[:2, :2] @ np.asarray(self.center)
        return t

    def move(self, shape: Shape, frame: int) -> Shape:
        """``shape`` (one of this object's, as at frame 0) where it is at ``frame``; frame 0 returns it as is."""
        if frame == 0:
            return shape
        x, y, a = self.placement(frame)
        c, s = math.cos(a), math.sin(a)

        def at(px: float, py: float) -> tuple[float, float]:
            dx, dy = px - self.center[0], py - self.center[1]
            return x + c * dx - s * dy, y + s * dx + c * dy

        if isinstance(shape, Sphere):
            return dataclasses.replace(shape, center=(*at(shape.center[0], shape.center[1]), shape.center[2]),
                                       front=shape.front - a)
        if isinstance(shape, Box):
            return dataclasses.replace(shape, center=(*at(shape.center[0], shape.center[1]), shape.center[2]),
                                       yaw=shape.yaw + a)
        if isinstance(shape, Cylinder):
            return dataclasses.replace(shape, axis_xy=at(*shape.axis_xy), front=shape.front - a)
        raise TypeError(f"cannot move a {type(shape).__name__}")  # planes are never part of an object

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (what ``dataset.json["moving_objects"]["objects"]`` holds)."""
        return {"shapes": list(self.shapes), "label": self.label, "center": list(self.center),
                "radius": self.radius, "velocity_m_per_frame": list(self.velocity), "spin_rad_per_frame": self.spin,
                "bounds": None if self.bounds is None else list(self.bounds)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ObjectMotion:
        """Inverse of :meth:`to_dict`."""
        b = d.get("bounds")
        return cls(tuple(int(i) for i in d["shapes"]), str(d["label"]),
                   (float(d["center"][0]), float(d["center"][1])), float(d["radius"]),
                   (float(d["velocity_m_per_frame"][0]), float(d["velocity_m_per_frame"][1])),
                   float(d["spin_rad_per_frame"]), None if b is None else (b[0], b[1], b[2], b[3]))


def _fold(v: float, lo: float, hi: float) -> float:
    """``v`` reflected into [lo, hi] (a point bouncing between two walls)."""
    span = hi - lo
    if span <= 0:
        return lo
    u = (v - lo) % (2 * span)
    return lo + (u if u <= span else 2 * span - u)


def moved_shapes(scene: Scene, motions: Sequence[ObjectMotion], frame: int) -> list[Shape]:
    """``scene.shapes`` at ``frame``: the moving objects' primitives moved, every other one unchanged."""
    shapes = list(scene.shapes)
    for m in motions:
        for i in m.shapes:
            shapes[i] = m.move(scene.shapes[i], frame)
    return shapes


def _aabb(shape: Shape) -> np.ndarray:
    """(2, 3) world bounding box [min, max] of a bounded primitive, in metres."""
    if isinstance(shape, Sphere):
        centre, r = np.asarray(shape.center), shape.radius
        return np.stack([centre - r, centre + r])
    if isinstance(shape, Cylinder):
        (x, y), r = shape.axis_xy, shape.radius
        return np.array([[x - r, y - r, shape.z0], [x + r, y + r, shape.z1]])
    if isinstance(shape, Box):
        co, si = abs(math.cos(shape.yaw)), abs(math.sin(shape.yaw))
        hx, hy, hz = shape.half
        ext = np.array([co * hx + si * hy, si * hx + co * hy, hz])
        return np.stack([np.asarray(shape.center) - ext, np.asarray(shape.center) + ext])
    raise TypeError(f"{type(shape).__name__} has no bounding box")


def _overlap(a: np.ndarray, b: np.ndarray, axes: slice = slice(0, 3)) -> bool:
    return bool(np.all(a[0, axes] <= b[1, axes] + TOUCH) and np.all(b[0, axes] <= a[1, axes] + TOUCH))


def movable_objects(scene: Scene) -> list[tuple[int, ...]]:
    """The world's movable objects (see the module docstring), each as sorted shape indices, ordered by their
    first index. A scene without class labels has none."""
    if not scene.labels:
        return []
    atoms = [tuple(g) for g in scene.shadow_groups() if not any(isinstance(scene.shapes[i], Plane) for i in g)]
    boxes = {i: _aabb(scene.shapes[i]) for g in atoms for i in g}
    movable = [g for g in atoms if scene.labels[g[0]] in MOVABLE_CLASSES]
    fixed = [i for g in atoms if scene.labels[g[0]] not in MOVABLE_CLASSES | GROUND_CLASSES for i in g]
    parent = list(range(len(movable)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a in range(len(movable)):
        for b in range(a + 1, len(movable)):
            same = scene.labels[movable[a][0]] == scene.labels[movable[b][0]]
            if any(_overlap(boxes[i], boxes[j]) or (same and _overlap(boxes[i], boxes[j], slice(0, 2)))
                   for i in movable[a] for j in movable[b]):
                parent[root(a)] = root(b)
    clusters: dict[int, list[int]] = {}
    for k, g in enumerate(movable):
        clusters.setdefault(root(k), []).extend(g)
    out = []
    for members in clusters.values():
        if not any(_overlap(boxes[i], boxes[j]) for i in members for j in fixed):
            out.append(tuple(sorted(members)))
    return sorted(out)


def room_bounds(scene: Scene) -> tuple[float, float, float, float] | None:
    """(x0, x1, y0, y1) of a room's walls (planes labelled ``wall`` with normals along x and y), or None."""
    xs: list[float] = []
    ys: list[float] = []
    for shape, label in zip(scene.shapes, scene.labels):
        if label == "wall" and isinstance(shape, Plane):
            n = shape.normal
            if abs(abs(n[0]) - 1) < 1e-9:
                xs.append(shape.offset * n[0])
            elif abs(abs(n[1]) - 1) < 1e-9:
                ys.append(shape.offset * n[1])
    if len(xs) < 2 or len(ys) < 2:
        return None
    return min(xs), max(xs), min(ys), max(ys)


def _footprint(scene: Scene, shapes: tuple[int, ...]) -> tuple[tuple[float, float], float]:
    """Centre (x, y) of the objects' horizontal bounding box and the radius about it that holds every turn."""
    box = np.stack([_aabb(scene.shapes[i]) for i in shapes])
    cx = float(0.5 * (box[:, 0, 0].min() + box[:, 1, 0].max()))
    cy = float(0.5 * (box[:, 0, 1].min() + box[:, 1, 1].max()))
    radius = 0.0
    for i in shapes:
        s = scene.shapes[i]
        if isinstance(s, Sphere):
            r = math.hypot(s.center[0] - cx, s.center[1] - cy) + s.radius
        elif isinstance(s, Cylinder):
            r = math.hypot(s.axis_xy[0] - cx, s.axis_xy[1] - cy) + s.radius
        else:
            assert isinstance(s, Box)
            r = math.hypot(s.center[0] - cx, s.center[1] - cy) + math.hypot(s.half[0], s.half[1])
        radius = max(radius, r)
    return (cx, cy), radius


def _keeps_clear(scene: Scene, motion: ObjectMotion, cameras: Sequence[Camera]) -> bool:
    lights = [np.asarray(light.vector) for light in scene.lights if light.kind == "point"]
    for f, cam in enumerate(cameras):
        eye = np.asarray(cam.position)
        for i in motion.shapes:
            s = motion.move(scene.shapes[i], f)
            if s.distance(eye) < CLEARANCE or any(s.distance(p) < LIGHT_CLEARANCE for p in lights):
                return False
    return True


def plan_motions(scene: Scene, cameras: Sequence[Camera], count: int, rng: np.random.Generator,
                 speed: float = 0.03, spin: float = 0.02, name: str = "the world") -> list[ObjectMotion]:
    """Pick ``count`` of the scene's movable objects and draw each a trajectory that keeps clear of ``cameras``
    (frame f is seen from ``cameras[f]``).

    Objects are tried in a random order, those visible in the first frame first; each gets a uniform random heading, a speed uniform in
    [speed / 2, speed] metres per frame and a spin uniform in [-spin, spin] radians per frame.

    Raises:
        ValueError: ``count`` negative, a negative speed or spin (or both 0).
        TooFewObjects: fewer than ``count`` objects can move (``name`` names the world in the message).
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"moving_objects must be a non-negative integer, got {count!r}")
    if not (speed >= 0 and spin >= 0) or (count and speed == 0 and spin == 0):
        raise ValueError(f"object_speed and object_spin must be >= 0 and not both 0, got {speed} and {spin}")
    if count == 0:
        return []
    objects = movable_objects(scene)
    if count > len(objects):
        names = ", ".join(scene.labels[g[0]] for g in objects) or "none"
        raise TooFewObjects(count, f"{name} has only {len(objects)} movable object"
                                   f"{'' if len(objects) == 1 else 's'} ({names})")
    walls = room_bounds(scene)
    order = [objects[int(k)] for k in rng.permutation(len(objects))]
    _, shape_id = trace(cameras[0], scene.shapes)
    seen = [bool(np.isin(shape_id, g).any()) for g in order]
    chosen: list[ObjectMotion] = []
    for shapes in [g for g, s in zip(order, seen) if s] + [g for g, s in zip(order, seen) if not s]:
        if len(chosen) == count:
            break
        center, radius = _footprint(scene, shapes)
        bounds = None
        if walls is not None:
            bounds = (walls[0] + radius, walls[1] - radius, walls[2] + radius, walls[3] - radius)
            if not (bounds[0] <= center[0] <= bounds[1] and bounds[2] <= center[1] <= bounds[3]):
                continue  # does not fit between the walls at every turn
        for _ in range(TRIES):
            heading = float(rng.uniform(-math.pi, math.pi))
            v = speed * float(rng.uniform(0.5, 1.0))
            motion = ObjectMotion(shapes, scene.labels[shapes[0]], center, radius,
                                  (v * math.cos(heading), v * math.sin(heading)), float(rng.uniform(-spin, spin)),
                                  bounds)
            if _keeps_clear(scene, motion, cameras):
                chosen.append(motion)
                break
    if len(chosen) < count:
        raise TooFewObjects(count, f"only {len(chosen)} of the {len(objects)} movable objects of {name} can move "
                                   f"while keeping {CLEARANCE} m from the camera and inside the room")
    return chosen
