"""Synthetic video sequences: a camera moving through one synthetic world, with exact per-frame depth, intrinsics
and camera-to-world poses (what video evaluation and temporal training need).

    >>> from depthany.synth.sequence import write_sequence
    >>> write_sequence("seqs/walk0", seed=0, index=0, frames=32)                 # doctest: +SKIP

The written folder is a depthany RGB-D folder (:mod:`depthany.data.rgbd`, depth as ``.npy`` float32 metres)
whose ``meta/<stem>.json`` carry ``"intrinsics": [fx, fy, cx, cy]`` and ``"pose"`` (4x4 camera-to-world: a
camera-frame point ``p`` (OpenCV axes, metres) is at ``R @ p + t`` in the world), the layout
``depthany eval --dataset rgbd-video`` reads. The camera walks forward along its optical axis by ``speed`` metres
per frame and turns by ``turn`` radians per frame (yaw). Frames are rendered one at a time.

With ``moving_objects=K`` (default 0: a static world, and the output of earlier versions bit for bit), K of the
world's objects move rigidly (:mod:`depthany.synth.motion`: a horizontal velocity of up to ``object_speed``
metres per frame bouncing off the room's walls, a spin of up to ``object_spin`` radians per frame, kept
:data:`~depthany.synth.motion.CLEARANCE` metres from the camera), drawn from a generator of their own, so the
world and the camera path are the same with or without them. Every frame is rendered from the moved primitives,
so its depth stays exact. Each frame then also has ``dynamic/<stem>.png`` (255 where the visible surface belongs
to a moving object) and ``"object_motion"`` in its meta (one 4x4 rigid motion per object, taking its world points
at frame 0 to this frame); ``dataset.json["moving_objects"]`` records the trajectories.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.rgbd import RGBDWriter
from .camera import Camera
from .motion import CLEARANCE, MOTION_STREAM, ObjectMotion, moved_shapes, plan_motions
from .render import Rendering, render
from .scene import Scene
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


@dataclass
class SequencePlan:
    """What a sequence shows: the world at frame 0, the camera of each frame and the moving objects."""

    scene: Scene
    cameras: list[Camera]
    motions: list[ObjectMotion]

    @property
    def moving_shapes(self) -> np.ndarray:
        """Sorted indices into ``scene.shapes`` of every moving primitive."""
        return np.array(sorted(i for m in self.motions for i in m.shapes), dtype=np.int64)

    def frame_scene(self, frame: int) -> Scene:
        """The scene rendered for ``frame``: its camera, the moving objects where they are then."""
        shapes = moved_shapes(self.scene, self.motions, frame) if self.motions else self.scene.shapes
        return dataclasses.replace(self.scene, camera=self.cameras[frame], shapes=shapes)


def plan_sequence(seed: int, index: int, config: WorldConfig | None = None, frames: int = 32, speed: float = 0.03,
                  turn: float = 0.01, moving_objects: int = 0, object_speed: float = 0.03,
                  object_spin: float = 0.02) -> SequencePlan:
    """The world of sample ``index`` (run ``seed``), the :func:`camera_path` and ``moving_objects`` trajectories
    (:func:`depthany.synth.motion.plan_motions`, seeded with ``SeedSequence([seed, index, MOTION_STREAM])``).

    Raises:
        ValueError: bad arguments.
        depthany.synth.motion.TooFewObjects: (a ValueError) the world has fewer than ``moving_objects`` objects
            that can move.
    """
    scene = make_scene(seed, index, config or WorldConfig())
    cameras = camera_path(scene.camera, frames, speed, turn)
    motions: list[ObjectMotion] = []
    if isinstance(moving_objects, bool) or not isinstance(moving_objects, int) or moving_objects < 0:
        raise ValueError(f"moving_objects must be a non-negative integer, got {moving_objects!r}")
    if moving_objects > 0:
        if not (object_speed >= 0 and object_spin >= 0) or object_speed == object_spin == 0:
            raise ValueError(f"object_speed and object_spin must be >= 0 and not both 0, got {object_speed} and "
                             f"{object_spin}")
        rng = np.random.default_rng(np.random.SeedSequence([seed, index, MOTION_STREAM]))
        motions = plan_motions(scene, cameras, moving_objects, rng, object_speed, object_spin,
                               f"world {index} of seed {seed}")
    return SequencePlan(scene, cameras, motions)


def render_sequence(seed: int, index: int, config: WorldConfig | None = None, frames: int = 32,
                    speed: float = 0.03, turn: float = 0.01, moving_objects: int = 0, object_speed: float = 0.03,
                    object_spin: float = 0.02) -> Iterator[tuple[Rendering, Camera]]:
    """Render the world of sample ``index`` (run ``seed``) along :func:`camera_path`, one frame at a time.

    With moving objects (:func:`plan_sequence`) each rendering's ``dynamic`` is set: (H, W) bool, True where the
    visible surface belongs to a moving object.
    """
    yield from render_plan(plan_sequence(seed, index, config, frames, speed, turn, moving_objects, object_speed,
                                         object_spin))


def render_plan(plan: SequencePlan) -> Iterator[tuple[Rendering, Camera]]:
    """Render a :class:`SequencePlan` frame by frame (``dynamic`` set when it has moving objects)."""
    ids = plan.moving_shapes
    for f, cam in enumerate(plan.cameras):
        view = render(plan.frame_scene(f))
        if plan.motions:
            view.dynamic = np.isin(view.shape_id, ids)
        yield view, cam


def write_sequence(out: str | Path, seed: int = 0, index: int = 0, config: WorldConfig | None = None,
                   frames: int = 32, speed: float = 0.03, turn: float = 0.01, moving_objects: int = 0,
                   object_speed: float = 0.03, object_spin: float = 0.02) -> Path:
    """Write one sequence as an RGB-D folder (stems ``000000`` ...) and return its path.

    Raises:
        ValueError: as :func:`plan_sequence`, before anything is written.
    """
    out = Path(out)
    plan = plan_sequence(seed, index, config, frames, speed, turn, moving_objects, object_speed, object_spin)
    info: dict[str, Any] = {
        "generator": "depthany.synth.sequence", "generator_version": GENERATOR_VERSION, "seed": seed,
        "index": index, "frames": frames, "speed_m_per_frame": speed, "turn_rad_per_frame": turn,
        "pose": "camera-to-world, OpenCV camera axes, metres"}
    if plan.motions:
        info["moving_objects"] = {
            "count": len(plan.motions), "max_speed_m_per_frame": object_speed, "max_spin_rad_per_frame": object_spin,
            "camera_clearance_m": CLEARANCE, "objects": [m.to_dict() for m in plan.motions],
            "dynamic": "dynamic/<stem>.png: 255 where the visible surface belongs to a moving object",
            "object_motion": "per frame: 4x4 world-from-world rigid motion of each object since frame 0"}
    if not plan.motions and (out / "dynamic").is_dir():  # masks of an interrupted run with moving objects
        shutil.rmtree(out / "dynamic")
    writer = RGBDWriter(out, depth_encoding="npy", info=info)
    for i, (view, cam) in enumerate(render_plan(plan)):
        meta: dict[str, Any] = {"pose": camera_pose(cam).tolist(), "frame": i}
        if plan.motions:
            meta["object_motion"] = [m.transform(i).tolist() for m in plan.motions]
        writer.write(f"{i:06d}", view.rgb, view.depth, view.valid, view.intrinsics, meta=meta, dynamic=view.dynamic)
    writer.close()  # dataset.json last: a folder without it is unfinished (depthany synth renders it again)
    return out
