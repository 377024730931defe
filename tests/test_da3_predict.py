"""Depth Anything 3 mono/metric through ``depthany predict`` and :class:`~depthany.predictor.DepthPredictor`.

The expected maps come from the functional re-implementation of the official forward (``tests/da3_reference.py``)
on the official input (``test_da3_pipeline.official_input``, written from ByteDance-Seed/Depth-Anything-3 @ 2c21ea8
``utils/io/input_processor.py``): ``DepthAnything3.inference([image], process_res=504,
process_res_method="upper_bound_resize")`` returns the sky-filled depth at the processing resolution and the sky
mask ``score >= 0.5`` (``utils/io/output_processor.py``). DA3Metric's metres follow the README rule
``focal * net_output / 300`` with the focal in pixels of the processing resolution. The networks are tiny (6 blocks,
32 wide) with random weights, stored under the official ``model.*`` keys in depthany's file (the Hub preset names
only full-size networks).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import da3_reference as ref
from depthany import zoo
from depthany.cli.main import cli
from depthany.geometry.resolve import IntrinsicsWarning
from depthany.predictor import DepthPredictor
from depthany.weights import save_weights
from test_da3_models import ANY, MONO, tiny_arch
from test_da3_pipeline import image, official_input

SKY_BIAS = -0.2  # about 65 % sky at 504 px: both the fill and the mask have work to do


def _weights(folder: Path, head: str, seed: int) -> tuple[Path, dict]:
    c = ANY if head == "multiview" else MONO
    sd = ref.lively_state(c, seed, sky_bias=SKY_BIAS)
    spec = zoo.ModelSpec(f"tiny-da3-{head}", tiny_arch(c, head), zoo.DA3_PRE, (), "Apache-2.0")
    return save_weights(sd, spec, folder / f"{head}.safetensors", "depthany"), sd


@pytest.fixture(scope="module")
def mono(tmp_path_factory) -> tuple[Path, dict]:
    return _weights(tmp_path_factory.mktemp("da3"), "depth", 0)


@pytest.fixture(scope="module")
def metric(tmp_path_factory) -> tuple[Path, dict]:
    return _weights(tmp_path_factory.mktemp("da3"), "focal_metric", 1)


def save(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def run(*args: str | Path):
    return CliRunner().invoke(cli, ["predict", *map(str, args)], catch_exceptions=False)


def oracle(img: np.ndarray, sd: dict, res: int = 504) -> tuple[np.ndarray, np.ndarray]:
    """(sky-filled depth, sky mask) at the processing resolution, as the official inference returns them."""
    depth, sky = ref.mono_forward(torch.from_numpy(official_input(img, res)), sd, MONO)
    return depth.numpy(), sky.numpy() >= 0.5


def pil_bilinear(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pillow's BILINEAR resize of a float map (a triangle filter as wide as the scale when shrinking)."""
    return np.asarray(Image.fromarray(values.astype(np.float32), "F").resize((size[1], size[0]), Image.BILINEAR))


def test_network_resolution_is_the_official_output(tmp_path, mono) -> None:
    """Both resize branches (150x200 is enlarged with INTER_CUBIC, 700x530 shrunk with INTER_AREA and then to a
    multiple of 14), one invocation, each image its own sky statistics."""
    weights, sd = mono
    imgs = {"small": image(150, 200, seed=3), "large": image(700, 530, seed=4)}
    paths = [save(tmp_path / f"{k}.png", v) for k, v in imgs.items()]
    res = run(*paths, "--weights", weights, "--out", tmp_path / "out", "--format", "npy,sky",
              "--resolution", "network")
    assert res.exit_code == 0, res.output
    assert "relative depth" in res.output
    for name, img in imgs.items():
        want, want_sky = oracle(img, sd)
        got = np.load(tmp_path / "out" / f"{name}.npy")
        assert got.dtype == np.float32 and got.shape == want.shape == ((378, 504) if name == "small" else (504, 378))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        sky = np.asarray(Image.open(tmp_path / "out" / f"{name}_sky.png"))
        assert np.array_equal(sky == 255, want_sky) and set(np.unique(sky)) <= {0, 255}
        assert 0.1 < want_sky.mean() < 0.9 and want.std() > 0.05 * want.mean()  # a test that can fail


def test_metric_metres_follow_the_focal_rule(tmp_path, metric) -> None:
    """``depth * ((fx + fy) / 2) / 300`` with fx, fy in pixels of the processing resolution: 60x93 is enlarged to
    325x504, then shrunk to 322x504, so fx' = fx * 504 / 93 and fy' = fy * 322 / 60."""
    weights, sd = metric
    img = image(60, 93, seed=5)
    path = save(tmp_path / "m.png", img)
    want, _ = oracle(img, sd)
    assert want.shape == (322, 504)
    fx = 70.0
    focal = (fx * 504 / 93 + fx * 322 / 60) / 2
    res = run(path, "--weights", weights, "--out", tmp_path / "net", "--format", "npy", "--resolution", "network",
              "--fx", fx)
    assert res.exit_code == 0, res.output
    assert "metric depth [m]" in res.output
    np.testing.assert_allclose(np.load(tmp_path / "net" / "m.npy"), want * focal / 300, rtol=1e-4, atol=1e-5)

    # default --resolution image: the metres at processing resolution, resized to the image bilinearly
    res = run(path, "--weights", weights, "--out", tmp_path / "img", "--format", "npy", "--fx", fx)
    assert res.exit_code == 0, res.output
    got = np.load(tmp_path / "img" / "m.npy")
    assert got.shape == (60, 93)
    np.testing.assert_allclose(got, pil_bilinear(want * focal / 300, (60, 93)), rtol=1e-4, atol=1e-4)

    # no focal given: a 60 degree field of view across the longer side (said in a warning)
    with pytest.warns(IntrinsicsWarning, match="60 deg"):
        res = run(path, "--weights", weights, "--out", tmp_path / "default", "--format", "npy", "--resolution",
                  "network")
    assert res.exit_code == 0, res.output
    f0 = (93 / 2) / math.tan(math.radians(30))
    focal0 = (f0 * 504 / 93 + f0 * 322 / 60) / 2
    np.testing.assert_allclose(np.load(tmp_path / "default" / "m.npy"), want * focal0 / 300, rtol=1e-4, atol=1e-5)


def test_predictor_results_and_batches_match_single_images(mono) -> None:
    """Typed results say what the numbers are; a batch of mixed sizes gives each image's single result (the
    official API would crop the batch to its smallest size and share the sky statistics)."""
    weights, sd = mono
    imgs = [image(60, 80, seed=6), image(60, 80, seed=7), image(90, 50, seed=8)]
    net = DepthPredictor.from_pretrained(weights=weights, batch_size=3, resolution="network")
    batch = net.predict_batch(imgs)
    singles = [DepthPredictor.from_pretrained(weights=weights, resolution="network").predict(i) for i in imgs]
    for img, b, s in zip(imgs, batch, singles):
        want, want_sky = oracle(img, sd)
        np.testing.assert_allclose(b.values, s.values, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.values, want, rtol=1e-4, atol=1e-5)
        assert np.array_equal(b.sky, want_sky) and np.array_equal(s.sky, want_sky)
        assert b.kind == "relative_depth" and b.unit is None and b.is_depth and not b.is_metric
        assert np.array_equal(b.depth, b.values) and b.network_size == want.shape
        assert b.meta["da3"]["processing_size"] == list(want.shape)
    at_image = DepthPredictor.from_pretrained(weights=weights).predict(imgs[2])
    assert at_image.values.shape == at_image.sky.shape == (90, 50)
    np.testing.assert_allclose(at_image.values, pil_bilinear(oracle(imgs[2], sd)[0], (90, 50)), rtol=1e-4,
                               atol=1e-4)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(at_image.disparity, 1 / at_image.values, rtol=1e-6)
    assert "relative depth (bigger = farther" in at_image.describe()


def test_point_cloud_of_relative_depth_drops_the_sky(tmp_path, mono) -> None:
    """``--format ply`` back-projects DA3's depth (a scaled copy of the scene) and leaves out the filled sky."""
    from plyfile import PlyData

    weights, sd = mono
    img = image(150, 200, seed=3)
    res = run(save(tmp_path / "p.png", img), "--weights", weights, "--out", tmp_path / "out", "--format", "ply",
              "--resolution", "network", "--fx", 100)
    assert res.exit_code == 0, res.output
    ply = PlyData.read(str(tmp_path / "out" / "p.ply"))
    want, sky = oracle(img, sd)
    z = np.asarray(ply["vertex"]["z"])
    assert 0 < len(z) <= int((~sky).sum())
    assert z.max() < want[sky].min() + 1e-4  # the fill value (the non-sky 0.99 quantile) of the sky is gone
    assert any("relative units" in c for c in ply.comments)


def test_what_predict_refuses(tmp_path, mono) -> None:
    weights, _ = mono
    img = save(tmp_path / "x.png", image(40, 50))
    any_view, _ = _weights(tmp_path, "multiview", 2)
    cases = [
        (["--weights", any_view], "any-view"),
        (["--model", "da3-small"], "depthany multiview"),
        (["--weights", weights, "--backend", "onnxruntime"], "torch backend"),
        (["--model", "da2-small", "--resolution", "network"], "--resolution network is for Depth Anything 3"),
    ]
    for args, message in cases:
        res = run(img, "--out", tmp_path / "out", *args)
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output, (args, res.output)


def test_served_over_http_with_the_camera_of_the_predictor(metric) -> None:
    """The server's batcher runs the same pipeline: DA3Metric answers in metres, the model list says so."""
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    import io

    from depthany.serve.api import ServeConfig, create_app
    from test_serve import running

    weights, sd = metric
    img = image(60, 93, seed=5)
    predictor = DepthPredictor.from_pretrained(weights=weights, camera={"fx": 70.0}, resolution="network")
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    with running(create_app(predictor, ServeConfig(max_batch=2, max_wait_ms=10))) as url:
        (model,) = httpx.get(f"{url}/v1/models").json()["data"]
        r = httpx.post(f"{url}/v1/depth", params={"format": "npy"}, timeout=60,
                       files={"image": ("m.png", buf.getvalue(), "application/octet-stream")})
    assert model["kind"] == "metric_depth" and model["unit"] == "m"
    assert r.status_code == 200 and r.headers["x-depth-kind"] == "metric_depth" and r.headers["x-depth-unit"] == "m"
    focal = (70.0 * 504 / 93 + 70.0 * 322 / 60) / 2
    np.testing.assert_allclose(np.load(io.BytesIO(r.content)), oracle(img, sd)[0] * focal / 300, rtol=1e-4,
                               atol=1e-5)


def test_exif_orientation_follows_the_official_reader(tmp_path, mono) -> None:
    """The official reader (``PIL.Image.open(path).convert("RGB")``) keeps the stored pixels of a photo tagged
    "rotate 90": so does depthany's default for DA3; ``--exif-orientation apply`` turns it like a viewer."""
    weights, sd = mono
    img = image(150, 200, seed=9)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "turned.png"
    Image.fromarray(img).save(path, exif=exif)
    stored = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(stored, img)
    res = run(path, "--weights", weights, "--out", tmp_path / "official", "--format", "npy", "--resolution",
              "network")
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(np.load(tmp_path / "official" / "turned.npy"), oracle(stored, sd)[0], rtol=1e-4,
                               atol=1e-5)
    res = run(path, "--weights", weights, "--out", tmp_path / "viewer", "--format", "npy", "--exif-orientation",
              "apply")
    assert res.exit_code == 0, res.output
    assert np.load(tmp_path / "viewer" / "turned.npy").shape == (200, 150)


def test_video_frames_are_the_predictors_depth(tmp_path, mono) -> None:
    """``depthany video`` runs DA3 through the same predictor: depth kind, no disparity alignment by default, the
    stored frames equal single predictions (each frame's own sky fill)."""
    pytest.importorskip("av")
    import json

    from depthany.video import VideoOptions, process_video

    weights, _ = mono
    frames = [image(42, 56, seed=20 + i) for i in range(3)]
    for i, f in enumerate(frames):
        save(tmp_path / "seq" / f"f{i:03d}.png", f)
    pred = DepthPredictor.from_pretrained(weights=weights, input_size=56)
    report = process_video(tmp_path / "seq", pred, tmp_path / "d.mp4",
                           VideoOptions(raw_format="npz", raw_path=tmp_path / "d.npz"))
    assert report.kind == "relative_depth" and report.unit is None and report.frames == 3
    with np.load(tmp_path / "d.npz") as z:
        meta = json.loads(str(z["meta"]))
        assert meta["temporal"] == "none" and meta["kind"] == "relative_depth"
        for i in range(3):
            np.testing.assert_allclose(z[f"frame_{i:06d}"], pred.predict(frames[i]).values, rtol=1e-5, atol=1e-6)
