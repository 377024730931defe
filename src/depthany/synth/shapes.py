"""Analytic primitives: ray intersection, surface normals, surface (texture) coordinates and bounds.

Every primitive answers the same four questions, vectorised over many rays at once:

* ``intersect(o, d, tmin)``: ray parameter t of the nearest hit with t > tmin, ``inf`` on a miss.
  ``o``: (3,) origin shared by all rays, or (3, ...) per-ray origins; ``d``: (3, ...) directions, not
  necessarily unit (primary rays have a camera-frame z of 1 so that t is planar depth). float32.
* ``normal(p)``: (3, ...) unit outward normal at surface points ``p`` (3, ...).
* ``uv(p)``: (u, v) surface coordinates in metres at ``p``, so that textures keep their physical size and
  foreshorten like real surface markings.
* ``bounds()``: bounding sphere (centre (3,), radius) for culling, or None when unbounded.
* ``distance(point)``: signed distance from one point to the surface (world builders use it to keep
  the camera out of objects).

Formulas follow the numerically stable forms (closest-approach point instead of the raw quadratic) so
float32 stays accurate for small objects far away.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Vec3 = tuple[float, float, float]
_INF = np.float32(np.inf)


def _as_python(obj: Any) -> None:
    """Store every field of a frozen dataclass as Python floats/ints (tuples of floats for vectors).

    numpy scalars are "strong" types: a float64 centre would silently promote float32 ray arithmetic to
    float64, so the same scene built in code and rebuilt from JSON would render different bits.
    """
    for name, value in vars(obj).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (tuple, list, np.ndarray)):
            value = tuple(float(x) for x in value)
        elif name == "material":
            value = int(value)
        else:
            value = float(value)
        object.__setattr__(obj, name, value)


def _origin(o: np.ndarray) -> np.ndarray:
    return np.asarray(o, dtype=np.float32)


def _nearest(tnear: np.ndarray, tfar: np.ndarray, tmin: float) -> np.ndarray:
    """Entry point of the interval [tnear, tfar] if it lies beyond tmin, else the exit point, else inf."""
    hit = (tnear <= tfar) & (tfar > tmin)
    return np.where(hit, np.where(tnear > tmin, tnear, tfar), _INF)


def _wrap_angle(a: np.ndarray) -> np.ndarray:
    return (a + np.float32(math.pi)) % np.float32(2 * math.pi) - np.float32(math.pi)


@dataclass(frozen=True)
class Plane:
    """The infinite plane {x : normal . x = offset}. ``normal`` is unit length (normalised on creation)."""

    normal: Vec3
    offset: float
    material: int = 0

    def __post_init__(self) -> None:
        _as_python(self)
        n = np.asarray(self.normal, float)
        length = float(np.linalg.norm(n))
        if not length > 0:
            raise ValueError(f"plane normal must be non-zero, got {self.normal}")
        if abs(length - 1.0) > 1e-12:  # leave unit normals bit-exact, so JSON round trips are exact
            n = n / length
        object.__setattr__(self, "normal", tuple(float(x) for x in n))

    def intersect(self, o: np.ndarray, d: np.ndarray, tmin: float = 0.0) -> np.ndarray:
        o = _origin(o)
        nx, ny, nz = self.normal
        denom = nx * d[0] + ny * d[1] + nz * d[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self.offset - (nx * o[0] + ny * o[1] + nz * o[2])) / denom
        return np.where(t > tmin, t, _INF)

    def normal_at(self, p: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.normal, np.float32).reshape((3,) + (1,) * (p.ndim - 1)),
                               p.shape).copy()

    def basis(self) -> tuple[np.ndarray, np.ndarray]:
        """Two unit in-plane axes (e1, e2); on near-vertical planes e2 points up so rows stay level."""
        n = np.asarray(self.normal)
        if abs(n[2]) < 0.9:
            e2 = np.array([0.0, 0.0, 1.0]) - n[2] * n
            e2 /= np.linalg.norm(e2)
            e1 = np.cross(e2, n)
        else:
            e1 = np.array([1.0, 0.0, 0.0]) - n[0] * n
            e1 /= np.linalg.norm(e1)
            e2 = np.cross(n, e1)
        return e1, e2

    def uv(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e1, e2 = (e.astype(np.float32) for e in self.basis())
        return (e1[0] * p[0] + e1[1] * p[1] + e1[2] * p[2], e2[0] * p[0] + e2[1] * p[1] + e2[2] * p[2])

    def distance(self, point: np.ndarray) -> float:
        """Distance in metres from a point (3,) to the plane (planes have no inside)."""
        return abs(float(np.dot(self.normal, point)) - self.offset)

    def bounds(self) -> tuple[np.ndarray, float] | None:
        return None


@dataclass(frozen=True)
class Sphere:
    """A sphere. ``front``: azimuth (radians, world xy) of the texture's u = 0 line; its seam is opposite."""

    center: Vec3
    radius: float
    material: int = 0
    front: float = 0.0

    def __post_init__(self) -> None:
        _as_python(self)
        if not self.radius > 0:
            raise ValueError(f"sphere radius must be positive, got {self.radius}")

    def intersect(self, o: np.ndarray, d: np.ndarray, tmin: float = 0.0) -> np.ndarray:
        o = _origin(o)
        wx, wy, wz = self.center[0] - o[0], self.center[1] - o[1], self.center[2] - o[2]
        a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
        b = (wx * d[0] + wy * d[1] + wz * d[2]) / a  # t of the point closest to the centre
        qx, qy, qz = wx - b * d[0], wy - b * d[1], wz - b * d[2]
        h2 = self.radius * self.radius - (qx * qx + qy * qy + qz * qz)
        with np.errstate(invalid="ignore"):
            s = np.sqrt(h2 / a)  # NaN on a miss; NaN fails every comparison in _nearest
        return _nearest(b - s, b + s, tmin)

    def normal_at(self, p: np.ndarray) -> np.ndarray:
        c = np.asarray(self.center, np.float32).reshape((3,) + (1,) * (p.ndim - 1))
        return (p - c) / np.float32(self.radius)

    def uv(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = self.normal_at(p)
        lon = _wrap_angle(np.arctan2(q[0], q[1]) - np.float32(self.front))
        lat = np.arcsin(np.clip(q[2], -1, 1))
        return lon * np.float32(self.radius), lat * np.float32(self.radius)

    def distance(self, point: np.ndarray) -> float:
        """Signed distance in metres from a point (3,) to the surface; negative inside."""
        return float(np.linalg.norm(np.asarray(point, float) - self.center)) - self.radius

    def bounds(self) -> tuple[np.ndarray, float] | None:
        return np.asarray(self.center, float), float(self.radius)


@dataclass(frozen=True)
class Box:
    """A box resting in any position, rotated by ``yaw`` (radians) about the vertical axis.

    Local axes: x = (cos yaw, sin yaw, 0), y = (-sin yaw, cos yaw, 0), z up; ``half`` = half extents
    along them in metres.
    """

    center: Vec3
    half: Vec3
    yaw: float = 0.0
    material: int = 0

    def __post_init__(self) -> None:
        _as_python(self)
        if not min(self.half) > 0:
            raise ValueError(f"box half extents must be positive, got {self.half}")

    def _local(self, v: np.ndarray, point: bool) -> tuple[Any, Any, Any]:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        x, y, z = v[0], v[1], v[2]
        if point:
            x, y, z = x - self.center[0], y - self.center[1], z - self.center[2]
        return c * x + s * y, -s * x + c * y, z

    def intersect(self, o: np.ndarray, d: np.ndarray, tmin: float = 0.0) -> np.ndarray:
        ol = self._local(_origin(o), True)
        dl = self._local(d, False)
        los, his = [], []
        with np.errstate(divide="ignore", invalid="ignore"):
            for k in range(3):  # slab test in the box frame
                inv = np.float32(1) / dl[k]
                t1 = (-self.half[k] - ol[k]) * inv
                t2 = (self.half[k] - ol[k]) * inv
                los.append(np.minimum(t1, t2))
                his.append(np.maximum(t1, t2))
        tnear = np.maximum(np.maximum(los[0], los[1]), los[2])
        tfar = np.minimum(np.minimum(his[0], his[1]), his[2])
        return _nearest(tnear, tfar, tmin)

    def _face(self, p: np.ndarray) -> tuple[tuple[Any, Any, Any], np.ndarray]:
        pl = self._local(p, True)
        gaps = np.stack([np.abs(self.half[k] - np.abs(pl[k])) for k in range(3)])
        return pl, np.argmin(gaps, axis=0)

    def normal_at(self, p: np.ndarray) -> np.ndarray:
        pl, face = self._face(p)
        c, s = np.float32(math.cos(self.yaw)), np.float32(math.sin(self.yaw))
        sign = [np.where(pl[k] >= 0, np.float32(1), np.float32(-1)) for k in range(3)]
        lx = np.where(face == 0, sign[0], np.float32(0))
        ly = np.where(face == 1, sign[1], np.float32(0))
        lz = np.where(face == 2, sign[2], np.float32(0))
        return np.stack([c * lx - s * ly, s * lx + c * ly, lz]).astype(np.float32)

    def uv(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pl, face = self._face(p)
        hx, hy, hz = self.half
        x, y, z = pl[0] + np.float32(hx), pl[1] + np.float32(hy), pl[2] + np.float32(hz)
        # Side faces: u runs along the face, v up from the bottom edge; top/bottom: the local xy.
        u = np.where(face == 0, y, x)
        v = np.where(face == 2, y, z)
        return u.astype(np.float32), v.astype(np.float32)

    def distance(self, point: np.ndarray) -> float:
        """Signed distance in metres from a point (3,) to the surface; negative inside."""
        q = np.abs(np.array(self._local(np.asarray(point, float), True))) - np.asarray(self.half)
        return float(np.linalg.norm(np.maximum(q, 0)) + min(q.max(), 0.0))

    def bounds(self) -> tuple[np.ndarray, float] | None:
        return np.asarray(self.center, float), float(np.linalg.norm(self.half))


@dataclass(frozen=True)
class Cylinder:
    """A capped cylinder with a vertical axis at (x, y) = ``axis_xy``, from height ``z0`` to ``z1``."""

    axis_xy: tuple[float, float]
    z0: float
    z1: float
    radius: float
    material: int = 0
    front: float = 0.0

    def __post_init__(self) -> None:
        _as_python(self)
        if not self.radius > 0:
            raise ValueError(f"cylinder radius must be positive, got {self.radius}")
        if not self.z1 > self.z0:
            raise ValueError(f"cylinder needs z1 > z0, got z0={self.z0}, z1={self.z1}")

    def intersect(self, o: np.ndarray, d: np.ndarray, tmin: float = 0.0) -> np.ndarray:
        o = _origin(o)
        wx, wy = self.axis_xy[0] - o[0], self.axis_xy[1] - o[1]
        a = d[0] * d[0] + d[1] * d[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            b = (wx * d[0] + wy * d[1]) / a
            qx, qy = wx - b * d[0], wy - b * d[1]
            s = np.sqrt((self.radius * self.radius - (qx * qx + qy * qy)) / a)
            ts0, ts1 = b - s, b + s
            if np.any(a == 0):  # vertical rays: inside the radius they never cross the side wall
                shape = np.broadcast(wx, a).shape
                inside = np.broadcast_to(wx * wx + wy * wy <= self.radius * self.radius, shape)
                vertical = np.broadcast_to(a == 0, shape)
                ts0 = np.where(vertical, np.where(inside, -_INF, _INF), ts0)
                ts1 = np.where(vertical, np.where(inside, _INF, -_INF), ts1)
            inv = np.float32(1) / d[2]
            t1, t2 = (self.z0 - o[2]) * inv, (self.z1 - o[2]) * inv
        return _nearest(np.maximum(ts0, np.minimum(t1, t2)), np.minimum(ts1, np.maximum(t1, t2)), tmin)

    def _on_cap(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rx, ry = p[0] - np.float32(self.axis_xy[0]), p[1] - np.float32(self.axis_xy[1])
        rho = np.sqrt(rx * rx + ry * ry)
        dz = np.minimum(np.abs(p[2] - np.float32(self.z0)), np.abs(p[2] - np.float32(self.z1)))
        return dz < np.abs(rho - np.float32(self.radius)), rx, ry

    def normal_at(self, p: np.ndarray) -> np.ndarray:
        cap, rx, ry = self._on_cap(p)
        mid = np.float32(0.5 * (self.z0 + self.z1))
        r = np.float32(self.radius)
        nz = np.where(p[2] > mid, np.float32(1), np.float32(-1))
        return np.stack([np.where(cap, 0, rx / r), np.where(cap, 0, ry / r), np.where(cap, nz, 0)]
                        ).astype(np.float32)

    def uv(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cap, rx, ry = self._on_cap(p)
        ang = _wrap_angle(np.arctan2(rx, ry) - np.float32(self.front))
        u = np.where(cap, rx, ang * np.float32(self.radius))
        v = np.where(cap, ry, p[2] - np.float32(self.z0))
        return u.astype(np.float32), v.astype(np.float32)

    def distance(self, point: np.ndarray) -> float:
        """Signed distance in metres from a point (3,) to the surface; negative inside."""
        p = np.asarray(point, float)
        radial = math.hypot(p[0] - self.axis_xy[0], p[1] - self.axis_xy[1]) - self.radius
        axial = abs(p[2] - 0.5 * (self.z0 + self.z1)) - 0.5 * (self.z1 - self.z0)
        return math.hypot(max(radial, 0.0), max(axial, 0.0)) + min(max(radial, axial), 0.0)

    def bounds(self) -> tuple[np.ndarray, float] | None:
        hz = 0.5 * (self.z1 - self.z0)
        c = np.array([self.axis_xy[0], self.axis_xy[1], self.z0 + hz])
        return c, math.hypot(hz, self.radius)


Shape = Plane | Sphere | Box | Cylinder
SHAPES: dict[str, type] = {"plane": Plane, "sphere": Sphere, "box": Box, "cylinder": Cylinder}
_NAMES = {cls: name for name, cls in SHAPES.items()}


def shape_to_dict(shape: Shape) -> dict[str, Any]:
    """JSON-ready description: ``{"type": "sphere", "center": [...], "radius": ..., "material": ...}``."""
    d: dict[str, Any] = {"type": _NAMES[type(shape)]}
    d.update({k: list(v) if isinstance(v, tuple) else v for k, v in asdict(shape).items()})
    return d


def shape_from_dict(d: dict[str, Any]) -> Shape:
    """Inverse of :func:`shape_to_dict`. Raises ValueError naming an unknown ``type``."""
    kind = d.get("type")
    if kind not in SHAPES:
        raise ValueError(f"unknown shape type {kind!r}; expected one of {sorted(SHAPES)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k != "type"}
    return SHAPES[kind](**kwargs)  # type: ignore[no-any-return]
