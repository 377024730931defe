"""The V1 metric (ZoeDepth) models on the single inference path: ``depthany predict`` against the functional
oracle of the official ``infer_pil`` (tests/zoe_oracle.py) on checkpoints in the official file layout, the
``evaluate.py`` mode and ``depthany eval``, the token budget, outputs, backends and reduced precision."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import zoe_oracle as oracle
from depthany import DepthPredictor, zoo
from depthany.budget import InputBudgetError
from depthany.cli.main import cli
from depthany.data import RGBDWriter
from depthany.inference import ZoeDepthPipeline, pipeline_for
from depthany.io.depth import read_png16
from test_official_pipeline import photo
from test_zoedepth_model import loaded
from test_zoedepth_weights import INDOOR, tiny_zoo, write_official  # noqa: F401 - the fixture
from zoe_helpers import save_zoe, tiny_zoe_spec

TOL = 1e-5  # of the output range


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    span = float(ref.max() - ref.min())
    assert span > 0.3  # metres: the map is not flat
    return float(np.abs(got - ref).max()) / span


def save_png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def evaluate_oracle(sd: dict[str, torch.Tensor], arch: zoo.Arch, rgb: np.ndarray, flip: bool = True) -> np.ndarray:
    """The official ``evaluate.py`` ``infer`` (network-size flip mean) + ``compute_metrics``' bilinear resize
    (align_corners=True) to the image size, written from the description."""
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        out = oracle.forward(sd, arch, x)
        if flip:
            out = 0.5 * (out + torch.flip(oracle.forward(sd, arch, torch.flip(x, [3])), [3]))
    return torch.nn.functional.interpolate(out, rgb.shape[:2], mode="bilinear", align_corners=True)[0, 0].numpy()


# ---------------------------------------------------------------------------------------------- depthany predict


def test_predict_writes_the_official_infer_pil(tiny_zoo, tmp_path: Path) -> None:  # noqa: F811
    """depthany predict --model da1-metric-indoor-large --weights <official .pt> --format npy: exactly
    infer_pil(img, pad_input=True, with_flip_aug=True) in metres at the image's size, for images of any size."""
    arch = tiny_zoo[INDOOR].arch
    sd = oracle.official_state(arch, seed=11)
    ckpt = write_official(sd, tmp_path / "my-finetune.pt", prefix="module.")
    images = {"a": photo(50, 67, seed=1), "b": photo(31, 45, seed=2), "c": photo(50, 67, seed=3)}
    paths = [save_png(tmp_path / "in" / f"{k}.png", v) for k, v in images.items()]
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["predict", *map(str, paths), "--model", INDOOR, "--weights", str(ckpt),
                                   "--out", str(out), "--format", "npy,png16", "--batch-size", "2"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    assert "metric depth [m]" in res.stderr and "backend torch" in res.stderr  # auto: torch for ZoeDepth
    for k, rgb in images.items():
        got = np.load(out / f"{k}.npy")
        assert got.shape == rgb.shape[:2] and got.dtype == np.float32
        assert rel_err(got, oracle.infer_pil(sd, arch, rgb)) < TOL, k
        values, meta = read_png16(out / f"{k}_depth16.png")
        assert meta["kind"] == "metric_depth" and meta["unit"] == "m" and meta["model"] == INDOOR
        assert np.abs(values - got).max() <= (got.max() - got.min()) / 65535 + 1e-6


def test_predict_ply_uses_the_metres_and_the_intrinsics(tmp_path: Path) -> None:
    plyfile = pytest.importorskip("plyfile")
    weights = save_zoe(tmp_path / "zoe.safetensors")
    img = save_png(tmp_path / "room.png", photo(40, 50, seed=4))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["predict", str(img), "--weights", str(weights), "--out", str(out),
                                   "--format", "ply,npy", "--fx", "40"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    depth = np.load(out / "room.npy")
    v = plyfile.PlyData.read(str(out / "room.ply"))["vertex"]
    assert v.count > 0 and np.all(v["z"] > 0)
    # every point is a pixel back-projected with fx = 40 and the principal point at the centre
    u = v["x"] * 40 / v["z"] + 25 - 0.5
    r = v["y"] * 40 / v["z"] + 20 - 0.5
    ui, ri = np.round(u).astype(int), np.round(r).astype(int)
    assert np.abs(u - ui).max() < 1e-3 and np.abs(r - ri).max() < 1e-3
    np.testing.assert_allclose(v["z"], depth[ri, ui], rtol=1e-5)


def test_predictor_results_batches_and_raw_forward() -> None:
    spec = tiny_zoe_spec()
    sd = oracle.official_state(spec.arch, seed=5)
    pred = DepthPredictor(loaded(spec.arch, sd), spec, batch_size=3)
    images = [photo(36, 48, seed=s) for s in range(3)] + [photo(20, 70, seed=9)]
    results = pred.predict_batch(images)
    for rgb, r in zip(images, results):
        assert r.kind == "metric_depth" and r.values.shape == rgb.shape[:2] and r.network_size == (42, 56)
        assert rel_err(r.values, oracle.infer_pil(sd, spec.arch, rgb)) < TOL
        assert r.meta["input_budget"]["shrunk"] is False
    assert isinstance(pred.pipeline, ZoeDepthPipeline)
    # the raw forward: (1, 2, 42, 56) network outputs, the second the mirror image's flipped back
    prepared = pred.pipeline.prepare(images[0])
    raw = pred.infer_tensor(prepared.x)
    assert raw.shape == (1, 2, 42, 56)
    assert not torch.equal(raw[0, 0], raw[0, 1])  # the mirror pass is a second, different network input


# ------------------------------------------------------------------------------------------------ the budget


def test_the_fixed_network_size_sits_inside_the_budget_and_shrinks_keeping_its_shape() -> None:
    spec = tiny_zoe_spec()
    pipe = pipeline_for(spec)
    for h, w in ((40, 50), (5, 5), (3000, 20)):  # the network input is 42 x 56 whatever the image
        fit = pipe.fit(h, w)
        assert fit.network_size == (42, 56) and not fit.shrunk
    small = pipeline_for(spec, max_tokens=6)  # 3 x 4 = 12 tokens do not fit: 2 x 3 keep the 3:4 network shape
    fit = small.fit(40, 50)
    assert fit.shrunk and fit.network_size == (28, 42) and fit.tokens <= 6
    sd = oracle.official_state(spec.arch, seed=5)
    r = DepthPredictor(loaded(spec.arch, sd), spec, max_tokens=6).predict(photo(40, 50, seed=1))
    assert r.values.shape == (40, 50) and r.meta["input_budget"]["shrunk"] and r.network_size == (28, 42)


def test_keep_aspect_mode_respects_the_budget() -> None:
    """With keep_aspect (the official 'infer' config) the network size follows the image: the budget bounds it."""
    spec = tiny_zoe_spec(keep_aspect=True)
    fit = pipeline_for(spec).fit(30, 400)  # padded 52 x 484: scale 42/52 is closer to 1 -> 42 x 392, 84 tokens
    assert fit.official_size == (42, 392) and not fit.shrunk
    fit = pipeline_for(spec, max_tokens=40).fit(30, 400)
    assert fit.shrunk and fit.tokens <= 40 and fit.network_size == (28, 266)  # 2 x 19 patches, aspect 9.3:1 kept
    with pytest.raises(InputBudgetError, match="cannot be fitted"):
        pipeline_for(spec, max_tokens=50).fit(10, 2000)  # 99:1 after padding: not even one patch high
    sd = oracle.official_state(spec.arch, seed=5)
    rgb = photo(30, 400, seed=2)
    r = DepthPredictor(loaded(spec.arch, sd), spec).predict(rgb)  # unshrunk: exactly the official output
    assert r.network_size == (42, 392) and rel_err(r.values, oracle.infer_pil(sd, spec.arch, rgb)) < TOL


def test_pipeline_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="no ZoeDepth head"):
        ZoeDepthPipeline(zoo.get_spec("da2-small"))
    with pytest.raises(ValueError, match="mode must be"):
        ZoeDepthPipeline(tiny_zoe_spec(), mode="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'zoedepth' pipeline"):
        pipeline_for(dataclasses.replace(tiny_zoe_spec(), preprocess=zoo.V1_PRE))
    spec = tiny_zoe_spec()
    pred = DepthPredictor(loaded(spec.arch, oracle.official_state(spec.arch)), spec)
    with pytest.raises(ValueError, match="too small"):
        pred.predict(photo(3, 40, seed=0))


def test_input_size_scales_the_network_size() -> None:
    spec = tiny_zoe_spec()
    pipe = pipeline_for(spec, input_size=84)  # 42 x 56 -> 84 x 112: test-time resolution
    assert pipe.input_size == 84 and pipe.fit(40, 50).network_size == (84, 112)
    with pytest.raises(ValueError, match="multiple of 14"):
        pipeline_for(spec, input_size=50)


# ------------------------------------------------------------------------------------- evaluate.py / depthany eval


def test_evaluate_mode_is_the_official_evaluate(tmp_path: Path) -> None:
    spec = tiny_zoe_spec()
    sd = oracle.official_state(spec.arch, seed=3)
    pred = DepthPredictor(loaded(spec.arch, sd), spec)
    rgb = photo(45, 60, seed=6)
    for flip in (True, False):
        got = pred.with_settings(mode="evaluate", flip=flip).predict(rgb).values
        assert rel_err(got, evaluate_oracle(sd, spec.arch, rgb, flip)) < TOL
    # not the same numbers as infer_pil (padding, bicubic upsampling): the two modes are told apart
    assert rel_err(pred.predict(rgb).values, evaluate_oracle(sd, spec.arch, rgb)) > 100 * TOL


def test_depthany_eval_scores_zoedepth_as_the_official_evaluate(tmp_path: Path) -> None:
    spec = tiny_zoe_spec()
    sd = oracle.official_state(spec.arch, seed=3)
    weights = save_zoe(tmp_path / "zoe.safetensors", seed=3)
    rng = np.random.default_rng(0)
    root = tmp_path / "worlds"
    samples = []
    with RGBDWriter(root, depth_encoding="npy") as w:
        for i in range(3):
            rgb, depth = photo(40, 52, seed=20 + i), rng.uniform(0.5, 12.0, (40, 52)).astype(np.float32)
            w.write(f"s{i}", rgb, depth)
            samples.append((rgb, depth))
    res = CliRunner().invoke(cli, ["eval", "--weights", str(weights), "--dataset", "rgbd", "--root", str(root),
                                   "--protocol", "zoedepth_metric", "--min-depth", "0.001", "--max-depth", "10",
                                   "--out", str(tmp_path / "ev"), "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "ev" / "metrics.json").read_text())["metrics"]
    abs_rel = []  # compute_metrics: clip the prediction to the range, score GT strictly inside it
    for rgb, gt in samples:
        p = np.clip(evaluate_oracle(sd, spec.arch, rgb), 0.001, 10)
        m = (gt > 0.001) & (gt < 10)
        abs_rel.append(np.mean(np.abs(gt[m] - p[m]) / gt[m]))
    assert got["abs_rel"] == pytest.approx(np.mean(abs_rel), rel=1e-4)


# -------------------------------------------------------------------------------------- backends and precision


def test_auto_backend_runs_zoedepth_on_torch_and_explicit_engines_are_checked(tmp_path: Path) -> None:
    weights = save_zoe(tmp_path / "zoe.safetensors")
    assert DepthPredictor.from_pretrained(weights=weights, backend="auto").backend == "torch"
    with pytest.raises(ValueError, match="backend must be one of"):
        DepthPredictor.from_pretrained(weights=weights, backend="tensorrt")


def test_bf16_runs_and_stays_close(tmp_path: Path) -> None:
    """bf16 autocast on the CPU: the head's softmax over 64 bins and the log-binomial stay finite; measured
    AbsRel against fp32 0.2-0.3 % on random models of seeds 2-4 (documented in docs/zoedepth.md)."""
    spec = tiny_zoe_spec()
    model = loaded(spec.arch, oracle.official_state(spec.arch, seed=2))
    rgb = photo(40, 50, seed=8)
    ref = DepthPredictor(model, spec).predict(rgb).values
    got = DepthPredictor(model, spec, precision="bf16").predict(rgb).values
    assert np.isfinite(got).all()
    assert float(np.mean(np.abs(got - ref) / ref)) < 0.02


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_exported_engines_match_the_official_infer_pil(tmp_path: Path, backend: str, monkeypatch) -> None:
    """The ZoeDepth network exports (dynamic sizes; the log-binomial's int64 bin indices included) and runs on
    ONNX Runtime and OpenVINO within the fp32 tolerance. Minutes: the export of even a tiny model is slow."""
    pytest.importorskip("onnxscript")
    pytest.importorskip(backend if backend == "openvino" else "onnxruntime")
    monkeypatch.setenv("DEPTHANY_CACHE_DIR", str(tmp_path / "cache"))
    spec = tiny_zoe_spec()
    sd = oracle.official_state(spec.arch, seed=4)
    pred = DepthPredictor.from_pretrained(weights=save_zoe(tmp_path / "zoe.safetensors", seed=4), backend=backend)
    assert pred.backend == backend
    for h, w in ((40, 50), (30, 70)):
        rgb = photo(h, w, seed=h)
        assert rel_err(pred.predict(rgb).values, oracle.infer_pil(sd, spec.arch, rgb)) < TOL
