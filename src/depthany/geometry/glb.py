"""A coloured point cloud with its cameras as a binary glTF 2.0 file (``.glb``), written with numpy alone.

The scene follows the official Depth Anything 3 GLB export (ByteDance-Seed/Depth-Anything-3 @ 2c21ea8,
``utils/export/glb.py``): world points are moved into glTF's axes (x right, y up, z towards the viewer) as seen
from the first view's camera and centred on their median, ``A = T_centre @ diag(1, -1, -1, 1) @ w2c_0``; each
camera is drawn as a wire pyramid (centre to the four image corners on a plane at 3 % of the scene's size, the
5th..95th-percentile diagonal, and the rectangle between them) in its own colour. In addition each camera is a glTF
``perspective`` camera on a node at its pose, so viewers can look through it.

Layout: one buffer; mesh 0 holds the points (mode ``POINTS``, ``POSITION`` float32 and ``COLOR_0`` as normalised
unsigned bytes RGBA), mesh 1 the wire pyramids (mode ``LINES``, per-vertex colours); node 0 the points, node 1 the
pyramids, nodes ``2 ..`` the cameras (named after the views).
"""

from __future__ import annotations

import colorsys
import json
import math
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path
from .views import homogeneous

CAMERA_SIZE = 0.03  # pyramid depth, as a fraction of the scene size (official camera_size)
_GLB_MAGIC, _JSON, _BIN = 0x46546C67, 0x4E4F534A, 0x004E4942
_FLOAT, _UBYTE = 5126, 5121
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])  # flip y and z: OpenCV camera axes <-> glTF axes


def gltf_alignment(first_extrinsics: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(4, 4) float64 ``A`` taking world points into the scene's glTF frame (first camera's view, y up, centred
    on the median of the transformed points)."""
    a = _CV_TO_GL @ homogeneous(first_extrinsics)
    if len(points):
        centre = np.median(transform(points, a), axis=0)
        a = np.vstack([np.hstack([np.eye(3), -centre[:, None]]), [0, 0, 0, 1]]) @ a
    return a


def transform(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(M, 3) points through the (4, 4) transform ``m`` (float64)."""
    p = np.asarray(points, dtype=np.float64)
    return p @ m[:3, :3].T + m[:3, 3]


def scene_size(points: np.ndarray, fallback: float = 1.0) -> float:
    """Length of the diagonal between the 5th and 95th percentiles of the points (``fallback`` if degenerate)."""
    if len(points) < 2:
        return fallback
    d = float(np.linalg.norm(np.percentile(points, 95, axis=0) - np.percentile(points, 5, axis=0)))
    return d if math.isfinite(d) and d > 0 else fallback


def frustum_segments(k: np.ndarray, extrinsics: np.ndarray, width: int, height: int, size: float) -> np.ndarray:
    """(8, 2, 3) world-space segments of a camera's wire pyramid: centre to the corners of the image plane at depth
    ``size`` (corner pixels (0, 0), (W-1, 0), (W-1, H-1), (0, H-1)), then the plane's rectangle."""
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [width - 1, height - 1, 1], [0, height - 1, 1]], dtype=float)
    rays = corners @ np.linalg.inv(np.asarray(k, dtype=np.float64)).T
    plane = rays / rays[:, 2:3] * size
    c2w = np.linalg.inv(homogeneous(extrinsics))
    centre = c2w[:3, 3]
    world = transform(plane, c2w)
    segs = [(centre, world[i]) for i in range(4)] + [(world[i], world[(i + 1) % 4]) for i in range(4)]
    return np.array(segs)


def view_colour(i: int, n: int) -> tuple[int, int, int]:
    """A distinct colour for view ``i`` of ``n`` (hue (i + 0.5) / n, saturation 0.85, value 0.95)."""
    r, g, b = colorsys.hsv_to_rgb((i + 0.5) / max(n, 1), 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


class _Builder:
    def __init__(self) -> None:
        self.blob = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def add(self, data: np.ndarray, component: int, kind: str, normalized: bool = False, bounds: bool = False,
            target: int = 34962) -> int:
        raw = np.ascontiguousarray(data).tobytes()
        while len(self.blob) % 4:
            self.blob.append(0)
        self.views.append({"buffer": 0, "byteOffset": len(self.blob), "byteLength": len(raw), "target": target})
        self.blob.extend(raw)
        acc: dict = {"bufferView": len(self.views) - 1, "componentType": component, "count": int(data.shape[0]),
                     "type": kind}
        if normalized:
            acc["normalized"] = True
        if bounds and data.shape[0]:
            acc["min"] = [float(x) for x in data.min(axis=0)]
            acc["max"] = [float(x) for x in data.max(axis=0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1


def write_glb(path: str | Path, xyz: np.ndarray, rgb: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray,
              image_size: tuple[int, int], names: Sequence[str] | None = None,
              camera_size: float = CAMERA_SIZE) -> Path:
    """Write world points and the cameras that saw them as a ``.glb`` scene (see the module docstring).

    Args:
        path: output ``.glb``.
        xyz: (M, 3) world points (the frame of ``extrinsics``); ``rgb``: (M, 3) uint8 colours.
        intrinsics: (N, 3, 3) pixel intrinsics of ``image_size`` (H, W) images.
        extrinsics: (N, 3, 4) world-to-camera transforms.
        names: N camera names (default ``view<i>``).
        camera_size: pyramid depth as a fraction of the scene size.

    Returns:
        ``path``. The alignment ``A`` is stored in the scene's ``extras`` (``world_to_scene``, row-major).
    """
    k, ext = np.asarray(intrinsics, dtype=np.float64), np.asarray(extrinsics, dtype=np.float64)
    n = k.shape[0]
    names = list(names) if names is not None else [f"view{i}" for i in range(n)]
    pts = np.asarray(xyz, dtype=np.float64)
    a = gltf_alignment(ext[0], pts)
    scene_pts = transform(pts, a).astype(np.float32)
    colours = np.concatenate([np.asarray(rgb, dtype=np.uint8), np.full((len(pts), 1), 255, np.uint8)], axis=1)
    h, w = image_size
    size = scene_size(scene_pts) * camera_size
    lines, line_cols = [], []
    for i in range(n):
        segs = transform(frustum_segments(k[i], ext[i], w, h, size).reshape(-1, 3), a)
        lines.append(segs)
        line_cols.append(np.tile([*view_colour(i, n), 255], (segs.shape[0], 1)))

    b = _Builder()
    meshes = []
    if len(scene_pts):
        pos, col = b.add(scene_pts, _FLOAT, "VEC3", bounds=True), b.add(colours, _UBYTE, "VEC4", normalized=True)
        meshes.append({"name": "points", "primitives": [{"attributes": {"POSITION": pos, "COLOR_0": col}, "mode": 0}]})
    lpos = b.add(np.concatenate(lines).astype(np.float32), _FLOAT, "VEC3", bounds=True)
    lcol = b.add(np.concatenate(line_cols).astype(np.uint8), _UBYTE, "VEC4", normalized=True)
    meshes.append({"name": "cameras", "primitives": [{"attributes": {"POSITION": lpos, "COLOR_0": lcol}, "mode": 1}]})
    nodes: list[dict] = [{"name": m["name"], "mesh": j} for j, m in enumerate(meshes)]
    cameras = []
    for i in range(n):
        pose = a @ np.linalg.inv(homogeneous(ext[i])) @ _CV_TO_GL  # glTF camera (looks down -z, y up) in the scene
        cameras.append({"type": "perspective", "name": names[i], "perspective": {
            "yfov": 2 * math.atan(h / (2 * k[i, 1, 1])), "aspectRatio": w / h, "znear": max(size * 0.01, 1e-6)}})
        nodes.append({"name": names[i], "camera": i, "matrix": [float(x) for x in pose.T.ravel()]})
    doc = {
        "asset": {"version": "2.0", "generator": "depthany"},
        "scene": 0,
        "scenes": [{"nodes": list(range(len(nodes))), "extras": {"world_to_scene": a.tolist()}}],
        "nodes": nodes, "meshes": meshes, "cameras": cameras, "accessors": b.accessors, "bufferViews": b.views,
        "buffers": [{"byteLength": len(b.blob)}],
    }
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    blob = bytes(b.blob) + b"\0" * (-len(b.blob) % 4)
    total = 12 + 8 + len(js) + 8 + len(blob)
    out = Path(path)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        f.write(struct.pack("<III", _GLB_MAGIC, 2, total))
        f.write(struct.pack("<II", len(js), _JSON) + js)
        f.write(struct.pack("<II", len(blob), _BIN) + blob)
    return out
