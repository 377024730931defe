"""Pinhole camera: intrinsics, pose, ray generation, projection and unprojection.

Conventions (the same as ``docs/rgbd_format.md``):

* World frame: metres, z up; the ground of outdoor scenes and the floor of rooms is z = 0.
* Camera frame: OpenCV (x right, y down, z forward along the optical axis).
* Pixel centres sit at integer coordinates: pixel (u, v) covers [u - 0.5, u + 0.5] x [v - 0.5, v + 0.5]
  and its ray is ((u - cx) / fx, (v - cy) / fy, 1) in the camera frame.

Rays are generated with a camera-frame z component of exactly 1, so the ray parameter ``t`` of a hit *is*
its planar depth: the renderer never converts between ray length and depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Camera:
    """A perspective pinhole camera.

    Attributes:
        width, height: image size in pixels.
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels (pixel-centre convention; the image centre is ((W-1)/2, (H-1)/2)).
        position: camera centre in world metres (x, y, z), z up.
        yaw: heading in radians; 0 looks along world +y, positive turns towards +x (clockwise seen from above).
        pitch: elevation of the optical axis in radians; positive looks up.
        roll: rotation about the optical axis in radians; positive turns the image content anticlockwise.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    _rotation: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Python numbers only: numpy float64 scalars would promote the float32 ray arithmetic.
        for name in ("fx", "fy", "cx", "cy", "yaw", "pitch", "roll"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "position", tuple(float(x) for x in self.position))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        if self.width < 1 or self.height < 1:
            raise ValueError(f"camera size must be positive, got width={self.width}, height={self.height}")
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")
        rot = _rotation(self.yaw, self.pitch, self.roll)
        rot.flags.writeable = False
        object.__setattr__(self, "_rotation", rot)

    @property
    def intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in pixels."""
        return (self.fx, self.fy, self.cx, self.cy)

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) float64 world-from-camera rotation (read-only); columns are the camera x, y, z axes."""
        return self._rotation

    def ray_directions(self, dtype: type = np.float32) -> np.ndarray:
        """(3, H, W) world-frame ray directions through the pixel centres, *not* unit length.

        Each direction has a camera-frame z component of 1, so a hit at ray parameter t has planar depth t.
        """
        u = (np.arange(self.width, dtype=np.float64) - self.cx) / self.fx
        v = (np.arange(self.height, dtype=np.float64) - self.cy) / self.fy
        cam = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.ones((1, 1))), axis=0)  # (3, H, W)
        return np.einsum("ij,jhw->ihw", self.rotation, cam).astype(dtype)

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """(3, ...) world points in metres -> (3, ...) camera-frame points (z = planar depth)."""
        p = np.asarray(points, dtype=np.float64)
        c = np.asarray(self.position, dtype=np.float64).reshape((3,) + (1,) * (p.ndim - 1))
        return np.einsum("ji,j...->i...", self.rotation, p - c)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(3, ...) world points -> (u, v, z): pixel coordinates and planar depth in metres, each (...)."""
        pc = self.world_to_camera(points)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.fx * pc[0] / pc[2] + self.cx, self.fy * pc[1] / pc[2] + self.cy, pc[2]

    def unproject(self, u: np.ndarray, v: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Pixel coordinates (...) and planar depth (...) in metres -> (3, ...) float64 world points."""
        z = np.asarray(depth, dtype=np.float64)
        cam = np.stack([(np.asarray(u) - self.cx) / self.fx * z, (np.asarray(v) - self.cy) / self.fy * z, z])
        c = np.asarray(self.position, dtype=np.float64).reshape((3,) + (1,) * z.ndim)
        return np.einsum("ij,j...->i...", self.rotation, cam) + c

    def screen_rect(self, center: np.ndarray, radius: float) -> tuple[int, int, int, int] | None:
        """Conservative pixel rectangle (v0, v1, u0, u1), end-exclusive, covering a sphere's image.

        Returns None when the sphere cannot be seen (behind the camera or off-image), and the whole image
        when it straddles the camera plane. The cube around the sphere is projected: its image contains
        the sphere's, so no visible pixel is ever culled.
        """
        offsets = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float).T
        corners = np.asarray(center, float).reshape(3, 1) + radius * offsets
        pc = self.world_to_camera(corners)
        if np.all(pc[2] <= 0):
            return None
        if np.any(pc[2] <= 1e-6):
            return (0, self.height, 0, self.width)
        u = self.fx * pc[0] / pc[2] + self.cx
        v = self.fy * pc[1] / pc[2] + self.cy
        u0, u1 = max(0, math.floor(u.min())), min(self.width, math.ceil(u.max()) + 1)
        v0, v1 = max(0, math.floor(v.min())), min(self.height, math.ceil(v.max()) + 1)
        if u0 >= u1 or v0 >= v1:
            return None
        return (v0, v1, u0, u1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (angles in radians, lengths in metres, intrinsics in pixels)."""
        return {"width": self.width, "height": self.height, "fx": self.fx, "fy": self.fy, "cx": self.cx,
                "cy": self.cy, "position": list(self.position), "yaw": self.yaw, "pitch": self.pitch,
                "roll": self.roll, "world_from_camera": self.rotation.round(9).tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Camera:
        """Inverse of :meth:`to_dict` (the redundant ``world_from_camera`` entry is ignored)."""
        return cls(int(d["width"]), int(d["height"]), float(d["fx"]), float(d["fy"]), float(d["cx"]),
                   float(d["cy"]), tuple(float(x) for x in d["position"]),  # type: ignore[arg-type]
                   float(d["yaw"]), float(d["pitch"]), float(d["roll"]))


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy_, sy_ = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    forward = np.array([sy_ * cp, cy_ * cp, sp])
    right0 = np.array([cy_, -sy_, 0.0])
    down0 = np.cross(forward, right0)
    cr, sr = math.cos(roll), math.sin(roll)
    right = cr * right0 + sr * down0
    down = -sr * right0 + cr * down0
    return np.stack([right, down, forward], axis=1)


def focal_from_fov(fov: float, size: int) -> float:
    """Focal length in pixels for a field of view ``fov`` (radians) spanning ``size`` pixels."""
    if not 0 < fov < math.pi:
        raise ValueError(f"fov must be in (0, pi) radians, got {fov}")
    return size / 2.0 / math.tan(fov / 2.0)


def sample_intrinsics(rng: np.random.Generator, width: int, height: int,
                      fov_range: tuple[float, float]) -> tuple[float, float, float, float]:
    """Random (fx, fy, cx, cy) in pixels.

    The horizontal field of view is uniform in ``fov_range`` (radians); pixels are square to within 1 %;
    the principal point is the image centre ((W-1)/2, (H-1)/2) moved by up to ~3 % of the image size.
    """
    lo, hi = fov_range
    if not 0 < lo <= hi < math.pi:
        raise ValueError(f"fov_range must satisfy 0 < lo <= hi < pi radians, got {fov_range}")
    fx = focal_from_fov(float(rng.uniform(lo, hi)), width)
    fy = fx * float(np.clip(rng.normal(1.0, 0.005), 0.99, 1.01))
    cx = (width - 1) / 2 + float(np.clip(rng.normal(0, 0.015), -0.03, 0.03)) * width
    cy = (height - 1) / 2 + float(np.clip(rng.normal(0, 0.015), -0.03, 0.03)) * height
    return fx, fy, cx, cy
