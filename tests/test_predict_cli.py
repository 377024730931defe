"""``depthany predict`` end to end on tiny random models saved as depthany .safetensors files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from backend_helpers import onnx_cache, tiny_model  # noqa: F401 (fixture)
from conftest import random_model, tiny_spec
from depthany.cli.main import cli
from depthany.io.depth import read_png16
from depthany.predictor import DepthPredictor
from depthany.weights import load_model, save_weights
from official_oracle import official_v2_infer_image

FAST = ["--input-size", "70", "--device", "cpu"]  # 70 px network input keeps each image well under a second


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    spec = tiny_spec()
    path = tmp_path_factory.mktemp("w") / "tiny_v2.safetensors"
    return save_weights(random_model(spec, seed=1).state_dict(), spec, path, fmt="depthany")


@pytest.fixture(scope="module")
def metric_weights(tmp_path_factory) -> Path:
    spec = tiny_spec("metric", max_depth=20.0)
    path = tmp_path_factory.mktemp("w") / "tiny_metric.safetensors"
    return save_weights(random_model(spec, seed=2).state_dict(), spec, path, fmt="depthany")


def image(seed: int = 0, h: int = 30, w: int = 44) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 5, y * 7, (x + y) * 3], -1) + rng.integers(0, 40, (h, w, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def save(path: Path, arr: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def run(*args: str | Path):
    """The CLI on the reference engine (its default `auto` may pick OpenVINO, within 1e-5 but not bit-equal)."""
    return CliRunner().invoke(cli, ["predict", "--backend", "torch", *map(str, args)], catch_exceptions=False)


def test_default_backend_is_chosen_for_the_machine(tmp_path: Path, onnx_cache: str) -> None:  # noqa: F811
    """`--backend auto` runs the machine's engine. The weights are backend_helpers.tiny_model()'s and the ONNX
    cache is the test session's, so an engine backend reuses the file test_backends/test_export exported (one
    export instead of two, and nothing is written to ~/.cache)."""
    from depthany import backends

    spec = tiny_spec()
    weights = save_weights(tiny_model().state_dict(), spec, tmp_path / "tiny.safetensors", fmt="depthany")
    img = save(tmp_path / "a.png", np.zeros((20, 30, 3), np.uint8))
    res = CliRunner().invoke(cli, ["predict", str(img), "--weights", str(weights), "--out", str(tmp_path / "o"),
                                   "--format", "npy"], catch_exceptions=False)
    assert res.exit_code == 0
    assert np.load(tmp_path / "o" / "a.npy").shape == (20, 30)
    assert f"backend {backends.resolve('auto', 'fp32', 'cpu')}" in res.stderr


def test_npy_equals_the_official_inference(tmp_path: Path, weights: Path) -> None:
    """The file holds what the official ``infer_image`` gives for this image (tests/official_oracle.py: OpenCV
    decode, resize and normalisation, the network, the corner-aligned resize back), within 1e-6 of its range."""
    cv2 = pytest.importorskip("cv2")
    img = save(tmp_path / "in" / "x.png", image())
    res = run(img, "--weights", weights, "--out", tmp_path / "out", "--format", "npy", *FAST)
    assert res.exit_code == 0, res.output
    got = np.load(tmp_path / "out" / "x.npy")
    assert got.dtype == np.float32 and got.shape == (30, 44)
    net, _ = load_model(weights=weights)
    expected = official_v2_infer_image(net, cv2.imread(str(img)), input_size=70)
    assert np.ptp(expected) > 0.1  # a map that varies, so the comparison means something
    assert np.abs(got - expected).max() <= 1e-6 * np.ptp(expected)
    assert "done: 1 ok, 0 failed" in res.stderr
    assert "model test-tiny-v2-relative (relative disparity)" in res.stderr


def test_folder_with_bad_files_processes_the_rest_and_exits_1(tmp_path: Path, weights: Path) -> None:
    src = tmp_path / "photos"
    save(src / "a" / "x.jpg", image(1))
    save(src / "b" / "x.jpg", image(2))  # same stem in another folder
    save(src / "x.png", image(3))
    (src / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (src / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    res = run(src, tmp_path / "nope.jpg", "--weights", weights, "--out", out, "--format", "npy,color", *FAST)
    assert res.exit_code == 1
    for key in ("a/x", "b/x", "x"):
        assert (out / f"{key}.npy").exists() and (out / f"{key}_color.png").exists()
    assert "done: 3 ok, 3 failed" in res.stderr
    assert f"FAILED {src / 'b' / 'broken.jpg'}: " in res.stderr
    assert f"FAILED {src / 'empty.png'}: file is empty" in res.stderr
    assert f"FAILED {tmp_path / 'nope.jpg'}: no such file or folder" in res.stderr
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    np.testing.assert_raises(AssertionError, np.testing.assert_array_equal,
                             np.load(out / "a" / "x.npy"), np.load(out / "b" / "x.npy"))


def test_every_format_and_skip_existing(tmp_path: Path, weights: Path) -> None:
    img = save(tmp_path / "x.jpg", image(4), quality=95)
    out = tmp_path / "out"
    fmts = "npy,png16,pfm,exr,color,gray,sbs,controlnet"
    res = run(img, "--weights", weights, "--out", out, "--format", fmts, "--cmap", "turbo", *FAST)
    assert res.exit_code == 0, res.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["x.npy", "x_depth16.png", "x_depth16.json", "x.pfm", "x.exr", "x_color.png",
                            "x_gray.png", "x_sbs.png", "x_controlnet.png"])
    raw = np.load(out / "x.npy")
    back, meta = read_png16(out / "x_depth16.png")
    assert np.abs(back - raw).max() <= (raw.max() - raw.min()) / 65535
    assert meta["model"] == "test-tiny-v2-relative" and meta["source"] == str(img)
    assert np.asarray(Image.open(out / "x_sbs.png")).shape == (30, 44 + 50 + 44, 3)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    res = run(img, "--weights", weights, "--out", out, "--format", fmts, "--skip-existing", *FAST)
    assert res.exit_code == 0 and "0 ok, 0 failed, 1 skipped" in res.stderr
    assert before == {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "x.pfm").unlink()  # one output missing -> the input runs again
    res = run(img, "--weights", weights, "--out", out, "--format", fmts, "--skip-existing", *FAST)
    assert "1 ok" in res.stderr and (out / "x.pfm").exists()


def test_exif_orientation_and_alpha_reach_the_model(tmp_path: Path, weights: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 30x44, displayed 44x30
    rot = save(tmp_path / "rot.png", image(5), exif=exif)
    rgba = np.dstack([image(6), np.linspace(0, 255, 44).astype(np.uint8)[None].repeat(30, 0)])
    alpha = save(tmp_path / "alpha.png", rgba)
    out = tmp_path / "out"
    res = run(rot, alpha, "--weights", weights, "--out", out, "--format", "npy", "--alpha-background", "0,0,0",
              *FAST)
    assert res.exit_code == 0, res.stderr
    assert np.load(out / "rot.npy").shape == (44, 30)
    predictor = DepthPredictor.from_pretrained(weights=weights, input_size=70)
    on_black = np.round(rgba[..., :3] * (rgba[..., 3:] / 255.0)).astype(np.uint8)
    np.testing.assert_array_equal(np.load(out / "alpha.npy"), predictor.predict(on_black).values)


def test_txt_list_and_glob(tmp_path: Path, weights: Path) -> None:
    save(tmp_path / "set" / "one.png", image(7))
    save(tmp_path / "set" / "deep" / "two.png", image(8))
    (tmp_path / "set" / "list.txt").write_text("one.png\n# comment\ndeep/two.png\n")
    out = tmp_path / "out"
    res = run(tmp_path / "set" / "list.txt", "--weights", weights, "--out", out, "--format", "gray", *FAST)
    assert res.exit_code == 0, res.stderr
    assert (out / "one_gray.png").exists() and (out / "deep" / "two_gray.png").exists()
    res = run(str(tmp_path / "set" / "**" / "*.png"), "--weights", weights, "--out", tmp_path / "o2",
              "--format", "npy", *FAST)
    assert res.exit_code == 0 and (tmp_path / "o2" / "deep" / "two.npy").exists()


def test_metric_model_writes_ply_and_metric_png16(tmp_path: Path, metric_weights: Path) -> None:
    pytest.importorskip("plyfile")
    import plyfile

    img = save(tmp_path / "room.png", image(9))
    out = tmp_path / "out"
    res = run(img, "--weights", metric_weights, "--out", out, "--format", "ply,png16,npy", "--fx", "40", *FAST)
    assert res.exit_code == 0, res.stderr
    depth = np.load(out / "room.npy")
    assert 0 < depth.min() and depth.max() < 20.0  # sigmoid * max_depth
    _, meta = read_png16(out / "room_depth16.png")
    assert meta["kind"] == "metric_depth" and meta["unit"] == "m"
    assert plyfile.PlyData.read(str(out / "room.ply"))["vertex"].count > 0


@pytest.mark.parametrize("args, message", [
    (["--format", "npy,tiff"], "unknown output format 'tiff'"),
    (["--alpha-background", "1,2"], "alpha background must be R,G,B"),
    (["--cmap", "jet"], "unknown colour map 'jet'"),
    (["--png16-offset", "1"], "--png16-offset needs --png16-scale"),
    (["--input-size", "100"], "input_size must be a positive multiple of 14"),
    (["--format", "ply"], "--format ply needs a metric model"),
    (["--device", "cuda:7"], "device"),
])
def test_usage_errors_exit_2(tmp_path: Path, weights: Path, args: list[str], message: str) -> None:
    if "--device" in args:
        import torch

        if torch.cuda.device_count() > 7:
            pytest.skip("this machine has a cuda:7")
    img = save(tmp_path / "x.png", image())
    res = run(img, "--weights", weights, "--out", tmp_path / "out", *args)
    assert res.exit_code == 2
    assert message in res.output + res.stderr
    assert "Traceback" not in res.output + res.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_missing_weights_file_exits_2(tmp_path: Path) -> None:
    img = save(tmp_path / "x.png", image())
    res = run(img, "--weights", tmp_path / "nope.safetensors", "--out", tmp_path / "out")
    assert res.exit_code == 2 and "nope.safetensors" in res.stderr


def test_default_bundled_model_missing_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    from depthany.weights import hub

    monkeypatch.setattr(hub, "bundled_path", lambda rel: tmp_path / "not-installed" / rel)
    img = save(tmp_path / "x.png", image())
    res = run(img, "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert "bundled default model da2-mini" in res.stderr
    assert "for real photos use --model da2-small" in res.stderr
    assert "error: da2-mini" in res.stderr and "Traceback" not in res.stderr


def test_nothing_found_exits_1(tmp_path: Path, weights: Path) -> None:
    (tmp_path / "empty").mkdir()
    res = run(tmp_path / "empty", "--weights", weights, "--out", tmp_path / "out")
    assert res.exit_code == 1 and "0 ok, 1 failed" in res.stderr and "no image files" in res.stderr


def test_output_folder_inside_the_input_folder_is_not_read_back(tmp_path: Path, weights: Path) -> None:
    save(tmp_path / "p" / "x.png", image())
    for _ in range(2):
        res = run(tmp_path / "p", "--weights", weights, "--out", tmp_path / "p" / "depth", "--format", "color",
                  *FAST)
        assert res.exit_code == 0 and "1 ok" in res.stderr
    assert sorted(p.name for p in (tmp_path / "p" / "depth").iterdir()) == ["x_color.png"]


def test_as_a_subprocess(tmp_path: Path, weights: Path) -> None:
    img = save(tmp_path / "x.png", image())
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "depthany", "predict", str(img), "--weights", str(weights),
                           "--out", str(tmp_path / "out"), "--format", "npy,png16", *FAST],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "done: 1 ok, 0 failed" in proc.stderr
    assert np.load(tmp_path / "out" / "x.npy").shape == (30, 44)
    assert json.loads((tmp_path / "out" / "x_depth16.json").read_text())["kind"] == "relative_disparity"
    bad = subprocess.run([sys.executable, "-m", "depthany", "predict", str(img), "--out", str(tmp_path / "o"),
                          "--weights", str(weights), "--format", "bogus"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert bad.returncode == 2 and "unknown output format" in bad.stderr


def test_zoo_model_not_cached_offline_exits_2_with_instructions(tmp_path: Path) -> None:
    img = save(tmp_path / "x.png", image())
    res = run(img, "--model", "da2-small", "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert "error: da2-small: weights not found" in res.stderr and "depth_anything_v2_vits.pth" in res.stderr
    assert "Traceback" not in res.stderr


def test_ply_code_missing_is_a_usage_error(tmp_path: Path, weights: Path, monkeypatch) -> None:
    from depthany import outputs

    broken = outputs.OutputFormat("ply", "depthany.io.no_pointcloud_here:write_result_ply", (".ply",), "")
    monkeypatch.setitem(outputs.FORMATS, "ply", broken)
    img = save(tmp_path / "x.png", image())
    res = run(img, "--weights", weights, "--out", tmp_path / "out", "--format", "npy,ply")
    assert res.exit_code == 2
    assert "output format 'ply' is not available" in res.output + res.stderr
    assert "Traceback" not in res.output + res.stderr
