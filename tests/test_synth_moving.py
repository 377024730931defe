"""Moving objects in synthetic sequences (``depthany synth --sequence-frames N --moving-objects K``).

Oracles are geometric and independent of the renderer's bookkeeping: surface points of frame i are moved into
frame i+1 (by the camera poses alone, or also by the object's written rigid motion) and the ray from camera i+1
towards each is intersected with every primitive of frame i+1 directly (no culling, no ``trace``): a point that
is still there is hit at its own depth, a point in front of the first surface cannot exist. The mask is checked
against the depth with the moving primitives left out, TAE's exclusion against a per-pixel loop written here, and
K = 0 against the code path of the static sequences, byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from depthany.cli.main import cli
from depthany.data.rgbd import RGBDFolder, RGBDWriter
from depthany.eval.tae import align_video_disparity, temporal_alignment_error
from depthany.eval.video_data import read_dynamic, read_gt, read_rgbd_sequences
from depthany.synth.motion import (
    CLEARANCE,
    MOTION_STREAM,
    ObjectMotion,
    TooFewObjects,
    moved_shapes,
    plan_motions,
    room_bounds,
)
from depthany.synth.raycast import NEAR, trace
from depthany.synth.render import render
from depthany.synth.sequence import camera_path, camera_pose, plan_sequence, render_plan, write_sequence
from depthany.synth.shapes import Box, Cylinder, Sphere
from depthany.synth.worlds import GENERATOR_VERSION, WorldConfig, make_scene

CONFIG = WorldConfig(64, 48, "indoor", clean=True)
WORLD = dict(seed=0, index=2, config=CONFIG, frames=3, speed=0.05, turn=0.02)  # two movable objects in view
MOVING = dict(moving_objects=2, object_speed=0.15, object_spin=0.05)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def first_hits(scene, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Planar depth (in ``scene.camera``) of each world point (3, N) and of the first surface on the ray towards
    it, every primitive intersected directly."""
    cam = scene.camera
    o = np.asarray(cam.position)
    z = cam.world_to_camera(points)[2]
    d = ((points - o[:, None]) / z).astype(np.float32)[:, None, :]  # camera-frame z of 1: t is planar depth
    t = np.full(d.shape[1:], np.inf, np.float32)
    for shape in scene.shapes:
        t = np.minimum(t, shape.intersect(o.astype(np.float32), d, NEAR))
    return z, t[0].astype(np.float64)


@pytest.fixture(scope="module")
def moving(tmp_path_factory) -> tuple[Path, object, list]:
    root = tmp_path_factory.mktemp("moving") / "seq"
    write_sequence(root, **WORLD, **MOVING)
    plan = plan_sequence(**WORLD, **MOVING)
    return root, plan, list(render_plan(plan))


def test_no_moving_objects_is_the_static_sequence_byte_for_byte(tmp_path) -> None:
    """K = 0 writes exactly what the static code path wrote (its body, inlined here): no mask, no new key."""
    write_sequence(tmp_path / "new", **WORLD, moving_objects=0)
    scene = make_scene(0, 2, CONFIG)
    info = {"generator": "depthany.synth.sequence", "generator_version": GENERATOR_VERSION, "seed": 0, "index": 2,
            "frames": 3, "speed_m_per_frame": 0.05, "turn_rad_per_frame": 0.02,
            "pose": "camera-to-world, OpenCV camera axes, metres"}
    writer = RGBDWriter(tmp_path / "old", depth_encoding="npy", info=info)
    for i, cam in enumerate(camera_path(scene.camera, 3, 0.05, 0.02)):
        view = render(dataclasses.replace(scene, camera=cam))
        writer.write(f"{i:06d}", view.rgb, view.depth, view.valid, view.intrinsics,
                     meta={"pose": camera_pose(cam).tolist(), "frame": i})
    writer.close()
    old, new = files(tmp_path / "old"), files(tmp_path / "new")
    assert old == new and not (tmp_path / "new" / "dynamic").exists() and len(new) == 13


def test_moving_objects_move_and_depth_stays_exact(moving) -> None:
    """Static surface points stay where the camera poses put them; the moving ones only with their motion."""
    root, plan, views = moving
    info = json.loads((root / "dataset.json").read_text())["moving_objects"]
    motions = [ObjectMotion.from_dict(d) for d in info["objects"]]
    assert motions == plan.motions and info["count"] == 2
    for i in range(len(views) - 1):
        view, cam = views[i]
        following = plan.frame_scene(i + 1)
        meta = [json.loads((root / "meta" / f"{f:06d}.json").read_text()) for f in (i, i + 1)]
        vv, uu = np.nonzero(view.valid)
        points = cam.unproject(uu.astype(float), vv.astype(float), view.depth[vv, uu])
        dyn = view.dynamic[vv, uu]
        assert 30 < dyn.sum() < 0.5 * dyn.size  # the objects are in view and move
        z, t = first_hits(following, points[:, ~dyn])
        rel = (t - z) / z
        assert rel.max() < 1e-4  # a static point is never in front of frame i+1's first surface
        assert np.mean(np.abs(rel) < 1e-4) > 0.95  # and almost always it is that surface (the rest: occluded)
        z, t = first_hits(following, points[:, dyn])  # moving points, camera poses only: mostly gone
        rel = (t - z) / z
        assert np.mean(np.abs(rel) < 1e-4) < 0.2 and np.mean(rel > 1e-3) > 0.4
        moved = points[:, dyn].copy()
        ids = view.shape_id[vv, uu][dyn]
        for k, m in enumerate(motions):  # the written per-frame motions, frame i -> i+1
            step = np.asarray(meta[1]["object_motion"][k]) @ np.linalg.inv(meta[0]["object_motion"][k])
            sel = np.isin(ids, m.shapes)
            moved[:, sel] = step[:3, :3] @ moved[:, sel] + step[:3, 3:]
        z, t = first_hits(following, moved)
        rel = (t - z) / z
        assert rel.max() < 1e-4 and np.mean(np.abs(rel) < 1e-4) > 0.9
        assert not np.array_equal(view.dynamic, views[i + 1][0].dynamic)


def test_the_mask_is_exactly_where_the_moving_objects_are_seen(moving) -> None:
    root, plan, views = moving
    ids = {i for m in plan.motions for i in m.shapes}
    folder = RGBDFolder(root)
    for f, (view, cam) in enumerate(views):
        scene = plan.frame_scene(f)
        without, _ = trace(cam, [s for i, s in enumerate(scene.shapes) if i not in ids])
        with np.errstate(invalid="ignore"):
            in_front = view.depth < without  # the moving objects hide what is behind them
        assert np.array_equal(view.dynamic, in_front) and view.dynamic.any()
        assert np.array_equal(view.depth[~in_front], without[~in_front])  # elsewhere the static world, bit for bit
        assert np.array_equal(folder.read_dynamic(folder.stems[f]), view.dynamic)
        written = np.load(root / "depth" / f"{f:06d}.npy")
        assert np.array_equal(written, np.where(view.valid, view.depth, 0).astype(np.float32))


def test_motion_is_deterministic_and_leaves_world_and_camera_alone(moving, tmp_path) -> None:
    root, plan, _ = moving
    write_sequence(tmp_path / "again", **WORLD, **MOVING)
    assert files(tmp_path / "again") == files(root)
    write_sequence(tmp_path / "static", **WORLD)
    static = files(tmp_path / "static")
    again = files(tmp_path / "again")
    for stem in ("000000", "000001", "000002"):  # the same camera path
        assert json.loads(again[f"meta/{stem}.json"])["pose"] == json.loads(static[f"meta/{stem}.json"])["pose"]
    for name in ("rgb/000000.png", "depth/000000.npy"):  # frame 0 is the static world itself
        assert again[name] == static[name]
    assert again["depth/000001.npy"] != static["depth/000001.npy"]
    for k, m in enumerate(plan.motions):
        meta = json.loads(again["meta/000002.json"])
        assert np.allclose(meta["object_motion"][k], m.transform(2)) and np.allclose(m.transform(0), np.eye(4))


@pytest.mark.parametrize("kind", ["indoor", "outdoor"])
def test_long_trajectories_keep_clear_of_the_camera_and_inside_the_room(kind) -> None:
    """200 frames at up to 0.1 m per frame: objects bounce off the walls, never come near the camera, and stay
    rigid (each moved primitive is the frame-0 one under the object's 4x4 motion)."""
    planned = 0
    for index in range(6):
        scene = make_scene(3, index, WorldConfig(64, 48, kind))
        cams = camera_path(scene.camera, 200, 0.02, 0.02)
        rng = np.random.default_rng(np.random.SeedSequence([3, index, MOTION_STREAM]))
        try:
            motions = plan_motions(scene, cams, 2, rng, 0.1, 0.05)
        except TooFewObjects:
            continue
        planned += 1
        walls = room_bounds(scene)
        assert (walls is not None) == (kind == "indoor")
        for f in range(0, 200, 7):
            shapes = moved_shapes(scene, motions, f)
            eye = np.asarray(cams[f].position)
            for m in motions:
                x, y, _ = m.placement(f)
                if walls is not None:
                    assert walls[0] - 1e-9 <= x - m.radius and x + m.radius <= walls[1] + 1e-9
                    assert walls[2] - 1e-9 <= y - m.radius and y + m.radius <= walls[3] + 1e-9
                for i in m.shapes:
                    assert shapes[i].distance(eye) >= CLEARANCE
                    b0, b1 = scene.shapes[i].bounds(), shapes[i].bounds()
                    p = m.transform(f) @ np.append(b0[0], 1.0)
                    assert np.allclose(p[:3], b1[0]) and b0[1] == b1[1]
        if walls is not None:  # some object turned back at a wall within 200 frames
            xs = np.array([[m.placement(f)[:2] for f in range(200)] for m in motions])
            assert (np.diff(np.sign(np.diff(xs, axis=1)), axis=1) != 0).any()
    assert planned >= 3


@pytest.mark.parametrize("shape", [Box((1.0, 2.0, 0.4), (0.3, 0.5, 0.4), 0.7), Sphere((1.2, 1.8, 0.3), 0.3, 0, 0.4),
                                   Cylinder((0.8, 2.3), 0.0, 0.9, 0.25, 0, -0.3)])
def test_each_primitive_moves_rigidly_with_its_texture(shape) -> None:
    """Surface points moved by the object's 4x4 motion lie on the moved primitive, with the same surface (texture)
    coordinates: the texture turns with the object."""
    m = ObjectMotion((0,), "box", (1.1, 2.1), 1.0, (0.04, -0.03), 0.09)
    rng = np.random.default_rng(0)
    o = np.array([4.0, -3.0, 2.5], np.float32)
    target = np.asarray(shape.bounds()[0])[:, None] + rng.normal(0, 0.1, (3, 200))
    d = (target - o[:, None]).astype(np.float32)
    t = shape.intersect(o, d)
    hit = np.isfinite(t)
    assert hit.sum() > 150
    p = (o[:, None] + t[hit] * d[:, hit]).astype(np.float64)
    moved = m.move(shape, 7)
    q = m.transform(7)[:3, :3] @ p + m.transform(7)[:3, 3:]
    assert max(abs(moved.distance(x)) for x in q.T) < 1e-5
    for a, b in zip(shape.uv(p.astype(np.float32)), moved.uv(q.astype(np.float32))):
        assert np.allclose(a, b, atol=1e-4)
    assert m.move(shape, 0) is shape


def tae_by_hand(depth: np.ndarray, poses: np.ndarray, K: np.ndarray, dynamic: np.ndarray) -> float:
    """TAE over static pixels, one pixel at a time: static pixels of the source are warped in row-major order
    (a later one overwrites), and only static target pixels are compared."""
    n, h, w = depth.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    terms = []
    for i in range(n - 1):
        for src, dst in ((i, i + 1), (i + 1, i)):
            rel = np.linalg.inv(poses[dst]) @ poses[src]
            warped = np.zeros((h, w))
            for v in range(h):
                for u in range(w):
                    if dynamic[src, v, u]:
                        continue
                    z = depth[src, v, u]
                    p = rel @ np.array([(u - cx) * z / fx, (v - cy) * z / fy, z, 1.0])
                    pu, pv = round(p[0] * fx / p[2] + cx), round(p[1] * fy / p[2] + cy)
                    if 0 <= pu < w and 0 <= pv < h:
                        warped[pv, pu] = p[2]
            errs = [abs(depth[dst, v, u] - warped[v, u]) / depth[dst, v, u] for v in range(h) for u in range(w)
                    if warped[v, u] > 0 and depth[dst, v, u] > 0 and not dynamic[dst, v, u]]
            terms.append(float(np.mean(errs)) if errs else 0.0)
    return 100.0 * float(np.mean(terms))


def test_tae_leaves_out_moving_pixels_in_both_frames() -> None:
    rng = np.random.default_rng(4)
    n, h, w = 4, 12, 16
    depth = rng.uniform(1.0, 6.0, (n, h, w))
    dynamic = np.zeros((n, h, w), bool)
    dynamic[:, 3:8, 5:11] = rng.random((n, 5, 6)) < 0.8
    poses = np.stack([np.eye(4)] * n)
    for i in range(n):
        c, s = np.cos(0.04 * i), np.sin(0.04 * i)
        poses[i, :3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
        poses[i, :3, 3] = (0.15 * i, 0.02 * i, 0.1 * i)
    K = np.array([[14.0, 0, 7.5], [0, 14.0, 5.5], [0, 0, 1]])
    got = temporal_alignment_error(depth, poses, K, dynamic=dynamic)
    assert got == pytest.approx(tae_by_hand(depth, poses, K, dynamic), rel=1e-12)
    assert got != pytest.approx(temporal_alignment_error(depth, poses, K), rel=1e-3)
    # leaving them out as targets only is not the same: the sources must go too
    assert got != pytest.approx(temporal_alignment_error(depth, poses, K, masks=~dynamic), rel=1e-3)
    assert temporal_alignment_error(depth, poses, K, dynamic=np.zeros_like(dynamic)) == \
        temporal_alignment_error(depth, poses, K)


def test_rgbd_video_eval_takes_tae_over_static_pixels(moving, tmp_path) -> None:
    """``depthany eval --dataset rgbd-video`` on a sequence with masks: TAE is the masked TAE of the same
    aligned predictions; the depth metrics still count every pixel."""
    root, plan, views = moving
    (scene,) = read_rgbd_sequences(root)
    assert all(f.dynamic is not None for f in scene.frames)
    gt = np.stack([read_gt(f) for f in scene.frames])
    rng = np.random.default_rng(0)
    with np.errstate(divide="ignore"):
        pred = np.where(gt > 0, 1 / gt, 0) + rng.normal(0, 0.01, gt.shape)
    for f, p in zip(scene.frames, pred.astype(np.float32)):
        (tmp_path / "pred" / scene.name).mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "pred" / f"{f.pred_name}.npy", p)
    r = CliRunner().invoke(cli, ["eval", "--predictions", str(tmp_path / "pred"), "--dataset", "rgbd-video",
                                 "--root", str(root), "--max-depth", "20", "--out", str(tmp_path / "out"), "--quiet"])
    assert r.exit_code == 0, r.output
    row = json.loads((tmp_path / "out" / "metrics.json").read_text())["rows"][0]
    depth = align_video_disparity(pred.astype(np.float32), gt, 20.0).depth
    poses = np.stack([f.pose for f in scene.frames])
    ks = np.stack([f.K for f in scene.frames])
    dynamic = np.stack([read_dynamic(f) for f in scene.frames])
    assert np.array_equal(dynamic, np.stack([v.dynamic for v, _ in views]))
    assert row["tae"] == pytest.approx(temporal_alignment_error(depth, poses, ks, dynamic=dynamic), rel=1e-9)
    assert row["tae"] != pytest.approx(temporal_alignment_error(depth, poses, ks), rel=1e-3)
    assert row["tae_dynamic_excluded"] == pytest.approx(dynamic.mean())


def test_cli_writes_masks_and_names_bad_values(tmp_path) -> None:
    base = ["synth", "--count", "1", "--size", "48x64", "--kind", "indoor", "--clean", "--sequence-frames", "2",
            "--seed", "0", "--quiet"]
    r = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "ok"), "--moving-objects", "1"])
    assert r.exit_code == 0, r.output
    folder = tmp_path / "ok" / "seq_000000"
    info = json.loads((folder / "dataset.json").read_text())
    assert info["moving_objects"]["count"] == 1 and sorted(p.name for p in (folder / "dynamic").iterdir()) == \
        ["000000.png", "000001.png"]
    assert all(f.dynamic is not None for f in read_rgbd_sequences(tmp_path / "ok")[0].frames)
    r = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "neg"), "--moving-objects", "-1"])
    assert r.exit_code == 2 and "--moving-objects" in r.output
    r = CliRunner().invoke(cli, [*base, "--count", "2", "--out", str(tmp_path / "many"), "--moving-objects", "40"])
    assert r.exit_code == 1 and "--moving-objects 40: world 0 of seed 0 has only" in r.output
    assert "2 skipped" in r.output and not (tmp_path / "many" / "seq_000000").exists()  # nothing half-written
    r = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "img"), "--count", "1", "--moving-objects", "1"])
    assert r.exit_code == 2 and "--moving-objects" in r.output and "--sequence-frames" in r.output
    r = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "still"), "--moving-objects", "1",
                                 "--object-speed", "0", "--object-spin", "0"])
    assert r.exit_code == 2 and "--object-speed" in r.output
    with pytest.raises(ValueError, match="moving_objects must be a non-negative integer"):
        write_sequence(tmp_path / "py", **WORLD, moving_objects=-1)
    with pytest.raises(TooFewObjects, match="moving_objects=40: world 2 of seed 0 has only"):
        write_sequence(tmp_path / "py", **WORLD, moving_objects=40)
    assert not (tmp_path / "py").exists()
