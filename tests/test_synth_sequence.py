"""Synthetic video sequences (``depthany synth --sequence-frames``): poses, intrinsics and depth that agree.

The check is geometric: the exact depth of frame i, warped into frame i+1 with the written intrinsics and the
camera-to-world poses (the TAE reprojection of ``depthany.eval.tae``), matches frame i+1's exact depth far better
than with the poses inverted or with no motion; and the camera moves as asked.
"""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from depthany.cli.main import cli
from depthany.eval.tae import align_video_disparity, temporal_alignment_error
from depthany.eval.video_data import read_gt, read_rgbd_sequences


def test_sequences_through_the_cli_have_consistent_poses(tmp_path) -> None:
    args = ["synth", "--out", str(tmp_path / "seqs"), "--count", "1", "--size", "48x64", "--kind", "indoor",
            "--clean", "--sequence-frames", "5", "--speed", "0.1", "--turn", "0.03", "--quiet"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    (scene,) = read_rgbd_sequences(tmp_path / "seqs")
    assert scene.name == "seq_000000" and len(scene.frames) == 5
    gt = np.stack([read_gt(f) for f in scene.frames])
    poses = np.stack([f.pose for f in scene.frames])
    ks = np.stack([f.K for f in scene.frames])
    steps = np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1)
    assert np.allclose(steps, 0.1) and np.allclose(poses[:, 2, 3], poses[0, 2, 3])  # walks level, 0.1 m a frame
    yaw = [np.arctan2(p[0, 2], p[1, 2]) for p in poses]  # the optical axis turns 0.03 rad a frame
    assert np.allclose(np.diff(yaw), 0.03)
    with np.errstate(divide="ignore"):
        depth = align_video_disparity(np.where(gt > 0, 1 / gt, 0).astype(np.float32), gt, 20.0).depth
    good = temporal_alignment_error(depth, poses, ks)
    static = temporal_alignment_error(depth, np.stack([np.eye(4)] * 5), ks)
    inverted = temporal_alignment_error(depth, np.linalg.inv(poses), ks)
    assert good < 0.6 * min(static, inverted)  # (what remains: pixel rounding at 64x48, occlusions)
    info = json.loads((tmp_path / "seqs" / "seq_000000" / "dataset.json").read_text())
    assert info["frames"] == 5 and info["pose"].startswith("camera-to-world")
    r = CliRunner().invoke(cli, args)  # a finished sequence is kept
    assert r.exit_code == 0 and "(0 rendered, 1 already there)" in r.output
