"""A COLMAP reconstruction in COLMAP's text format (``cameras.txt``, ``images.txt``, ``points3D.txt``).

The files follow COLMAP's documented text layout, which COLMAP's ``model_converter``, pycolmap and most
3D-Gaussian-splatting loaders read:

``cameras.txt``
    ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]``; here ``PINHOLE`` with ``fx fy cx cy``.
``images.txt``
    two lines per image: ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` (the world-to-camera rotation as a unit
    quaternion, scalar first, and translation: ``x_cam = R x_world + t``), then ``X Y POINT3D_ID`` triples.
``points3D.txt``
    ``POINT3D_ID X Y Z R G B ERROR TRACK[]`` with ``IMAGE_ID POINT2D_IDX`` pairs.

COLMAP puts pixel centres at half-integers (the image spans ``[0, W] x [0, H]``); depthany's convention puts
them at integers, so a pixel ``(u, v)`` is written as ``(u + 0.5, v + 0.5)`` and a principal point ``cx`` as
``cx + 0.5`` (:func:`to_colmap_camera`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path


def rotation_to_quaternion(r: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix -> unit quaternion ``(w, x, y, z)`` with ``w >= 0`` (Shepperd's method, stable for
    every rotation). The matrix is first projected onto the nearest rotation (SVD), so a slightly non-orthogonal
    float32 matrix gives the quaternion of the rotation it approximates."""
    u, _, vt = np.linalg.svd(np.asarray(r, dtype=np.float64))
    m = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    tr = np.trace(m)
    diag = np.diag(m)
    if tr >= diag.max():
        w = np.sqrt(1.0 + tr) / 2
        q = np.array([w, (m[2, 1] - m[1, 2]) / (4 * w), (m[0, 2] - m[2, 0]) / (4 * w), (m[1, 0] - m[0, 1]) / (4 * w)])
    else:
        i = int(np.argmax(diag))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k]) * 2  # 4 * q_i
        q = np.zeros(4)
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = s / 4
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


@dataclass(frozen=True)
class ColmapCamera:
    """A PINHOLE camera: ``fx fy cx cy`` in COLMAP pixel coordinates of a ``width`` x ``height`` image."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float


def to_colmap_camera(k: np.ndarray, width: int, height: int) -> ColmapCamera:
    """depthany intrinsics (pixel centres at integers) of a ``width`` x ``height`` image -> a COLMAP PINHOLE."""
    k = np.asarray(k, dtype=np.float64)
    return ColmapCamera(int(width), int(height), float(k[0, 0]), float(k[1, 1]), float(k[0, 2]) + 0.5,
                        float(k[1, 2]) + 0.5)


def write_colmap_text(folder: str | Path, cameras: Sequence[ColmapCamera], extrinsics: np.ndarray,
                      names: Sequence[str], xyz: np.ndarray, rgb: np.ndarray, view: np.ndarray,
                      point2d: np.ndarray) -> list[Path]:
    """Write a reconstruction with one camera per image and one observation per 3D point.

    Args:
        folder: created if needed; gets ``cameras.txt``, ``images.txt``, ``points3D.txt``.
        cameras: N cameras (camera ``i + 1`` belongs to image ``i + 1``).
        extrinsics: (N, 3, 4) world-to-camera ``[R | t]``.
        names: N image file names.
        xyz: (M, 3) world points; ``rgb``: (M, 3) uint8 colours.
        view: (M,) index (0-based) of the image that observes each point.
        point2d: (M, 2) where, in COLMAP pixel coordinates of that image.

    Returns:
        the three paths.
    """
    n = len(cameras)
    ext = np.asarray(extrinsics, dtype=np.float64)
    if ext.shape[0] != n or len(names) != n:
        raise ValueError(f"need one camera, pose and name per image, got {n}, {ext.shape[0]}, {len(names)}")
    xyz, rgb = np.asarray(xyz, dtype=np.float64), np.asarray(rgb, dtype=np.uint8)
    view, point2d = np.asarray(view, dtype=np.int64), np.asarray(point2d, dtype=np.float64)
    m = xyz.shape[0]
    if rgb.shape != (m, 3) or view.shape != (m,) or point2d.shape != (m, 2):
        raise ValueError("xyz, rgb, view and point2d must describe the same points")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    order = np.argsort(view, kind="stable")  # the observations of each image, in point order
    starts = np.searchsorted(view[order], np.arange(n + 1))
    point_ids = np.arange(1, m + 1)
    idx_in_image = np.empty(m, dtype=np.int64)
    for i in range(n):
        members = order[starts[i]:starts[i + 1]]
        idx_in_image[members] = np.arange(members.size)

    paths = [out / "cameras.txt", out / "images.txt", out / "points3D.txt"]
    with atomic_path(paths[0]) as tmp, open(tmp, "w") as f:
        f.write("# Camera list with one line of data per camera:\n"
                "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
                f"# Number of cameras: {n}\n")
        for i, c in enumerate(cameras):
            f.write(f"{i + 1} PINHOLE {c.width} {c.height} {c.fx!r} {c.fy!r} {c.cx!r} {c.cy!r}\n")
    with atomic_path(paths[1]) as tmp, open(tmp, "w") as f:
        f.write("# Image list with two lines of data per image:\n"
                "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n"
                "#   POINTS2D[] as (X, Y, POINT3D_ID)\n"
                f"# Number of images: {n}, mean observations per image: {m / max(n, 1):.1f}\n")
        for i in range(n):
            q = rotation_to_quaternion(ext[i, :3, :3])
            t = ext[i, :3, 3]
            f.write(f"{i + 1} {' '.join(repr(float(x)) for x in q)} {' '.join(repr(float(x)) for x in t)} {i + 1} "
                    f"{names[i]}\n")
            members = order[starts[i]:starts[i + 1]]
            obs = np.column_stack([point2d[members], point_ids[members]]).ravel()
            f.write(" ".join(np.char.mod(["%.6f", "%.6f", "%d"] * members.size, obs)) + "\n")
    with atomic_path(paths[2]) as tmp, open(tmp, "w") as f:
        f.write("# 3D point list with one line of data per point:\n"
                "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n"
                f"# Number of points: {m}, mean track length: {1.0 if m else 0.0}\n")
        if m:
            table = np.column_stack([point_ids, xyz, rgb, np.zeros(m), view + 1, idx_in_image])
            np.savetxt(f, table, fmt=["%d", "%.9g", "%.9g", "%.9g", "%d", "%d", "%d", "%d", "%d", "%d"])
    return paths
