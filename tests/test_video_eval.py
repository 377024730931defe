"""Video evaluation: TAE and the per-video metrics of the Video Depth Anything benchmark.

Oracles: analytic cases (camera moving along the optical axis in front of a plane: a perfect prediction has
TAE 0; a static camera with constant depths; a sideways move by whole pixels, which tells the two pose
directions apart), and ``official_eval_tae`` below, a functional torch re-implementation written here from the
official description (DepthAnything/Video-Depth-Anything, commit 4f5ae23172ba60fd7bc11ef671cca678842c7072,
``benchmark/eval/eval_tae.py``: per-video lstsq in disparity, ``tae_torch`` with ``meshgrid``, ``round``,
scatter, both directions, frame i's K), fed from the files the benchmark layout holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from depthany.cli.main import cli
from depthany.eval.tae import (
    align_video_disparity,
    reprojection_error,
    temporal_alignment_error,
    video_depth_metrics,
)
from depthany.eval.video_data import VIDEO_BENCHMARKS, read_vda_json

cv2 = pytest.importorskip("cv2")


def translation(x: float = 0.0, y: float = 0.0, z: float = 0.0) -> np.ndarray:
    t = np.eye(4)
    t[:3, 3] = (x, y, z)
    return t


K = np.array([[20.0, 0, 15.5], [0, 20.0, 11.5], [0, 0, 1]])

# ------------------------------------------------------------------------------------------------ the oracle


def official_tae_pair(d1: torch.Tensor, d2: torch.Tensor, R: torch.Tensor, t: torch.Tensor, K: np.ndarray,
                      mask: torch.Tensor) -> float:
    H, W = d1.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    xx, yy = torch.meshgrid(torch.arange(W), torch.arange(H), indexing="ij")
    xx, yy = xx.t().to(d1.dtype), yy.t().to(d1.dtype)
    pts = torch.stack((((xx - cx) * d1 / fx).flatten(), ((yy - cy) * d1 / fy).flatten(), d1.flatten()), dim=1)
    p = torch.matmul(pts, R.T) + t
    u = torch.round(p[:, 0] * fx / p[:, 2] + cx).long()
    v = torch.round(p[:, 1] * fy / p[:, 2] + cy).long()
    ok = (u >= 0) & (u < W) & (v >= 0) & (v < H)
    if ok.sum() == 0:
        return 0.0
    proj = torch.zeros((H, W), dtype=d1.dtype)
    proj[v[ok], u[ok]] = p[:, 2][ok]
    ok = (proj > 0) & (d2 > 0) & mask
    if ok.sum() == 0:
        return 0.0
    return float(torch.mean(torch.abs(d2[ok] - proj[ok]) / d2[ok]))


def official_eval_tae(preds: list[np.ndarray], gts: list[np.ndarray], Ks: list[np.ndarray],
                      poses: list[np.ndarray], max_depth: float) -> float:
    gt = np.stack(gts)
    inf = np.stack(preds)
    valid = (gt > 1e-3) & (gt < max_depth)
    target = 1.0 / (gt[valid].reshape(-1, 1).astype(np.float64) + 1e-8)
    inf = np.clip(inf, 1e-3, None)
    a = np.concatenate([inf[valid].reshape(-1, 1).astype(np.float64), np.ones((valid.sum(), 1))], axis=-1)
    scale, shift = np.linalg.lstsq(a, target, rcond=None)[0]
    aligned = np.clip(scale * inf + shift, 1e-3, None)
    depth = np.zeros_like(aligned)
    depth[aligned > 0] = 1.0 / aligned[aligned > 0]
    depth = np.clip(depth, 1e-3, max_depth)
    total = 0.0
    for i in range(len(preds) - 1):
        T21 = np.linalg.inv(poses[i + 1]) @ poses[i]
        T12 = np.linalg.inv(T21)
        ones = torch.ones(depth[i].shape, dtype=torch.bool)
        d1, d2 = torch.from_numpy(depth[i]), torch.from_numpy(depth[i + 1])
        total += official_tae_pair(d1, d2, torch.from_numpy(T21[:3, :3]), torch.from_numpy(T21[:3, 3]), Ks[i], ones)
        total += official_tae_pair(d2, d1, torch.from_numpy(T12[:3, :3]), torch.from_numpy(T12[:3, 3]), Ks[i], ones)
    return 100 * total / (2 * (len(preds) - 1))


# ------------------------------------------------------------------------------------------------ analytic


def test_perfect_depth_of_a_plane_approached_along_the_axis_has_zero_tae() -> None:
    z = [5.0, 4.5, 4.2, 3.0]
    depth = np.stack([np.full((24, 32), d) for d in z])
    poses = np.stack([translation(z=5.0 - d) for d in z])  # camera-to-world: the camera moves forward
    assert temporal_alignment_error(depth, poses, K) == 0.0
    # a wrong scale in frame 1 (4.95 m instead of 4.5) is seen in both directions of both pairs it belongs to:
    # warped 0 -> 1 is 4.5 against 4.95; 1 -> 0 is 5.45 against 5; 1 -> 2 is 4.65 against 4.2; 2 -> 1 is 4.5
    # against 4.95 (every term off by 0.45 m; a uniform map, so the pixels covered do not matter)
    wrong = depth.copy()
    wrong[1] *= 1.1
    expected = 100 * (0.45 / 4.95 + 0.45 / 5 + 0.45 / 4.2 + 0.45 / 4.95) / 6
    assert temporal_alignment_error(wrong, poses, K) == pytest.approx(expected, rel=1e-12)


def test_static_camera_compares_depths_pixel_for_pixel() -> None:
    c1, c2 = 2.0, 2.5
    depth = np.stack([np.full((10, 12), c1), np.full((10, 12), c2)])
    poses = np.stack([np.eye(4)] * 2)
    tae = temporal_alignment_error(depth, poses, K)
    assert tae == pytest.approx(100 * (abs(c2 - c1) / c2 + abs(c1 - c2) / c1) / 2, rel=1e-12)
    mask = np.zeros((2, 10, 12), bool)
    assert temporal_alignment_error(depth, poses, K, mask) == 0.0  # nothing counts: the pair scores 0


def test_sideways_move_by_whole_pixels_tells_the_pose_direction() -> None:
    """Camera 2 sits 0.5 m to the right (camera-to-world): a plane at 10 m moves k = fx * 0.5 / 10 = 1 pixel
    left, so the warp of frame 1 covers frame 2's columns 0 .. W-2. Frame 2 is 10 % deeper on its right half."""
    h, w, e = 6, 8, 0.1
    d1 = np.full((h, w), 10.0)
    d2 = d1.copy()
    d2[:, w // 2:] *= 1 + e
    forward = reprojection_error(d1, d2, np.linalg.inv(translation(x=0.5)), K)
    assert forward == pytest.approx((w - 1 - w // 2) / (w - 1) * e / (1 + e), rel=1e-12)
    swapped = reprojection_error(d1, d2, translation(x=0.5), K)  # the other direction covers columns 1 .. W-1
    assert swapped == pytest.approx((w // 2) / (w - 1) * e / (1 + e), rel=1e-12)


def test_alignment_recovers_an_affine_disparity_and_metrics_are_per_frame_means() -> None:
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 9.0, (3, 8, 9))
    gt[0, 0, :4] = 0  # no value
    gt[1, 2, 2] = 12  # beyond the cap
    with np.errstate(divide="ignore"):
        pred = (0.3 / gt * 2.0 + 0.7).astype(np.float32)  # disparity up to scale 0.6 and shift 0.7
    pred[0, 0, :4] = 5.0
    a = align_video_disparity(pred, gt, max_depth=10.0)
    assert a.scale == pytest.approx(1 / 0.6, rel=1e-5) and a.shift == pytest.approx(-0.7 / 0.6, rel=1e-5)
    ok = a.valid
    assert ok.sum() == gt.size - 5 and np.abs(a.depth[ok] - gt[ok]).max() / gt[ok].min() < 1e-5
    m = video_depth_metrics(a.depth, gt, ok)
    assert m["abs_rel"] < 1e-5 and m["delta1"] == 1.0 and m["frames"] == 3
    # per-frame means, then the mean over frames with valid pixels (a frame without any is skipped)
    d = np.ones((3, 2, 2))
    g = np.array([[[1, 2], [1, 1]], [[2, 2], [2, 2]], [[1, 1], [1, 1]]], dtype=float)
    v = np.ones((3, 2, 2), bool)
    v[0, 1] = False
    v[2] = False
    m = video_depth_metrics(d, g, v)
    assert m["abs_rel"] == pytest.approx(((0 + 0.5) / 2 + 0.5) / 2) and m["delta1"] == pytest.approx((0.5 + 0) / 2)
    assert m["rmse"] == pytest.approx((np.sqrt(0.5) + 1.0) / 2) and m["frames"] == 2
    with pytest.raises(ValueError, match="no ground-truth pixel"):
        align_video_disparity(pred, np.zeros_like(gt), 10.0)


def test_tae_equals_the_official_computation_on_random_scenes() -> None:
    """Random depth, intrinsics and 6-DoF poses, with many rounding collisions (a coarse grid)."""
    rng = np.random.default_rng(1)
    n, h, w = 5, 18, 22
    gt = rng.uniform(1.0, 8.0, (n, h, w))
    pred = (1 / gt + rng.normal(0, 0.02, gt.shape)).astype(np.float32)
    poses, Ks = [], []
    for _ in range(n):
        angle = rng.normal(0, 0.05, 3)
        R = cv2.Rodrigues(angle)[0]
        poses.append(np.block([[R, rng.normal(0, 0.2, (3, 1))], [np.zeros((1, 3)), np.ones((1, 1))]]))
        Ks.append(np.array([[rng.uniform(15, 25), 0, w / 2], [0, rng.uniform(15, 25), h / 2], [0, 0, 1]]))
    a = align_video_disparity(pred, gt, 10.0)
    got = temporal_alignment_error(a.depth, np.stack(poses), np.stack(Ks))
    ref = official_eval_tae(list(pred), list(gt), Ks, poses, 10.0)
    assert got == pytest.approx(ref, rel=1e-9) and got > 0.5


# ------------------------------------------------------------------------------ the benchmark layout and CLI


def write_scannet_tae(root: Path, pred_root: Path, scenes: int = 2, n: int = 13, h: int = 60, w: int = 80
                      ) -> dict[str, list]:
    """A ScanNet TAE benchmark as the official dataset_extract scripts lay it out (color_origin images, 16-bit
    depth in mm, K and camera-to-world poses in the list), plus saved predictions at the colour size."""
    rng = np.random.default_rng(2)
    data: dict[str, list] = {"scannet": []}
    truth: dict[str, list] = {}
    for s in range(scenes):
        name = f"scene{s:04d}_00"
        frames, rows = [], []
        for i in range(n):
            img = f"{name}/color_origin/{i}.jpg"
            dep = f"{name}/depth/{i}.png"
            (root / "scannet" / img).parent.mkdir(parents=True, exist_ok=True)
            (root / "scannet" / dep).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "scannet" / img)
            gt_mm = rng.integers(500, 9000, (h // 2, w // 2)).astype(np.uint16)  # GT at half the colour size
            gt_mm[0, :5] = 0
            Image.fromarray(gt_mm).save(root / "scannet" / dep)
            pose = np.eye(4)
            pose[:3, :3] = cv2.Rodrigues(rng.normal(0, 0.03, 3))[0]
            pose[:3, 3] = rng.normal(0, 0.1, 3)
            k = [[18.0, 0, 12.0], [0, 18.0, 10.0], [0, 0, 1]]
            frames.append({"image": img, "gt_depth": dep, "factor": 1000.0, "K": k, "pose": pose.tolist()})
            pred = (1000.0 / cv2.resize(np.maximum(gt_mm, 1).astype(np.float32), (w, h))
                    + rng.normal(0, 0.02, (h, w))).astype(np.float32)
            (pred_root / "scannet" / img).parent.mkdir(parents=True, exist_ok=True)
            np.save(pred_root / "scannet" / img.replace(".jpg", ".npy"), pred)
            rows.append((pred, gt_mm / 1000.0, np.array(k), pose))
        data["scannet"].append({name: frames})
        truth[name] = rows
    (root / "scannet" / "scannet_video_tae.json").write_text(json.dumps(data))
    return truth


def test_scannet_tae_from_saved_predictions_through_the_cli(tmp_path) -> None:
    """``depthany eval --predictions P --dataset vda-scannet-tae --root B``: frames 10..179 of the first 20
    scenes, prediction cropped [8:-8, 11:-11] and resized to the cropped GT (cv2 bilinear), GT in mm / 1000,
    max depth 10 m; the mean over scenes equals the official computation on the same files."""
    truth = write_scannet_tae(tmp_path / "bench", tmp_path / "pred")
    r = CliRunner().invoke(cli, ["eval", "--predictions", str(tmp_path / "pred"), "--dataset", "vda-scannet-tae",
                                 "--root", str(tmp_path / "bench"), "--out", str(tmp_path / "out"), "--quiet"])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    refs = []
    for rows in truth.values():
        rows = rows[10:180]
        preds = [cv2.resize(p[8:-8, 11:-11], (g.shape[1] - 22, g.shape[0] - 16)) for p, g, _, _ in rows]
        gts = [g[8:-8, 11:-11] for _, g, _, _ in rows]
        refs.append(official_eval_tae(preds, gts, [k for *_, k, _ in rows], [p for *_, p in rows], 10.0))
    assert report["mean"]["tae"] == pytest.approx(np.mean(refs), rel=1e-9)
    assert report["scenes"] == {"evaluated": 2, "failed": 0} and report["rows"][0]["frames"] == 3
    # (the official crop takes the same pixel counts off the colour-size prediction and the half-size GT, so the
    # random per-pixel GT does not line up: the depth metrics are only range-checked here)
    assert report["settings"]["crop"] == [8, -8, 11, -11] and 0 <= report["mean"]["delta1"] <= 1
    scenes = read_vda_json(tmp_path / "bench", VIDEO_BENCHMARKS["vda-scannet-tae"])
    assert scenes[0].frames[0].pred_name == "scannet/scene0000_00/color_origin/0"


def test_bad_benchmark_inputs_are_named(tmp_path) -> None:
    write_scannet_tae(tmp_path / "bench", tmp_path / "pred", scenes=2)
    (tmp_path / "pred" / "scannet" / "scene0001_00" / "color_origin" / "11.npy").unlink()
    r = CliRunner().invoke(cli, ["eval", "--predictions", str(tmp_path / "pred"), "--dataset", "vda-scannet-tae",
                                 "--root", str(tmp_path / "bench"), "--out", str(tmp_path / "out"), "--quiet"])
    assert r.exit_code == 0, r.output  # one scene fails, the other is scored
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["scenes"] == {"evaluated": 1, "failed": 1} and "11.npy: missing prediction" in r.output
    r = CliRunner().invoke(cli, ["eval", "--predictions", str(tmp_path / "pred"), "--dataset", "vda-kitti",
                                 "--root", str(tmp_path / "bench"), "--quiet"])
    assert r.exit_code == 1 and "kitti_video.json: no such benchmark list" in r.output
    (tmp_path / "bad.json").write_text('{"scannet": [{"s": [{"image": "a.png"}]}]}')
    r = CliRunner().invoke(cli, ["eval", "--predictions", str(tmp_path / "pred"), "--dataset", "vda-scannet-tae",
                                 "--root", str(tmp_path), "--list", str(tmp_path / "bad.json"), "--quiet"])
    assert r.exit_code == 1 and "bad.json: not a Video Depth Anything benchmark list" in r.output


# ------------------------------------------------------------------------- models on RGB-D sequences (rgbd-video)


def write_sequence(root: Path, n: int = 8, h: int = 24, w: int = 36) -> None:
    """A camera moving forward along its axis, depth growing linearly down the image (a slanted surface),
    intrinsics and camera-to-world poses."""
    from depthany.data.rgbd import RGBDWriter
    from test_vda_inference import video

    fx, cx, cy = 30.0, (w - 1) / 2, (h - 1) / 2
    rows = np.arange(h, dtype=np.float64)[:, None] * np.ones((1, w))
    with RGBDWriter(root, depth_encoding="npy") as out:
        for i, rgb in enumerate(video(n, h, w, seed=3)):
            z = 6.0 - 0.2 * i + 0.05 * (rows - cy)  # the plane as this camera sees it (metres)
            out.write(f"f{i}", rgb, z.astype(np.float32), intrinsics=(fx, fx, cx, cy),
                      meta={"pose": translation(z=0.2 * i).tolist()})


def test_models_on_rgbd_sequences_through_the_cli(tmp_path) -> None:
    """A Video Depth Anything model (window and streaming) and an image model with the EMA of ``depthany video``:
    the TAE written is the TAE of what the predictor / ``depthany video --raw npz`` outputs for those frames."""
    from conftest import random_model, tiny_spec
    from depthany.data.rgbd import RGBDFolder
    from depthany.video.vda import VideoDepthPredictor
    from depthany.weights import save_weights
    from test_vda_inference import model_and_state
    from test_vda_models import tiny_vda_spec

    write_sequence(tmp_path / "seq" / "walk")
    net, _ = model_and_state("relative", seed=5)
    save_weights(net.state_dict(), tiny_vda_spec(), tmp_path / "vda.safetensors", fmt="depthany")
    folder = RGBDFolder(tmp_path / "seq" / "walk")
    frames = [folder[i].rgb for i in range(len(folder))]
    gt = np.stack([folder[i].depth for i in range(len(folder))]).astype(np.float64)
    poses = np.stack([translation(z=0.2 * i) for i in range(len(folder))])
    k = np.array([[30.0, 0, 17.5], [0, 30.0, 11.5], [0, 0, 1]])

    def score(args: list[str], out: str) -> dict:
        r = CliRunner().invoke(cli, ["eval", "--dataset", "rgbd-video", "--root", str(tmp_path / "seq"),
                                     "--input-size", "42", "--max-depth", "20", "--out", str(tmp_path / out),
                                     "--quiet", *args])
        assert r.exit_code == 0, r.output
        return json.loads((tmp_path / out / "metrics.json").read_text())

    def tae_of(pred: np.ndarray) -> float:
        return temporal_alignment_error(align_video_disparity(pred, gt, 20.0).depth, poses, k)

    predictor = VideoDepthPredictor(net, tiny_vda_spec(), input_size=42)
    for mode in ("window", "streaming"):
        report = score(["--weights", str(tmp_path / "vda.safetensors"), "--video-mode", mode], mode)
        assert report["source"]["mode"] == mode
        assert report["mean"]["tae"] == pytest.approx(tae_of(predictor.predict_array(frames, mode)), rel=1e-6)
    # the EMA path: the same numbers as depthany video writes
    image = tmp_path / "image.safetensors"
    save_weights(random_model(tiny_spec()).state_dict(), tiny_spec(), image, fmt="depthany")
    report = score(["--weights", str(image), "--temporal", "ema"], "ema")
    r = CliRunner().invoke(cli, ["video", str(tmp_path / "seq" / "walk" / "rgb"), "--weights", str(image),
                                 "--input-size", "42", "--no-video", "--raw", "npz", "--raw-out",
                                 str(tmp_path / "v.npz"), "--quiet"])
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "v.npz") as z:
        written = np.stack([z[f"frame_{i:06d}"] for i in range(len(folder))])
    assert report["source"]["temporal"] == "ema"
    assert report["mean"]["tae"] == pytest.approx(tae_of(written), rel=1e-6)
    none = score(["--weights", str(image)], "none")
    assert none["mean"]["tae"] != pytest.approx(report["mean"]["tae"], rel=1e-3)
    # the GT's own disparity scores ~0 (pixel rounding only), far below the random models
    assert tae_of(1 / gt) < 0.01 < min(report["mean"]["tae"], none["mean"]["tae"])
