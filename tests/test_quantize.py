"""int8: `depthany quantize` (NNCF for OpenVINO), its accuracy gate, the cache by weights digest, and
`--precision int8` selection. Tiny random models and small images; quantisation runs twice in the module (the
calibrated model shared by most tests, and a deliberately broken calibration through the CLI).

Accuracy on trained weights (the bundled model, a ViT-S trained on synthetic worlds) is measured by
`depthany quantize` itself and reported in docs/performance.md; a random tiny network has no trained activation
statistics, so its bound here is loose (the int8 map must still follow the fp32 one closely, pixel by pixel).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from backend_helpers import _CACHE as SHARED_ONNX_CACHE
from backend_helpers import tiny_model
from conftest import tiny_spec
from depthany import backends
from depthany.accuracy import absrel, delta1
from depthany.backends.int8_cache import Int8ModelMissing, cached_int8, int8_dir
from depthany.backends.onnx_cache import CACHE_ENV, weights_digest
from depthany.quantize import split_images

needs_int8 = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("nncf", "openvino", "onnxscript")),
                                 reason="the int8 extra (nncf, openvino, onnx export) is not installed")
LOOSE_ABSREL = 0.35  # random tiny weights; trained models are held to 1.5 % by the gate itself
INPUT_SIZE = 42


def _photo(seed: int, h: int = 56, w: int = 70) -> np.ndarray:
    """A smooth photo-like RGB image with some texture and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([127 + 100 * np.sin(x / (4 + seed % 5)) * np.cos(y / 6), 255 * x / w, 255 * (1 - y / h)], -1)
    img[((x // 16 + y // 16) % 2 == 0)] *= 0.7
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def _write_photos(folder: Path, seeds: range, black: bool = False) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in seeds:
        arr = np.zeros((56, 70, 3), np.uint8) if black else _photo(s)
        paths.append(folder / f"img{s:03d}.png")
        Image.fromarray(arr).save(paths[-1])
    return paths


def _cache_with_export(folder: Path) -> Path:
    """A fresh depthany cache folder holding the tiny model's ONNX export (exported once per test process, in the
    folder the backend tests share: the export is the slow part, ~40 s on 2 busy cores) and no int8 model."""
    from depthany.backends.onnx_cache import model_onnx

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, SHARED_ONNX_CACHE)
        exported = model_onnx(tiny_model(seed=0), "tiny")
    (folder / "onnx").mkdir(parents=True, exist_ok=True)
    for f in exported.parent.glob(exported.name + "*"):
        shutil.copyfile(f, folder / "onnx" / f.name)
    return folder


@pytest.fixture(scope="module")
def int8_env(tmp_path_factory):
    """One quantisation of the tiny model (cache in a temporary folder): the files, the result, the model."""
    from depthany.quantize import quantize_model

    root = tmp_path_factory.mktemp("int8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(_cache_with_export(root / "cache")))
        photos = _write_photos(root / "photos", range(10))
        model, spec = tiny_model(seed=0), tiny_spec()
        result = quantize_model(model, spec, photos, root / "out" / "tiny-int8.xml", input_size=INPUT_SIZE,
                                max_absrel=LOOSE_ABSREL, progress=False, threads=1)
        yield {"root": root, "photos": photos, "model": model, "spec": spec, "result": result}


# ------------------------------------------------------------------------------------------ pure helpers


def test_split_holds_out_every_kth_image_never_calibrated() -> None:
    imgs = [Path(f"i{k}.png") for k in range(20)]
    s = split_images(imgs, count=100, holdout_count=16)
    assert len(s.holdout) == 4 and len(s.calibration) == 16  # at most a fifth held out
    assert not set(s.holdout) & set(s.calibration) and set(s.holdout) | set(s.calibration) == set(imgs)
    assert [int(p.stem[1:]) for p in s.holdout] == [2, 7, 12, 17]  # spread over the list
    few = split_images(imgs, count=5, holdout_count=2)
    assert len(few.calibration) == 5 and len(few.holdout) == 2
    assert [p.stem for p in few.calibration][0] == "i0" and [p.stem for p in few.calibration][-1] == "i19"
    explicit = split_images(imgs[:10], imgs[10:], count=100, holdout_count=3)
    assert explicit.calibration == tuple(imgs[:10]) and len(explicit.holdout) == 3
    with pytest.raises(ValueError, match="must not be calibration images"):
        split_images(imgs[:10], imgs[9:12])
    with pytest.raises(ValueError, match="at least 2 images"):
        split_images(imgs[:1])


def test_delta1_on_known_values() -> None:
    ref = np.array([[1.0, 2.0, 4.0, 0.001]])  # the last pixel is below 1 % of the maximum: left out
    out = np.array([[1.2, 2.6, 4.0, 5.0]])  # ratios 1.2 (hit), 1.3 (miss), 1.0 (hit)
    assert delta1(out, ref) == pytest.approx(2 / 3)
    assert absrel(out, ref) == pytest.approx((0.2 + 0.3 + 0.0) / 3)
    assert delta1(np.array([[0.0, 2.0]]), np.array([[1.0, 2.0]])) == pytest.approx(0.5)  # zero output: a miss


# --------------------------------------------------------------------------------------- quantisation


@needs_int8
def test_quantised_graph_runs_and_follows_fp32(int8_env) -> None:
    import openvino as ov

    from depthany.backends.openvino_backend import OpenVinoRunner
    from depthany.backends.torch_backend import TorchRunner

    res = int8_env["result"]
    xml = res.model_path
    assert xml.is_file() and xml.with_suffix(".bin").is_file() and res.gate_path.is_file()
    ops = ov.Core().read_model(str(xml)).get_ordered_ops()
    assert sum(op.get_type_name() == "FakeQuantize" for op in ops) > 10  # really quantised
    # an input the gate never saw, at another network size; AbsRel/delta1 recomputed here by their definition
    x = torch.randn(1, 3, 56, 84, generator=torch.Generator().manual_seed(5))
    ref = TorchRunner(int8_env["model"], "fp32")(x).numpy()
    out = OpenVinoRunner(xml, "int8", threads=1)(x).numpy()
    m = ref > 0.01 * ref.max()
    mine = float(np.mean(np.abs(out[m] - ref[m]) / ref[m]))
    assert 1e-4 < mine < LOOSE_ABSREL  # it is int8 (not a float copy), and it is close
    assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.95


@needs_int8
def test_weights_are_7_bit_in_every_layer(int8_env) -> None:
    """NNCF's overflow fix on every layer (its default: the first only): CPUs without VNNI multiply int8 through
    16-bit saturating instructions, which full 8-bit weights overflow (8.5 % AbsRel on the bundled model here)."""
    import openvino as ov

    model = ov.Core().read_model(str(int8_env["result"].model_path))
    weights = [op.get_data() for op in model.get_ordered_ops()
               if op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.i8]
    assert len(weights) > 10
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64
    assert sum(int(np.abs(w.astype(np.int32)).max()) >= 60 for w in weights) > len(weights) // 2  # the range is used


@needs_int8
def test_gate_report_beside_the_model(int8_env) -> None:
    res = int8_env["result"]
    rep = json.loads(res.gate_path.read_text())
    assert res.gate_path.name == "tiny-int8.gate.json" and rep == res.report
    assert rep["ok"] is True and rep["max_absrel"] == LOOSE_ABSREL and rep["images"] == 2
    assert rep["absrel"] == pytest.approx(np.mean([r["absrel"] for r in rep["per_image"]]))
    assert 0 < rep["absrel"] <= LOOSE_ABSREL and 0.5 < rep["delta1"] <= 1
    held = {Path(r["image"]).name for r in rep["per_image"]}
    assert held == {"img002.png", "img007.png"} and rep["calibration"]["images"] == 8  # disjoint sets
    assert rep["weights_digest"] == weights_digest(int8_env["model"])
    assert rep["input_size"] == INPUT_SIZE and rep["engine"]["name"] == "openvino"
    kept = set(rep["kept_float"]["operations"].values())
    assert {"/matmul", "/matmul_1"} <= kept  # the positional-embedding resize
    assert any(s.startswith("depth_head.scratch.output_conv2") for s in kept)


@needs_int8
def test_kept_float_operations_have_no_quantizer(int8_env) -> None:
    import openvino as ov

    model = ov.Core().read_model(str(int8_env["result"].model_path))
    kept = set(int8_env["result"].report["kept_float"]["operations"])
    by_name = {op.get_friendly_name(): op for op in model.get_ordered_ops()}
    assert kept <= set(by_name)
    for name in kept:
        inputs = [by_name[name].input_value(i).get_node() for i in range(2)]
        assert all(i.get_type_name() != "FakeQuantize" for i in inputs), name
    quantised = [op for op in model.get_ordered_ops() if op.get_type_name() == "MatMul"
                 and op.get_friendly_name() not in kept]
    assert any(op.input_value(1).get_node().get_type_name() == "FakeQuantize" for op in quantised)


@needs_int8
def test_cached_by_weights_digest_and_found_by_precision_int8(int8_env, monkeypatch, tmp_path) -> None:
    from depthany.predictor import DepthPredictor
    from depthany.weights import save_weights

    monkeypatch.setenv(CACHE_ENV, str(int8_env["root"] / "cache"))
    model, spec = int8_env["model"], int8_env["spec"]
    digest = weights_digest(model)
    cached = int8_env["result"].cached
    assert cached == cached_int8(digest) and cached.parent == int8_dir() and digest[:16] in cached.name
    other = tiny_model(seed=1)
    assert cached_int8(weights_digest(other)) is None  # other weights: no int8 model
    with pytest.raises(Int8ModelMissing, match="depthany quantize"):
        backends.make_runner("openvino", other, "int8", name="other")
    # a predictor from a weights file finds the model by digest; its output is the int8 runner's
    weights = save_weights(model.state_dict(), spec, tmp_path / "tiny.safetensors", "depthany")
    pred = DepthPredictor.from_pretrained(weights=weights, precision="int8", backend="auto", input_size=INPUT_SIZE)
    img = _photo(11)
    res = pred.predict(img)
    assert pred.backend == "openvino" and res.meta["precision"] == "int8"
    from depthany.backends.openvino_backend import OpenVinoRunner

    direct = DepthPredictor(model, spec, "cpu", precision="int8", backend="openvino", input_size=INPUT_SIZE,
                            backend_options={"int8_model": str(int8_env["result"].model_path)})
    np.testing.assert_allclose(res.values, direct.predict(img).values, rtol=0, atol=1e-6)  # the same int8 graph
    assert isinstance(direct.runner, OpenVinoRunner)
    exact = DepthPredictor(model, spec, "cpu", input_size=INPUT_SIZE).predict(img).values
    assert np.abs(res.values - exact).max() > 1e-4  # not the float model
    assert np.corrcoef(res.values.ravel(), exact.ravel())[0, 1] > 0.95


@needs_int8
def test_auto_never_picks_int8(int8_env, monkeypatch) -> None:
    """An int8 model is cached for these weights, yet fp32/bf16 with backend auto run float and stay exact."""
    from depthany.predictor import DepthPredictor

    monkeypatch.setenv(CACHE_ENV, str(int8_env["root"] / "cache"))
    model, spec = int8_env["model"], int8_env["spec"]
    assert cached_int8(weights_digest(model)) is not None
    img = _photo(12)
    exact = DepthPredictor(model, spec, "cpu", input_size=INPUT_SIZE).predict(img).values
    auto = DepthPredictor(model, spec, "cpu", backend="auto", input_size=INPUT_SIZE)
    assert auto.runner.precision == "fp32"
    np.testing.assert_allclose(auto.predict(img).values, exact, rtol=0, atol=1e-5 * float(np.ptp(exact)))
    for p in ("fp32", "bf16", "fp16"):
        runner = backends.make_runner("auto", model, p, name=spec.name)
        assert runner.precision == p  # never int8


def test_int8_selection_rules(monkeypatch) -> None:
    from depthany.predictor import DepthPredictor

    monkeypatch.setattr(backends, "is_installed", lambda n: True)
    assert backends.resolve("auto", "int8", "cpu") == "openvino"
    assert backends.resolve("openvino", "int8", "cpu") == "openvino"
    with pytest.raises(ValueError, match="'torch' does not run precision 'int8'"):
        backends.resolve("torch", "int8", "cpu")
    with pytest.raises(ValueError, match="no backend runs precision 'int8' on cuda"):
        backends.resolve("auto", "int8", "cuda")
    with pytest.raises(ValueError, match="backend='openvino' or 'auto'"):
        DepthPredictor(tiny_model(), tiny_spec(), "cpu", precision="int8")  # the default backend is torch
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16, int8"):
        backends.resolve("auto", "int4", "cpu")


def test_missing_nncf_or_openvino_is_a_clear_error(monkeypatch, tmp_path) -> None:
    from depthany.cli.main import cli
    from depthany.quantize import QuantizeError, quantize_model

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: None if m == "nncf" else real(m, *a))
    with pytest.raises(QuantizeError, match=r"needs nncf: pip install 'depthany\[int8\]'"):
        quantize_model(tiny_model(), tiny_spec(), [], tmp_path / "x.xml")
    photos = _write_photos(tmp_path / "p", range(3))
    res = CliRunner().invoke(cli, ["quantize", "da2-mini", "-c", str(photos[0].parent), "-o", str(tmp_path / "x.xml")])
    assert res.exit_code == 1 and "depthany[int8]" in res.output
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: None if m == "openvino" else real(m, *a))
    with pytest.raises(backends.BackendUnavailable, match="openvino"):
        backends.resolve("openvino", "int8", "cpu")
    with pytest.raises(ValueError, match=r"no backend runs precision 'int8' on cpu.*depthany\[openvino"):
        backends.resolve("auto", "int8", "cpu")


# ------------------------------------------------------------------------------------------------- CLI


@needs_int8
def test_cli_gate_fails_above_the_bound(tmp_path, monkeypatch) -> None:
    """A bound of 0: int8 is never bit-exact, so the command must fail, write the report and cache nothing."""
    from depthany.cli.main import cli
    from depthany.weights import save_weights

    monkeypatch.setenv(CACHE_ENV, str(_cache_with_export(tmp_path / "cache")))
    model, spec = tiny_model(seed=0), tiny_spec()
    weights = save_weights(model.state_dict(), spec, tmp_path / "tiny.safetensors", "depthany")
    photos = _write_photos(tmp_path / "photos", range(5))
    (tmp_path / "photos" / "zero-bytes.png").write_bytes(b"")  # reported and skipped, the rest carries on
    held = _write_photos(tmp_path / "held", range(20, 22))
    out = tmp_path / "q" / "strict.xml"
    res = CliRunner().invoke(cli, ["quantize", "--weights", str(weights), "-c", str(photos[0].parent), "--holdout",
                                   str(held[0].parent), "-o", str(out), "--input-size", str(INPUT_SIZE), "--quiet",
                                   "--threads", "1", "--max-absrel", "0"])
    assert res.exit_code == 1, res.output
    assert "accuracy gate failed" in res.output and "not cached" in res.output
    rep = json.loads(out.with_name("strict.gate.json").read_text())
    assert rep["ok"] is False and rep["absrel"] > 0 and rep["max_absrel"] == 0
    assert rep["holdout"]["from"] == "--holdout" and rep["images"] == 2 and rep["calibration"]["images"] == 5
    assert [Path(u["image"]).name for u in rep["unreadable"]] == ["zero-bytes.png"]
    assert "skipped" in res.output and "zero-bytes.png" in res.output
    assert out.is_file() and cached_int8(weights_digest(model)) is None  # written for inspection, never used
    res = CliRunner().invoke(cli, ["predict", str(held[0]), "--weights", str(weights), "--precision", "int8",
                                   "--out", str(tmp_path / "pred")])
    assert res.exit_code == 2 and "no int8 model for these weights" in res.output


@needs_int8
def test_gate_catches_a_broken_int8_model(int8_env, tmp_path) -> None:
    """The calibrated activation ranges shrunk 50x (what calibrating on the wrong images does): the gate's
    AbsRel must blow past the default bound, while the real model is close."""
    import openvino as ov
    from openvino import op as ov_op

    from depthany.backends.openvino_backend import OpenVinoRunner
    from depthany.backends.torch_backend import TorchRunner
    from depthany.inference import pipeline_for
    from depthany.quantize import gate

    model = ov.Core().read_model(str(int8_env["result"].model_path))
    shrunk = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() == "FakeQuantize" and op.input_value(0).get_node().get_type_name() != "Constant":
            for i in range(1, 5):  # input_low, input_high, output_low, output_high
                const = op.input_value(i).get_node()
                small = ov_op.Constant(np.array(const.get_data() * 0.02, dtype=np.float32))
                op.input(i).replace_source_output(small.output(0))
            shrunk += 1
    assert shrunk > 5
    broken = tmp_path / "broken.xml"
    ov.save_model(model, str(broken), compress_to_fp16=False)
    pipeline = pipeline_for(int8_env["spec"], INPUT_SIZE)
    held = [Path(r["image"]) for r in int8_env["result"].report["per_image"]]
    reference = TorchRunner(int8_env["model"], "fp32")
    rows = gate.measure(pipeline, reference, OpenVinoRunner(broken, "int8", threads=1), held)
    rep = gate.report(rows, gate.DEFAULT_MAX_ABSREL, {})
    assert rep["ok"] is False and rep["absrel"] > 2 * LOOSE_ABSREL and rep["delta1"] < 0.5
    good = gate.report(gate.measure(pipeline, reference, OpenVinoRunner(int8_env["result"].model_path, "int8",
                                                                        threads=1), held), LOOSE_ABSREL, {})
    assert good["ok"] is True and good["absrel"] == pytest.approx(int8_env["result"].report["absrel"], rel=1e-5)


def test_cli_refuses_bad_arguments(tmp_path) -> None:
    from depthany.cli.main import cli

    photos = _write_photos(tmp_path / "p", range(2))
    runner = CliRunner()
    res = runner.invoke(cli, ["quantize", "-c", str(photos[0]), "-o", str(tmp_path / "x.onnx")])
    assert res.exit_code == 2 and ".xml" in res.output
    res = runner.invoke(cli, ["quantize", "-c", str(tmp_path / "none"), "-o", str(tmp_path / "x.xml")])
    assert res.exit_code == 2 and "no images found" in res.output
    (tmp_path / "x.xml").write_text("")
    res = runner.invoke(cli, ["quantize", "-c", str(photos[0]), "-o", str(tmp_path / "x.xml")])
    assert res.exit_code == 2 and "--overwrite" in res.output


@needs_int8
def test_predict_cli_precision_int8(int8_env, monkeypatch, tmp_path) -> None:
    from depthany.cli.main import cli
    from depthany.weights import save_weights

    monkeypatch.setenv(CACHE_ENV, str(int8_env["root"] / "cache"))
    weights = save_weights(int8_env["model"].state_dict(), int8_env["spec"], tmp_path / "t.safetensors", "depthany")
    img = tmp_path / "a.png"
    Image.fromarray(_photo(13)).save(img)
    res = CliRunner().invoke(cli, ["predict", str(img), "--weights", str(weights), "--precision", "int8",
                                   "--input-size", str(INPUT_SIZE), "--format", "npy", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "int8" in res.output and "backend openvino" in res.output
    assert np.load(tmp_path / "o" / "a.npy").shape == (56, 70)


def test_int8_cache_install_replaces_and_needs_all_three_files(tmp_path, monkeypatch) -> None:
    from depthany.backends.int8_cache import install

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    digest = "ab" * 20

    def made(folder: Path, text: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        xml = folder / "m.xml"
        for f, t in ((xml, text), (folder / "m.bin", text + "-bin"), (folder / "m.gate.json", '{"ok": true}')):
            f.write_text(t)
        return xml

    assert cached_int8(digest) is None  # no cache folder yet
    first = install(made(tmp_path / "a", "first"), "da2-small", digest)
    assert cached_int8(digest) == first and first.name == f"da2-small-{digest[:16]}.xml"
    second = install(made(tmp_path / "b", "second"), "my model/v2", digest)  # re-quantised, under another name
    assert cached_int8(digest) == second and second.name == f"my_model_v2-{digest[:16]}.xml"
    assert not first.exists() and second.read_text() == "second"
    assert second.with_suffix(".bin").read_text() == "second-bin"
    assert cached_int8("cd" * 20) is None  # other weights
    second.with_name(second.stem + ".gate.json").unlink()  # a model without its gate report is never used
    assert cached_int8(digest) is None
    assert [p.name for p in int8_dir().iterdir() if p.name.startswith(".install-")] == []


@needs_int8
def test_bench_runs_the_cached_int8_model(int8_env, monkeypatch, tmp_path) -> None:
    """`depthany bench -p int8` uses the model cached for the weights, reports its gate, its error against fp32
    measured in the run, and its peak memory from a fresh process running that model."""
    from depthany.bench import BenchConfig, run_bench
    from depthany.bench.report import header, text_table
    from depthany.weights import save_weights

    monkeypatch.setenv(CACHE_ENV, str(int8_env["root"] / "cache"))
    weights = save_weights(int8_env["model"].state_dict(), int8_env["spec"], tmp_path / "t.safetensors", "depthany")
    cfg = BenchConfig(model=None, weights=str(weights), backends=("openvino",), precisions=("fp32", "int8"),
                      sizes=((518, 518),), batches=(1,), repeats=1, warmup=0, baseline=False, e2e=False,
                      memory=False, peak=False, threads=1)
    report = run_bench(cfg)
    rows = {r["precision"]: r for r in report["results"]}
    assert set(rows) == {"fp32", "int8"} and report["skipped"] == []
    assert report["int8"]["int8_model"] == str(int8_env["result"].cached)
    assert report["int8"]["source"].startswith("cache") and report["int8"]["gate"]["ok"] is True
    assert rows["fp32"]["errors"]["max_rel"] < 1e-4  # the float engine is exact...
    assert 1e-3 < rows["int8"]["errors"]["max_rel"] < 0.5  # ...the int8 one is not, and still close
    assert "int8 model: " in header(report) and "int8" in text_table(report)


@needs_int8
@pytest.mark.slow
def test_bench_memory_job_runs_the_int8_model(int8_env, tmp_path) -> None:
    """The peak-memory child of an int8 row loads the quantised model it is given (a fresh process: slow)."""
    from depthany.bench.memory import MemoryJob, measure
    from depthany.weights import save_weights

    weights = save_weights(int8_env["model"].state_dict(), int8_env["spec"], tmp_path / "t.safetensors", "depthany")
    job = MemoryJob("da2-small", str(weights), "openvino", "int8", 518, 518, 1, threads=1, batches=1,
                    int8_model=str(int8_env["result"].model_path))
    out = measure(job)
    assert "error" not in out, out
    assert 100 < out["peak_rss_mb"] < 4000
    missing = measure(MemoryJob("da2-small", str(weights), "openvino", "int8", 518, 518, 1, threads=1, batches=1,
                                int8_model=str(tmp_path / "none.xml")))
    assert "error" in missing


@needs_int8
def test_video_cli_precision_int8(int8_env, monkeypatch, tmp_path) -> None:
    """`depthany video --precision int8` over an image sequence runs the cached int8 model; without one it stops
    with the command that makes it."""
    from depthany.cli.main import cli
    from depthany.weights import save_weights

    monkeypatch.setenv(CACHE_ENV, str(int8_env["root"] / "cache"))
    weights = save_weights(int8_env["model"].state_dict(), int8_env["spec"], tmp_path / "t.safetensors", "depthany")
    frames = _write_photos(tmp_path / "frames", range(30, 33))
    raw = tmp_path / "raw.npz"
    args = ["video", str(frames[0].parent), "--no-video", "--raw", "npz", "--raw-out", str(raw),
            "--temporal", "none", "--input-size", str(INPUT_SIZE)]
    res = CliRunner().invoke(cli, [*args, "--weights", str(weights), "--precision", "int8"])
    assert res.exit_code == 0, res.output
    with np.load(raw) as z:
        depth = [z[k] for k in sorted(z.files) if z[k].ndim >= 2]
    assert depth and depth[0].shape[-2:] == (56, 70)
    other = save_weights(tiny_model(seed=3).state_dict(), int8_env["spec"], tmp_path / "o.safetensors", "depthany")
    res = CliRunner().invoke(cli, [*args, "--weights", str(other), "--precision", "int8"])
    assert res.exit_code == 2 and "no int8 model for these weights" in res.output
