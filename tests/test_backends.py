"""Every backend within its stated tolerance, at square and non-square sizes: fp32 against an independent
functional re-implementation of the official forward (tests/official_forward.py) and against the exact path
(PyTorch eager fp32, same weights, same input); reduced precision on the bundled trained model against the
exact path within the stated AbsRel bound. Backend selection; errors that name the extra to install."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from backend_helpers import TEST_SIZES, onnx_cache, tiny_input, tiny_model  # noqa: F401 (fixture)
from conftest import tiny_spec
from depthany import backends, transforms, zoo
from depthany.accuracy import EXACT_TOLERANCE, REDUCED_TOLERANCE, absrel, max_rel_error
from official_forward import official_forward

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _installed(name: str) -> bool:
    return backends.is_installed(name)


def _has_cpu_flag(flag: str) -> bool:
    try:
        return flag in open("/proc/cpuinfo").read()
    except OSError:
        return False


def _cases(exact: bool) -> list:
    return [pytest.param(b, p, marks=pytest.mark.skipif(not _installed(b), reason=f"{b} not installed"),
                         id=f"{b}-{p}")
            for b in backends.INFOS for p in backends.INFOS[b].precisions["cpu"] if (p == "fp32") == exact]


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tiny_model(seed=0)


@pytest.fixture(scope="module")
def runners(model, onnx_cache):  # noqa: F811
    """One runner per (backend, precision), built once (the ONNX export is shared through the cache)."""
    cache: dict[tuple[str, str], backends.Runner] = {}

    def get(name: str, precision: str) -> backends.Runner:
        if (name, precision) not in cache:
            cache[name, precision] = backends.make_runner(name, model, precision, "cpu", name="tiny")
        return cache[name, precision]

    return get


@pytest.mark.parametrize("b,h,w", TEST_SIZES)
@pytest.mark.parametrize("backend,precision", _cases(exact=True))
def test_fp32_backend_matches_the_official_forward(runners, model, backend, precision, b, h, w) -> None:
    runner = runners(backend, precision)
    x = tiny_input(b, h, w, seed=b * 100 + h + w)
    with torch.inference_mode():
        official = official_forward(model.state_dict(), tiny_spec().arch, x)
        exact = model(x)
    out = runner(x)
    assert out.dtype == torch.float32 and out.device.type == "cpu" and out.shape == (b, h, w)
    assert runner.exact and runner.tolerance == EXACT_TOLERANCE
    err = max_rel_error(out, official)  # measured: torch 5e-7 (42x56) to 1.4e-6 (518x518) of the range
    assert err <= EXACT_TOLERANCE, f"{backend} fp32 max rel error {err:.2e} vs the official forward at {b}x{h}x{w}"
    if backend != "torch":  # the stated criterion: within 1e-5 of the exact path (torch fp32 is that path)
        assert max_rel_error(out, exact) <= EXACT_TOLERANCE


@pytest.fixture(scope="module")
def bundled() -> tuple[torch.nn.Module, zoo.ModelSpec]:
    from depthany.weights import load_model

    return load_model(zoo.BUNDLED_NAME)


@pytest.mark.parametrize("photo,input_size,portrait", [("park_trees.jpg", 140, False),
                                                       ("room_pillar.jpg", 182, True)])
@pytest.mark.parametrize("backend,precision", _cases(exact=False))
def test_reduced_precision_within_the_stated_bound(bundled, onnx_cache, backend, precision, photo,  # noqa: F811
                                                   input_size, portrait) -> None:
    """The stated 1.5 % AbsRel, on the bundled *trained* model and real photos (random tiny networks amplify
    rounding far beyond what trained weights do, so they cannot check the stated bound). Measured with torch
    autocast bf16: 0.2-0.3 %."""
    really_reduced = backend != "openvino" or _has_cpu_flag("avx512_bf16")
    if not really_reduced:  # and its ONNX export of the bundled model would cost a minute for nothing
        pytest.skip("without bf16 units OpenVINO executes f32: no reduced precision to measure on this CPU")
    model, spec = bundled
    rgb = np.asarray(Image.open(EXAMPLES / photo).convert("RGB"))
    if portrait:
        rgb = np.ascontiguousarray(rgb.transpose(1, 0, 2))
    x = transforms.preprocess(rgb, spec.preprocess, input_size)
    with torch.inference_mode():
        ref = model(x)
    runner = backends.make_runner(backend, model, precision, "cpu", name=spec.name)
    out = runner(x)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert not runner.exact and runner.tolerance == REDUCED_TOLERANCE
    err = absrel(out, ref)
    assert err <= REDUCED_TOLERANCE, f"{backend} {precision} AbsRel {err:.2%} on {photo}"
    assert max_rel_error(out, ref) > 1e-4  # it really ran in reduced precision


@pytest.mark.skipif(not _installed("openvino"), reason="openvino not installed")
def test_openvino_reports_the_precision_it_ran(runners) -> None:
    r32 = runners("openvino", "fp32")
    r32(tiny_input(1, 42, 56))
    assert r32.describe()["executed_precision"] == "f32"  # never the CPU plugin's bf16 default
    if _has_cpu_flag("avx512_bf16") or _has_cpu_flag("amx_bf16"):
        r16 = runners("openvino", "bf16")
        r16(tiny_input(1, 42, 56))
        assert r16.describe()["executed_precision"] == "bf16"


@pytest.mark.skipif(not _installed("openvino"), reason="openvino not installed")
def test_openvino_keeps_a_few_compiled_shapes(runners) -> None:
    from depthany.backends.openvino_backend import MAX_COMPILED

    r = runners("openvino", "fp32")
    for k in range(MAX_COMPILED + 2):
        r(tiny_input(1, 28, 28 + 14 * k))
    assert len(r._compiled) == MAX_COMPILED
    assert (1, 3, 28, 28 + 14 * (MAX_COMPILED + 1)) in r._compiled


@pytest.mark.slow
def test_metric_head_through_onnxruntime(onnx_cache) -> None:  # noqa: F811
    if not _installed("onnxruntime"):
        pytest.skip("onnxruntime not installed")
    m = tiny_model(seed=3, head="metric")
    runner = backends.make_runner("onnxruntime", m, "fp32", name="tiny-metric")
    x = tiny_input(1, 56, 42)
    with torch.inference_mode():
        ref = m(x)
    out = runner(x)
    assert 0 < float(out.min()) and float(out.max()) < 20.0  # metres in (0, max_depth)
    assert max_rel_error(out, ref) <= EXACT_TOLERANCE


# ------------------------------------------------------------------------------------------- selection


def test_auto_picks_first_installed_in_order(monkeypatch) -> None:
    monkeypatch.setattr(backends, "is_installed", lambda n: n in ("onnxruntime", "torch"))
    assert backends.resolve("auto", "fp32", "cpu") == "torch"  # ORT only on request (its peak memory)
    assert backends.resolve("auto", "bf16", "cpu") == "torch"
    monkeypatch.setattr(backends, "is_installed", lambda n: n in ("openvino", "torch"))
    assert backends.resolve("auto", "fp32", "cpu") == "openvino"
    monkeypatch.setattr(backends, "is_installed", lambda n: True)
    assert backends.resolve("auto", "fp32", "cpu") == backends.AUTO_ORDER["cpu", "fp32"][0]
    assert backends.resolve("auto", "fp16", "cuda") == "torch"  # only torch runs on CUDA in fp16


def test_auto_without_any_fp16_cpu_backend_is_an_error(monkeypatch) -> None:
    monkeypatch.setattr(backends, "is_installed", lambda n: n == "torch")
    with pytest.raises(ValueError, match="no backend runs precision 'fp16' on cpu"):
        backends.resolve("auto", "fp16", "cpu")


def test_bad_names_and_combinations_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="backend must be one of auto, torch"):
        backends.resolve("tensorrt")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16, int8"):
        backends.resolve("torch", "int4")
    with pytest.raises(ValueError, match="'torch' does not run precision 'int8' on cpu"):
        backends.resolve("torch", "int8")
    with pytest.raises(ValueError, match="'onnxruntime' does not run precision 'bf16' on cpu"):
        backends.resolve("onnxruntime", "bf16", "cpu")
    with pytest.raises(ValueError, match="'openvino' does not run precision 'fp32' on cuda"):
        backends.resolve("openvino", "fp32", "cuda")


@pytest.mark.parametrize("name,extra", [("openvino", "depthany[openvino,export]"),
                                        ("onnxruntime", "depthany[export]")])
def test_missing_engine_names_the_extra(monkeypatch, name, extra) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: None if m == name else real(m, *a))
    with pytest.raises(backends.BackendUnavailable, match=extra.replace("[", r"\[").replace("]", r"\]")):
        backends.resolve(name, "fp32", "cpu")


# -------------------------------------------------------------------------------------------- predictor


@pytest.mark.skipif(not _installed("onnxruntime"), reason="onnxruntime not installed")
def test_predictor_with_engine_backend(smooth_image, tmp_path, onnx_cache) -> None:  # noqa: F811
    from depthany.predictor import DepthPredictor
    from depthany.weights import save_weights

    m, spec = tiny_model(seed=0), tiny_spec()
    exact = DepthPredictor(m, spec, "cpu").predict(smooth_image)
    direct = DepthPredictor(m, spec, "cpu", backend="onnxruntime")
    assert direct.backend == "onnxruntime" and next(m.parameters()).device.type == "cpu"  # user's model kept
    fast = direct.predict(smooth_image)
    assert fast.meta["backend"] == "onnxruntime" and exact.meta["backend"] == "torch"
    assert fast.values.shape == exact.values.shape == smooth_image.shape[:2]
    assert max_rel_error(fast.values, exact.values) <= EXACT_TOLERANCE
    weights = save_weights(m.state_dict(), spec, tmp_path / "tiny.safetensors", "depthany")
    loaded = DepthPredictor.from_pretrained(weights=weights, backend="onnxruntime")
    assert next(loaded.model.parameters()).device.type == "meta"  # one copy of the weights: the engine's
    np.testing.assert_allclose(loaded.predict(smooth_image).values, fast.values, rtol=0, atol=1e-6)


def test_predictor_auto_that_resolves_to_torch_keeps_the_eager_call(monkeypatch, smooth_image) -> None:
    from depthany.predictor import DepthPredictor

    monkeypatch.setattr(backends, "is_installed", lambda n: n == "torch")
    p = DepthPredictor(tiny_model(), tiny_spec(), "cpu", backend="auto")
    from depthany.backends.torch_backend import TorchRunner

    assert p.backend == "torch" and isinstance(p.runner, TorchRunner) and p.runner.model is p.model


# ------------------------------------------------------------------------------------------- measures


def test_error_measures_on_known_values() -> None:
    ref = np.array([[1.0, 2.0], [4.0, 0.0]])
    out = np.array([[1.1, 2.0], [4.0, 0.4]])
    assert max_rel_error(out, ref) == pytest.approx(0.4 / 4.0)
    # pixel 0 (ref 0) is below the 1% floor and left out: mean(0.1, 0, 0) = 1/30
    assert absrel(out, ref) == pytest.approx((0.1 / 1.0) / 3)
    assert max_rel_error(ref, ref) == 0.0 and absrel(ref, ref) == 0.0
    # relative to the range, not the maximum: a map on an offset of 10 varying by 1 (max |ref| would give 0.009)
    assert max_rel_error(np.array([10.0, 11.0, 10.5]), np.array([10.0, 11.0, 10.6])) == pytest.approx(0.1)
    assert max_rel_error(np.full(3, 2.0), np.full(3, 4.0)) == pytest.approx(0.5)  # constant: max |ref|
    assert max_rel_error(np.ones(3), np.zeros(3)) == 1.0  # all zero: the absolute error
    with pytest.raises(ValueError, match="shapes differ"):
        max_rel_error(out, ref[:1])


def test_onnx_cache_reuses_and_separates(onnx_cache) -> None:  # noqa: F811
    if importlib.util.find_spec("onnxscript") is None:
        pytest.skip("onnxscript not installed")
    from depthany.backends.onnx_cache import model_onnx, weights_digest

    a, b = tiny_model(seed=0), tiny_model(seed=1)
    assert weights_digest(a) == weights_digest(tiny_model(seed=0))
    assert weights_digest(a) != weights_digest(b)
    p = model_onnx(a, "tiny")
    mtime = p.stat().st_mtime_ns
    assert model_onnx(tiny_model(seed=0), "tiny") == p and p.stat().st_mtime_ns == mtime  # no re-export


@pytest.mark.slow
@pytest.mark.parametrize("size", [(518, 518), (518, 686)])
def test_vits_backends_within_tolerance(size, onnx_cache) -> None:  # noqa: F811
    """ViT-S with random weights at the two target sizes: fp32 exact (within 1e-5 of PyTorch fp32, or no
    further from float64 than PyTorch fp32 is: see depthany.export.parity), reduced precision <= 1.5 % AbsRel."""
    import copy

    from depthany import zoo
    from depthany.models import DepthAnything
    from weights_helpers import random_state

    spec = zoo.get_spec("da2-small")
    m = DepthAnything(spec.arch)
    m.load_state_dict(random_state(spec.arch, 0))
    m.eval()
    x = tiny_input(1, *size)
    m64 = copy.deepcopy(m).double()  # outside inference mode: the pos-embed cache reads version counters
    with torch.inference_mode():
        ref = m(x)
        ref64 = m64(x.double())
    ref_err = max_rel_error(ref, ref64)
    for name in backends.available_backends():
        for precision in backends.INFOS[name].precisions["cpu"]:
            out = backends.make_runner(name, m, precision, "cpu", name="vits-test")(x)
            if precision == "fp32":
                err, err64 = max_rel_error(out, ref), max_rel_error(out, ref64)
                assert err <= EXACT_TOLERANCE or err64 <= ref_err, (name, err, err64, ref_err)
            else:
                assert absrel(out, ref) <= REDUCED_TOLERANCE, (name, precision, absrel(out, ref))


def test_fp32_turns_tf32_off_and_restores_it() -> None:
    """The flags are plain Python state, so this holds without a GPU: strict fp32 on every device."""
    from depthany.precision import autocast, is_strict_fp32, strict_fp32

    cudnn_before, mm_before = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")  # what a user who wants TF32 matmuls sets
        torch.backends.cudnn.allow_tf32 = True
        with strict_fp32():
            assert torch.backends.cudnn.allow_tf32 is False and torch.backends.cuda.matmul.allow_tf32 is False
            assert torch.get_float32_matmul_precision() == "highest" and is_strict_fp32()
        assert torch.backends.cudnn.allow_tf32 is True and torch.get_float32_matmul_precision() == "high"
        with autocast("cpu", "bf16"):  # reduced precision leaves the user's settings alone
            assert torch.backends.cudnn.allow_tf32 is True and torch.get_float32_matmul_precision() == "high"
    finally:
        torch.backends.cudnn.allow_tf32 = cudnn_before
        torch.set_float32_matmul_precision(mm_before)


@pytest.mark.skipif(not _installed("openvino"), reason="openvino not installed")
def test_openvino_compiles_from_a_cached_ir_of_the_export(onnx_cache) -> None:  # noqa: F811
    """The OpenVINO runner compiles from an IR converted once from the ONNX export (its weights memory-mapped,
    less resident memory): same outputs as compiling the ONNX file, converted once and reused."""
    from depthany.backends.onnx_cache import model_onnx
    from depthany.backends.openvino_backend import OpenVinoRunner, cached_ir

    model = tiny_model()
    runner = backends.make_runner("openvino", model, "fp32", name="tiny", threads=1)
    onnx = model_onnx(model, "tiny")
    ir = onnx.with_suffix(".ir.xml")
    assert runner._onnx_path == str(ir) and ir.is_file() and ir.with_suffix(".bin").is_file()
    stamp = ir.stat().st_mtime_ns
    assert cached_ir(onnx) == ir and ir.stat().st_mtime_ns == stamp  # reused, not rewritten
    x = tiny_input(1, 42, 56)
    from_onnx = OpenVinoRunner(onnx, "fp32", threads=1)(x)
    torch.testing.assert_close(runner(x), from_onnx, rtol=0, atol=1e-6)
    exact = torch_backend_ref(model, x)
    assert float((runner(x) - exact).abs().max() / (exact.max() - exact.min())) < backends.EXACT_TOLERANCE


def torch_backend_ref(model, x):
    from depthany.backends.torch_backend import TorchRunner

    return TorchRunner(model, "fp32")(x)
