"""Synthetic video sequences: a camera moving through one synthetic world, with exact per-frame depth, intrinsics
and camera-to-world poses (what video evaluation and temporal training need).

    >>> from depthany.synth.sequence import write_sequence
    >>> write_sequence("seqs/walk0", seed=0, index=0, frames=32)                 # doctest: +SKIP

The written folder is a depthany RGB-D folder (:mod:`depthany.data.rgbd`, depth as ``.npy`` float32 metres)
whose ``meta/<stem>.json`` carry ``"intrinsics": [fx, fy, cx, cy]`` and ``"pose"`` (4x4 camera-to-world: a
camera-frame point ``p`` (OpenCV axes, metres) is at ``R @ p + t`` in the world), the layout
``depthany eval --dataset rgbd-video`` reads. The camera walks forward along its optical axis by ``speed`` metres
per frame and turns by ``turn`` radians per frame (yaw); the world is static. Frames are rendered one at a time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..data.rgbd import RGBDWriter
from .camera import Camera
from .render import Rendering, render
from .worlds import GENERATOR_VERSION, WorldConfig, make_scene


def camera_pose(camera: Camera) -> np.ndarray:
    """(4, 4) float64 camera-to-world pose of ``camera``."""
    pose = np.eye(4)
    pose[:3, :3] = camera.rotation
    pose[:3, 3] = camera.position
    return pose


def camera_path(start: Camera, frames: int, speed: float = 0.03, turn: float = 0.01) -> list[Camera]:
    """``frames`` cameras from ``start``: each ``speed`` metres further along the previous optical axis (kept at
    the start height) and turned by ``turn`` radians of yaw."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    cams = [start]
    for _ in range(frames - 1):
        c = cams[-1]
        axis = c.rotation[:, 2].copy()
        axis[2] = 0.0  # walk on the level
        norm = math.hypot(axis[0], axis[1])
        step = axis / norm * speed if norm > 0 else np.zeros(3)
        position = (c.position[0] + step[0], c.position[1] + step[1], c.position[2])
        cams.append(dataclasses.replace(c, position=position, yaw=c.yaw + turn))
    return cams


def render_sequence(seed: int, index: int, config: WorldConfig | None = None, frames: int = 32,
                    speed: float = 0.03, turn: float = 0.01) -> Iterator[tuple[Rendering, Camera]]:
    """Render the world of sample ``index`` (run ``seed``) along :func:`camera_path`, one frame at a time."""
    scene = make_scene(seed, index, config or WorldConfig())
    for cam in camera_path(scene.camera, frames, speed, turn):
        yield render(dataclasses.replace(scene, camera=cam)), cam


def write_sequence(out: str | Path, seed: int = 0, index: int = 0, config: WorldConfig | None = None,
                   frames: int = 32, speed: float = 0.03, turn: float = 0.01) -> Path:
    """Write one sequence as an RGB-D folder (stems ``000000`` ...) and return its path."""
    out = Path(out)
    info = {"generator": "depthany.synth.sequence", "generator_version": GENERATOR_VERSION, "seed": seed,
            "index": index, "frames": frames, "speed_m_per_frame": speed, "turn_rad_per_frame": turn,
            "pose": "camera-to-world, OpenCV camera axes, metres"}
    writer = RGBDWriter(out, depth_encoding="npy", info=info)
    for i, (view, cam) in enumerate(render_sequence(seed, index, config, frames, speed, turn)):
        writer.write(f"{i:06d}", view.rgb, view.depth, view.valid, view.intrinsics,
                     meta={"pose": camera_pose(cam).tolist(), "frame": i})
    writer.close()  # dataset.json last: a folder without it is unfinished (depthany synth renders it again)
    return out
