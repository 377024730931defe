"""Every output and task with a V1 metric (ZoeDepth) model: video (metres, no alignment), the REST service, the web
demo's point cloud, and calibration of a metric prediction. The maps are the official ``infer_pil`` output
(tests/zoe_oracle.py) wherever a task shows them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import zoe_oracle as oracle
from depthany import DepthPredictor
from depthany.cli.main import cli
from depthany.video.pipeline import VideoOptions, process_video
from test_official_pipeline import photo
from zoe_helpers import save_zoe, tiny_zoe_spec

SEED = 7


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():  # noqa: ANN201
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_zoe(tmp_path_factory.mktemp("zoe") / "zoe.safetensors", seed=SEED)


def official(rgb: np.ndarray) -> np.ndarray:
    spec = tiny_zoe_spec()
    return oracle.infer_pil(oracle.official_state(spec.arch, SEED), spec.arch, rgb)


def close(got: np.ndarray, ref: np.ndarray, tol: float = 1e-5) -> bool:
    return float(np.abs(got - ref).max()) <= tol * float(ref.max() - ref.min())


def test_video_stores_the_official_metres_per_frame(tmp_path: Path, weights: Path) -> None:
    frames = [photo(36, 48, seed=s) for s in range(3)]
    folder = tmp_path / "seq"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:04d}.png")
    pred = DepthPredictor.from_pretrained(weights=weights, batch_size=2)
    report = process_video(folder, pred, None, VideoOptions(raw_format="npz", raw_path=tmp_path / "m.npz"))
    assert report.kind == "metric_depth" and report.unit == "m"
    with np.load(tmp_path / "m.npz") as z:
        meta = json.loads(str(z["meta"]))
        assert meta["temporal"] == "none" and meta["unit"] == "m" and meta["kind"] == "metric_depth"
        for i, f in enumerate(frames):  # metric frames are stored as predicted: no scale / shift alignment
            assert close(z[f"frame_{i:06d}"], official(f))


def test_rest_service_answers_in_metres(weights: Path) -> None:
    """Over real HTTP (uvicorn on a loopback port, as tests/test_serve.py)."""
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")
    from depthany.serve.api import ServeConfig, create_app
    from test_serve import post, running

    rgb = photo(40, 52, seed=3)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    app = create_app(DepthPredictor.from_pretrained(weights=weights), ServeConfig(max_batch=2, max_wait_ms=5))
    with running(app) as url:
        (info,) = httpx.get(f"{url}/v1/models").json()["data"]
        r = post(url, buf.getvalue(), params={"format": "npy"})
        assert r.status_code == 200, r.text
        assert r.headers["x-depth-kind"] == "metric_depth" and r.headers["x-depth-unit"] == "m"
        assert close(np.load(io.BytesIO(r.content)), official(rgb))
        doc = post(url, buf.getvalue()).json()
        assert doc["kind"] == "metric_depth" and doc["unit"] == "m"
    assert info["kind"] == "metric_depth" and info["unit"] == "m" and info["max_depth"] == 10.0
    assert info["input_size"] == 42  # the network height of the ZoeDepth head (42 x 56)


def test_demo_shows_a_point_cloud(tmp_path: Path, weights: Path) -> None:
    pytest.importorskip("gradio")
    plyfile = pytest.importorskip("plyfile")
    from depthany.serve.demo import DemoBackend, local_model_choices

    rgb = photo(40, 52, seed=4)
    Image.fromarray(rgb).save(tmp_path / "room.png")
    backend = DemoBackend(local_model_choices([weights]), workdir=tmp_path / "work")
    (label,) = [c for c in backend.choices if "zoe.safetensors" in c]
    out = backend.run(tmp_path / "room.png", label)
    assert out.result.kind == "metric_depth" and "metric depth in metres" in out.info
    assert close(out.result.values, official(rgb))
    assert out.ply is not None and plyfile.PlyData.read(str(out.ply))["vertex"].count > 0


def test_calibration_rescales_the_metric_prediction(tmp_path: Path, weights: Path) -> None:
    from depthany.geometry import Calibration

    rgb = photo(40, 52, seed=5)
    Image.fromarray(rgb).save(tmp_path / "img.png")
    res = CliRunner().invoke(cli, ["calibrate", "fit", str(tmp_path / "img.png"), "--weights", str(weights),
                                   "--distance", "30", "20", "3.0", "-o", str(tmp_path / "c.json"),
                                   "--save-depth", str(tmp_path / "m.npy")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    cal = Calibration.load(tmp_path / "c.json")
    assert cal.input_kind == "metric_depth"
    ref = official(rgb)
    got = np.load(tmp_path / "m.npy")
    assert got[20, 30] == pytest.approx(3.0, rel=1e-5)  # the known point is reproduced ...
    assert close(got, ref * (3.0 / ref[20, 30]), 1e-4)  # ... by one scale factor on the official metres


def test_pseudo_labelling_refuses_a_zoedepth_teacher(tmp_path: Path, weights: Path) -> None:
    from depthany.pseudo import LabelJob, pseudo_label
    from pseudo_worlds import write_image_folder

    folder = write_image_folder(tmp_path / "imgs", 2)
    with pytest.raises(ValueError, match=r"V1 metric \(ZoeDepth\) model; pseudo-labels come from Depth Anything"):
        pseudo_label(LabelJob((str(folder),), tmp_path / "out", str(weights), None, workers=0, device="cpu"),
                     echo=lambda s: None)
