"""``depthany multiview``: any-view Depth Anything 3 through the real CLI, and its exports read back independently.

Expected maps and cameras come from the functional re-implementation of the official forward
(``tests/da3_reference.py``) on the official input (``DepthAnything3.inference(images)``, ByteDance-Seed/
Depth-Anything-3 @ 2c21ea8 ``api.py``). The exports are checked with readers that share no code with depthany:
plyfile for the PLY, a parser written here from COLMAP's documented text format, and pygltflib for the GLB; the
points are back-projected here from the oracle's depth, intrinsics and world-to-camera extrinsics with the
official exporters' confidence rule (``utils/export/colmap.py``, ``glb.py``: the 40th percentile of all
confidences; for GLB clamped as ``min(max(1.05, p40), p90)``).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import da3_reference as ref
from depthany import zoo
from depthany.cli.main import cli
from depthany.weights import save_weights
from test_da3_models import ANY, MONO, tiny_arch
from test_da3_pipeline import MEAN, STD, image, official_input

RES = 56  # process_res: 60x80 views run at 42x56


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> tuple[Path, dict]:
    sd = ref.lively_state(ANY, 3)
    spec = zoo.ModelSpec("tiny-da3-any", tiny_arch(ANY, "multiview"), zoo.DA3_PRE, (), "Apache-2.0")
    return save_weights(sd, spec, tmp_path_factory.mktemp("any") / "any.safetensors", "depthany"), sd


@pytest.fixture(scope="module")
def scene(tmp_path_factory, weights) -> tuple[Path, Path, list[np.ndarray], dict]:
    """Three 60x80 views through ``depthany multiview --resolution network`` with every export, and the oracle."""
    path, sd = weights
    root = tmp_path_factory.mktemp("scene")
    imgs = [image(60, 80, seed=10 + s) for s in range(3)]
    for i, img in enumerate(imgs):
        Image.fromarray(img).save(root / f"view{i}.png")
    out = root / "out"
    res = run(root / "view0.png", root / "view1.png", root / "view2.png", "--weights", path, "--out", out,
              "--input-size", RES, "--resolution", "network")
    assert res.exit_code == 0, res.output
    x = torch.stack([torch.from_numpy(official_input(i, RES)) for i in imgs])
    want = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in ref.views_forward(x, sd, ANY).items()}
    want["images"] = (np.clip(x.numpy().transpose(0, 2, 3, 1).astype(np.float64) * STD + MEAN, 0, 1) * 255
                      ).astype(np.uint8)  # the official processed_images: the exports' colours
    return root, out, imgs, want


def run(*args: str | Path):
    return CliRunner().invoke(cli, ["multiview", *map(str, args)], catch_exceptions=False)


def world_points(want: dict, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pixel with conf >= threshold, view by view in row-major order: (xyz, rgb, (view, u, v))."""
    xyz, rgb, where = [], [], []
    n, h, w = want["depth"].shape
    for i in range(n):
        v, u = np.nonzero(want["conf"][i] >= threshold)
        z = want["depth"][i][v, u].astype(np.float64)
        cam = np.linalg.inv(want["intrinsics"][i].astype(np.float64)) @ np.stack([u, v, np.ones_like(u)]) * z
        r, t = want["extrinsics"][i][:, :3].astype(np.float64), want["extrinsics"][i][:, 3].astype(np.float64)
        xyz.append((r.T @ (cam - t[:, None])).T)
        rgb.append(want["images"][i][v, u])
        where.append(np.stack([np.full_like(u, i), u, v], 1))
    return np.concatenate(xyz), np.concatenate(rgb), np.concatenate(where)


def test_network_resolution_is_the_official_output(scene) -> None:
    _, out, _, want = scene
    for i in range(3):
        np.testing.assert_allclose(np.load(out / f"view{i}.npy"), want["depth"][i], rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(np.load(out / f"view{i}_conf.npy"), want["conf"][i], rtol=2e-4, atol=2e-5)
    poses = np.load(out / "poses.npz")
    assert poses["extrinsics"].shape == (3, 3, 4) and poses["intrinsics"].shape == (3, 3, 3)
    np.testing.assert_allclose(poses["extrinsics"], want["extrinsics"], rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(poses["intrinsics"], want["intrinsics"], rtol=2e-4, atol=2e-5)
    assert int(want["reference"]) == 1  # not the first view: the reordering and its undoing are exercised
    assert int(poses["reference"]) == int(want["reference"]) and list(poses["names"]) == [
        "view0.png", "view1.png", "view2.png"]
    assert want["depth"].std() > 0.05 * want["depth"].mean() and np.isfinite(want["intrinsics"]).all()
    assert not np.allclose(want["extrinsics"][0], want["extrinsics"][1], atol=1e-2)  # distinct cameras


def test_ply_is_the_confidence_filtered_fused_cloud(scene) -> None:
    from plyfile import PlyData

    _, out, _, want = scene
    thr = np.percentile(want["conf"], 40)
    xyz, rgb, _ = world_points(want, thr)
    vertex = PlyData.read(str(out / "points.ply"))["vertex"]
    got = np.stack([vertex["x"], vertex["y"], vertex["z"]], 1)
    assert got.shape == xyz.shape and 0.5 * want["conf"].size < len(got) < 0.7 * want["conf"].size
    np.testing.assert_allclose(got, xyz, rtol=1e-3, atol=1e-3 * np.abs(xyz).max())
    cols = np.stack([vertex["red"], vertex["green"], vertex["blue"]], 1)
    assert np.abs(cols.astype(int) - rgb.astype(int)).max() <= 1


def _colmap(folder: Path) -> tuple[dict, dict, dict]:
    """COLMAP's text format, parsed from its documentation (comments start with #)."""
    def lines(name: str) -> list[str]:
        return [ln for ln in (folder / name).read_text().splitlines() if ln and not ln.startswith("#")]

    cameras = {int(p[0]): (p[1], int(p[2]), int(p[3]), [float(x) for x in p[4:]])
               for p in (ln.split() for ln in lines("cameras.txt"))}
    rows = lines("images.txt")
    images = {}
    for head, obs in zip(rows[0::2], rows[1::2]):
        p = head.split()
        o = np.array(obs.split(), dtype=np.float64).reshape(-1, 3)
        images[int(p[0])] = ([float(x) for x in p[1:5]], [float(x) for x in p[5:8]], int(p[8]), p[9], o)
    points = {}
    for ln in lines("points3D.txt"):
        p = ln.split()
        points[int(p[0])] = (np.array(p[1:4], dtype=np.float64), [int(x) for x in p[4:7]],
                             np.array(p[8:], dtype=np.int64).reshape(-1, 2))
    return cameras, images, points


def quaternion_matrix(q: list[float]) -> np.ndarray:
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def test_colmap_text_model_parses_back_and_reprojects(scene) -> None:
    _, out, _, want = scene
    cameras, images, points = _colmap(out / "colmap")
    assert sorted(cameras) == sorted(images) == [1, 2, 3]
    thr = np.percentile(want["conf"], 40)
    xyz, _, where = world_points(want, thr)
    assert len(points) == len(xyz)
    for i in range(3):
        model, w, h, (fx, fy, cx, cy) = cameras[i + 1]
        assert (model, w, h) == ("PINHOLE", 80, 60)  # the original image's size
        k = want["intrinsics"][i]
        np.testing.assert_allclose([fx, fy], [k[0, 0] * 80 / 56, k[1, 1] * 60 / 42], rtol=1e-5)
        q, t, cam, name, _ = images[i + 1]
        assert cam == i + 1 and name == f"view{i}.png" and abs(np.linalg.norm(q) - 1) < 1e-9
        np.testing.assert_allclose(quaternion_matrix(q), want["extrinsics"][i][:, :3], atol=2e-4)
        np.testing.assert_allclose(t, want["extrinsics"][i][:, 3], rtol=2e-4, atol=2e-5)
    errors = []
    for pid, (x, _, track) in points.items():
        assert track.shape == (1, 2)
        image_id, idx = track[0]
        q, t, cam, _, obs = images[image_id]
        ox, oy, opid = obs[idx]
        assert int(opid) == pid
        _, _, _, (fx, fy, cx, cy) = cameras[cam]
        p = quaternion_matrix(q) @ x + np.array(t)
        errors.append(np.hypot(fx * p[0] / p[2] + cx - ox, fy * p[1] / p[2] + cy - oy))
        view, u, v = where[pid - 1]  # point ids follow the fused cloud's order
        assert image_id == view + 1 and (ox, oy) == pytest.approx(((u + 0.5) * 80 / 56, (v + 0.5) * 60 / 42),
                                                                  abs=1e-5)
    assert max(errors) < 1e-3  # every point lands on its own pixel (COLMAP: pixel centres at half-integers)


def test_glb_loads_in_a_gltf_reader_with_points_and_cameras(scene) -> None:
    pygltflib = pytest.importorskip("pygltflib")
    _, out, _, want = scene
    glb = pygltflib.GLTF2().load(str(out / "scene.glb"))
    blob = glb.binary_blob()

    def accessor(i: int, dtype, width: int) -> np.ndarray:
        a = glb.accessors[i]
        view = glb.bufferViews[a.bufferView]
        start = (view.byteOffset or 0) + (a.byteOffset or 0)
        return np.frombuffer(blob, dtype, a.count * width, start).reshape(a.count, width)

    thr = min(max(1.05, np.percentile(want["conf"], 40)), np.percentile(want["conf"], 90))
    xyz, rgb, _ = world_points(want, thr)
    flip = np.diag([1.0, -1.0, -1.0, 1.0])
    w2c0 = np.vstack([want["extrinsics"][0].astype(np.float64), [0, 0, 0, 1]])
    a = flip @ w2c0
    moved = xyz @ a[:3, :3].T + a[:3, 3]
    centre = np.median(moved, axis=0)
    moved -= centre
    points = next(m for m in glb.meshes if m.name == "points").primitives[0]
    assert points.mode == 0  # POINTS
    pos = accessor(points.attributes.POSITION, np.float32, 3)
    col = accessor(points.attributes.COLOR_0, np.uint8, 4)
    assert pos.shape == moved.shape
    np.testing.assert_allclose(pos, moved, rtol=1e-3, atol=1e-3 * np.abs(moved).max())
    assert np.abs(col[:, :3].astype(int) - rgb.astype(int)).max() <= 1
    assert len(glb.cameras) == 3 and all(c.type == "perspective" for c in glb.cameras)
    for i in range(3):
        node = next(n for n in glb.nodes if n.camera == i)
        pose = np.array(node.matrix).reshape(4, 4).T  # glTF matrices are column-major
        c2w = np.linalg.inv(np.vstack([want["extrinsics"][i].astype(np.float64), [0, 0, 0, 1]]))
        np.testing.assert_allclose(pose[:3, 3], (a @ c2w)[:3, 3] - centre, atol=1e-4)
        k = want["intrinsics"][i]
        assert glb.cameras[i].perspective.yfov == pytest.approx(2 * np.arctan(42 / (2 * k[1, 1])), rel=1e-5)
    magic, version, length = struct.unpack("<III", (out / "scene.glb").read_bytes()[:12])
    assert (magic, version, length) == (0x46546C67, 2, (out / "scene.glb").stat().st_size)


def test_image_resolution_maps_and_intrinsics(tmp_path, scene, weights) -> None:
    root, _, _, want = scene
    path, _ = weights
    out = tmp_path / "img"
    res = run(root / "view0.png", root / "view1.png", root / "view2.png", "--weights", path, "--out", out,
              "--input-size", RES, "--export", "none")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"view{i}{s}" for i in range(3) for s in (".npy", "_conf.npy")] + ["poses.npz"])
    poses = np.load(out / "poses.npz")
    for i in range(3):
        depth = np.load(out / f"view{i}.npy")
        assert depth.shape == (60, 80)
        pil = np.asarray(Image.fromarray(want["depth"][i], "F").resize((80, 60), Image.BILINEAR))
        np.testing.assert_allclose(depth, pil, rtol=1e-3, atol=1e-4)
        k, k0 = poses["intrinsics"][i], want["intrinsics"][i]
        np.testing.assert_allclose(np.diag(k)[:2], [k0[0, 0] * 80 / 56, k0[1, 1] * 60 / 42], rtol=1e-5)
        np.testing.assert_allclose(k[:2, 2], [(k0[0, 2] + 0.5) * 80 / 56 - 0.5, (k0[1, 2] + 0.5) * 60 / 42 - 0.5],
                                   rtol=1e-5)
    np.testing.assert_allclose(poses["extrinsics"], want["extrinsics"], rtol=2e-4, atol=2e-5)
    assert list(poses["map_size"]) == [60, 80]


def test_what_multiview_refuses(tmp_path, weights) -> None:
    path, _ = weights
    a = tmp_path / "a.png"
    Image.fromarray(image(60, 80, seed=1)).save(a)
    Image.fromarray(image(60, 80, seed=2)).save(tmp_path / "b.png")
    Image.fromarray(image(80, 60, seed=3)).save(tmp_path / "c.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    mono_spec = zoo.ModelSpec("tiny-mono", tiny_arch(MONO), zoo.DA3_PRE, (), "Apache-2.0")
    mono = save_weights(ref.lively_state(MONO, 0), mono_spec, tmp_path / "mono.safetensors", "depthany")
    out = tmp_path / "out"
    cases = [
        ([a, tmp_path / "c.png"], [], 1, "views of different sizes (a.png: 80x60, c.png: 60x80)"),
        ([a, tmp_path / "b.png", tmp_path / "c.png"], ["--max-views", "2"], 1, "3 views exceed the bound of 2"),
        ([a, tmp_path / "b.png"], ["--max-view-tokens", "20"], 1, "over the bound of 20"),
        ([a, tmp_path / "bad.png"], [], 1, "bad.png"),
        ([a], ["--export", "obj"], 2, "unknown export 'obj'"),
    ]
    for inputs, extra, code, message in cases:
        res = run(*inputs, "--weights", path, "--out", out, "--input-size", RES, *extra)
        assert res.exit_code == code, (inputs, extra, res.output)
        assert message in res.output, (inputs, extra, res.output)
    assert not out.exists() or not any(out.iterdir())  # nothing half-written
    res = run(a, "--weights", mono, "--out", out)
    assert res.exit_code == 2 and "not an any-view Depth Anything 3 model" in res.output
    res = run(a, "--weights", path, "--out", out, "--input-size", RES, "--export", "ply")  # one view works
    assert res.exit_code == 0, res.output
    assert json.loads(json.dumps(np.load(out / "poses.npz")["intrinsics"].shape)) == [1, 3, 3]
