"""ONNX export: the matrix form of the official positional-embedding resize, dynamic-shape exactness, parity
reports. The exact path (PyTorch eager fp32) is the reference everywhere."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from backend_helpers import TEST_SIZES, onnx_cache, tiny_input, tiny_model  # noqa: F401 (fixture)
from depthany.models.vit import interpolate_pos_embed

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

# ------------------------------------------------------------------------------------------- pos-embed matrices


@pytest.mark.parametrize("ph", [1, 2, 20, 36, 37, 38, 49, 74, 100])
@pytest.mark.parametrize("pw", [1, 37, 49, 100])
def test_matrix_resize_matches_official_rule(ph, pw) -> None:
    from depthany.export.posembed import resize_pos_embed

    pos = torch.randn(1, 1 + 37 * 37, 16, generator=torch.Generator().manual_seed(ph * 1000 + pw))
    ref = interpolate_pos_embed(pos, 37, ph, pw)
    out = resize_pos_embed(pos, 37, ph, pw)
    assert out.shape == ref.shape == (1, 1 + ph * pw, 16)
    if ph == pw == 37:
        assert torch.equal(out, ref)  # the official 518x518 shortcut, bit for bit
    else:
        assert float((out - ref).abs().max() / ref.abs().max()) < 1e-6


def test_interpolation_matrix_is_torch_bicubic_on_a_basis() -> None:
    """Each column of the matrix is F.interpolate applied to a one-hot vector with the official scale."""
    from depthany.export.posembed import bicubic_matrix

    for n in (5, 20, 49):
        basis = torch.eye(37).reshape(37, 1, 37, 1)
        true = F.interpolate(basis, scale_factor=((n + 0.1) / 37, 1.0), mode="bicubic")[:, 0, :, 0].T
        mine = bicubic_matrix(n, 37, torch.arange(n, dtype=torch.float32))
        assert mine.shape == (n, 37)
        assert float((mine - true).abs().max()) < 3e-7
        assert torch.allclose(mine.sum(1), torch.ones(n), atol=1e-6)  # partition of unity


def test_size_based_resize_would_not_be_exact() -> None:
    """Why the matrices exist: F.interpolate(size=...) (what exporters handle) samples elsewhere."""
    pos = torch.randn(1, 1 + 37 * 37, 8, generator=torch.Generator().manual_seed(0))
    grid = pos[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2)
    by_size = F.interpolate(grid, size=(37, 49), mode="bicubic").permute(0, 2, 3, 1).reshape(1, -1, 8)
    official = interpolate_pos_embed(pos, 37, 37, 49)[:, 1:]
    assert float((by_size - official).abs().max()) > 1e-2


def test_exportable_restores_the_model() -> None:
    from depthany.export import exportable

    m = tiny_model()
    x = tiny_input(1, 42, 56)
    with torch.no_grad():
        before = m(x)
        with exportable(m):
            inside = m(x)
        after = m(x)
    assert "pos_embed_for" not in vars(m.pretrained)
    assert torch.equal(before, after)
    assert float((inside - before).abs().max() / before.abs().max()) < 1e-5


# --------------------------------------------------------------------------------------------------- the file


@pytest.fixture(scope="module")
def exported(onnx_cache):  # noqa: F811
    """The tiny model's dynamic ONNX file (from the shared test cache)."""
    from depthany.backends.onnx_cache import model_onnx

    m = tiny_model()
    return m, model_onnx(m, "tiny")


@pytest.mark.parametrize("b,h,w", TEST_SIZES)
def test_dynamic_onnx_is_exact_at_every_size(exported, b, h, w) -> None:
    ort = pytest.importorskip("onnxruntime")
    m, path = exported
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    x = tiny_input(b, h, w, seed=h + w)
    with torch.no_grad():
        ref = m(x).numpy()
    out = sess.run(["depth"], {"image": x.numpy()})[0]
    assert out.shape == ref.shape == (b, h, w)
    assert abs(out - ref).max() / abs(ref).max() < 1e-5


def test_parity_report_passes_and_is_written_beside_the_file(exported, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    import shutil

    from depthany.export import parity_path, parity_report

    m, path = exported
    local = shutil.copy(path, tmp_path / "tiny.onnx")
    report = parity_report(m, local, sizes=[(1, 42, 56), (2, 28, 70)], engines=["onnxruntime"], meta={"x": 1})
    assert report["ok"] is True and report["x"] == 1
    assert [(r["batch"], r["height"], r["width"]) for r in report["results"]] == [(1, 42, 56), (2, 28, 70)]
    on_disk = json.loads(parity_path(local).read_text())
    assert on_disk["ok"] is True and on_disk["tolerance"] == 1e-5 and on_disk["sha256"] == report["sha256"]
    assert parity_path(local).name == "tiny.parity.json"


def test_parity_report_fails_for_a_different_model(exported) -> None:
    """The check can fail: the file compared with other weights is far outside the tolerance."""
    pytest.importorskip("onnxruntime")
    from depthany.export import parity_report

    _, path = exported
    report = parity_report(tiny_model(seed=1), path, sizes=[(1, 42, 56)], engines=["onnxruntime"], write=False)
    assert report["ok"] is False and report["results"][0]["max_rel"] > 1e-2


def test_export_rejects_bad_sizes(tmp_path) -> None:
    from depthany.export import export_onnx

    with pytest.raises(ValueError, match="multiples of 14"):
        export_onnx(tiny_model(), tmp_path / "x.onnx", size=(500, 518))
    with pytest.raises(ValueError, match="at least 28x28"):
        export_onnx(tiny_model(), tmp_path / "x.onnx", size=(14, 28))


def test_missing_exporter_names_the_extra(monkeypatch, tmp_path) -> None:
    import importlib.util

    from depthany.export import ExportError, export_onnx

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    with pytest.raises(ExportError, match=r"depthany\[export\]"):
        export_onnx(tiny_model(), tmp_path / "x.onnx")


# ----------------------------------------------------------------------------------------------------- the CLI


def test_export_cli_writes_file_and_parity_report(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    from click.testing import CliRunner

    from conftest import tiny_spec
    from depthany.cli.main import cli
    from depthany.weights import save_weights

    weights = save_weights(tiny_model().state_dict(), tiny_spec(), tmp_path / "tiny.safetensors", "depthany")
    out = tmp_path / "tiny.onnx"
    res = CliRunner().invoke(cli, ["export", "--weights", str(weights), "-o", str(out),
                                   "--static", "42x56", "--parity-sizes", "42x56,56x42"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "tiny.parity.json").read_text())
    rows = {(r["height"], r["width"]): r for r in report["results"] if r["engine"] == "onnxruntime"}
    assert rows[(42, 56)]["ok"] is True
    assert rows[(56, 42)]["ok"] is None and "skipped" in rows[(56, 42)]  # a static file takes one size only
    again = CliRunner().invoke(cli, ["export", "--weights", str(weights), "-o", str(out)])
    assert again.exit_code != 0 and "--overwrite" in again.output


def test_export_cli_rejects_bad_static_size(tmp_path) -> None:
    from click.testing import CliRunner

    from depthany.cli.main import cli

    res = CliRunner().invoke(cli, ["export", "da2-small", "-o", str(tmp_path / "x.onnx"), "--static", "500x518"])
    assert res.exit_code == 2 and "multiples of 14" in res.output


@pytest.mark.slow
def test_vits_dynamic_export_parity_at_default_sizes(tmp_path) -> None:
    """ViT-S (random weights): every default probe size, ONNX Runtime and OpenVINO f32, within 1e-5."""
    pytest.importorskip("onnxruntime")
    from depthany import zoo
    from depthany.export import export_onnx, parity_report
    from depthany.models import DepthAnything
    from weights_helpers import random_state

    spec = zoo.get_spec("da2-small")
    m = DepthAnything(spec.arch)
    m.load_state_dict(random_state(spec.arch, 0))
    path = export_onnx(m.eval(), tmp_path / "vits.onnx")
    report = parity_report(m, path)
    assert report["ok"] is True, json.dumps(report["results"], indent=1)
    assert len(report["results"]) >= 6
