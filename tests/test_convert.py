"""``depthany convert``: lossless chains through every layout, dtype casts, and errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from depthany import zoo
from depthany.cli.convert import _FORMATS
from depthany.cli.main import cli
from depthany.weights import OUT_FORMATS, read_checkpoint, save_weights
from depthany.weights.convert import convert_weights
from weights_helpers import random_state, tensors_equal


@pytest.fixture(scope="module")
def v1_file(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A random V1-small checkpoint saved the way the official Space publishes it (flat .pth)."""
    sd = random_state(zoo.get_spec("da1-small").arch, seed=11)
    path = tmp_path_factory.mktemp("in") / "renamed.pth"
    torch.save(sd, path)
    return path, sd


def run(*args: str | Path, ok: bool = True) -> str:
    result = CliRunner().invoke(cli, ["convert", *map(str, args)])
    assert (result.exit_code == 0) == ok, result.output
    if not ok:
        assert result.exit_code == 1 and "Traceback" not in result.output and result.exception is not None
    return result.output


def test_cli_formats_match_library() -> None:
    assert _FORMATS == OUT_FORMATS


def test_chain_through_every_layout_is_bitwise_lossless(v1_file, tmp_path) -> None:
    """official -> depthany -> transformers -> v1_hub -> official -> dinov2: same tensors at every step."""
    src, sd = v1_file
    out = run(src, tmp_path / "a.safetensors", "--to", "depthany", "--model", "da1-small")
    assert "wrote" in out and "da1-small" in out and "239 tensors" in out
    run(tmp_path / "a.safetensors", tmp_path / "b", "--to", "transformers")
    run(tmp_path / "b", tmp_path / "c", "--to", "v1_hub")
    run(tmp_path / "c", tmp_path / "d.pth", "--to", "official")
    for path, layout in [("a.safetensors", "depthany"), ("b", "transformers"), ("c", "v1_hub"), ("d.pth", "official")]:
        ckpt = read_checkpoint(tmp_path / path)
        assert ckpt.layout == layout and tensors_equal(ckpt.state_dict, sd)
        if layout != "official":
            assert ckpt.arch == zoo.get_spec("da1-small").arch
    out = run(tmp_path / "d.pth", tmp_path / "e.pth", "--to", "dinov2", "--model", "da1-small")
    assert "175 tensors" in out  # 7 + 14 * 12 encoder tensors
    enc = read_checkpoint(tmp_path / "e.pth")
    assert enc.layout == "dinov2"
    assert tensors_equal(enc.state_dict, {k: v for k, v in sd.items() if k.startswith("pretrained.")})
    raw = torch.load(tmp_path / "e.pth", weights_only=True)
    assert "blocks.0.attn.qkv.weight" in raw and "cls_token" in raw  # the DINOv2 hub names, no prefix


def test_metric_model_keeps_max_depth(v1_file, tmp_path) -> None:
    _, sd = v1_file
    spec = zoo.get_spec("da2-metric-outdoor-small")
    src = save_weights(sd, spec, tmp_path / "m.pth", "official")
    run(src, tmp_path / "hf", "--to", "transformers", "--model", spec.name)
    run(tmp_path / "hf", tmp_path / "m.safetensors", "--to", "depthany")
    ckpt = read_checkpoint(tmp_path / "m.safetensors")
    assert ckpt.arch == spec.arch and ckpt.arch.max_depth == 80.0 and tensors_equal(ckpt.state_dict, sd)


@pytest.mark.parametrize("dtype,torch_dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_dtype_cast(v1_file, tmp_path, dtype, torch_dtype) -> None:
    src, sd = v1_file
    out = run(src, tmp_path / "h.safetensors", "--to", "depthany", "--model", "da1-small", "--dtype", dtype)
    assert dtype in out
    ckpt = read_checkpoint(tmp_path / "h.safetensors")
    assert tensors_equal(ckpt.state_dict, {k: v.to(torch_dtype) for k, v in sd.items()})
    run(tmp_path / "h.safetensors", tmp_path / "back.pth", "--to", "official", "--dtype", "fp32")
    back = read_checkpoint(tmp_path / "back.pth").state_dict
    assert tensors_equal(back, {k: v.to(torch_dtype).float() for k, v in sd.items()})


def test_existing_output_is_kept_unless_overwrite(v1_file, tmp_path) -> None:
    src, _ = v1_file
    out = tmp_path / "keep.pth"
    out.write_bytes(b"precious")
    msg = run(src, out, "--to", "official", "--model", "da1-small", ok=False)
    assert "keep.pth: already exists; pass --overwrite" in msg and out.read_bytes() == b"precious"
    run(src, out, "--to", "official", "--model", "da1-small", "--overwrite")
    assert read_checkpoint(out).layout == "official"


def test_failed_write_leaves_old_file_and_no_temp(v1_file, tmp_path, monkeypatch) -> None:
    src, _ = v1_file
    out = tmp_path / "old.pth"
    out.write_bytes(b"old")

    def boom(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        convert_weights(src, out, "official", model="da1-small", overwrite=True)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["old.pth"]


def test_wrong_architecture_is_refused_before_writing(v1_file, tmp_path) -> None:
    src, _ = v1_file
    msg = run(src, tmp_path / "x.safetensors", "--to", "depthany", "--model", "da2-base", ok=False)
    assert "renamed.pth: weights do not fit the model (v2 vitb" in msg and "wrong shape" in msg
    assert not (tmp_path / "x.safetensors").exists()


def test_layout_errors(v1_file, tmp_path) -> None:
    src, sd = v1_file
    msg = run(src, tmp_path / "hub", "--to", "v1_hub", "--model", "da2-small", ok=False)
    assert "V1 hub layout only describes" in msg
    msg = run(src, tmp_path / "y.pth", "--to", "official", ok=False)
    assert "renamed.pth" in msg and "--model" in msg
    enc = save_weights(sd, zoo.get_spec("da1-small"), tmp_path / "dinov2_vits14_pretrain.pth", "dinov2")
    msg = run(enc, tmp_path / "z.pth", "--to", "official", ok=False)
    assert "DINOv2 encoder checkpoint has no depth head" in msg
    run(enc, tmp_path / "z16.pth", "--to", "dinov2", "--dtype", "fp16")  # encoder -> encoder is fine
    assert read_checkpoint(tmp_path / "z16.pth").state_dict["pretrained.cls_token"].dtype == torch.float16
    msg = run(src, src, "--to", "official", "--model", "da1-small", "--overwrite", ok=False)
    assert "is the input" in msg
    msg = run(tmp_path / "missing.pth", tmp_path / "o.pth", "--to", "official", ok=False)
    assert "missing.pth: no such weights file" in msg
    msg = run("da2-small", tmp_path / "o.pth", "--to", "official", ok=False)
    assert "da2-small: weights not found on this machine" in msg


def test_absent_mask_token_is_written_as_zeros(v1_file, tmp_path) -> None:
    _, sd = v1_file
    no_mask = {k: v for k, v in sd.items() if k != "pretrained.mask_token"}
    torch.save(no_mask, tmp_path / "port.pth")
    out = run(tmp_path / "port.pth", tmp_path / "full.pth", "--to", "official", "--model", "da1-small")
    assert "pretrained.mask_token absent from the input, written as zeros" in out
    got = read_checkpoint(tmp_path / "full.pth").state_dict
    assert torch.equal(got["pretrained.mask_token"], torch.zeros(1, 384))
    assert tensors_equal({k: got[k] for k in no_mask}, no_mask)


@pytest.mark.slow
def test_vitl_real_file_round_trip(tmp_path) -> None:
    """A full-size ViT-L checkpoint (1.3 GB in fp32): official -> transformers -> depthany -> official."""
    spec = zoo.get_spec("da2-large")
    sd = random_state(spec.arch, seed=12)
    src = save_weights(sd, spec, tmp_path / "depth_anything_v2_vitl.pth", "official")
    convert_weights(src, tmp_path / "hf", "transformers")
    convert_weights(tmp_path / "hf", tmp_path / "l.safetensors", "depthany")
    convert_weights(tmp_path / "l.safetensors", tmp_path / "back.pth", "official")
    assert tensors_equal(read_checkpoint(tmp_path / "back.pth").state_dict, sd)
    from depthany.weights import load_model

    net, got = load_model(str(tmp_path / "hf"))
    assert got.arch == spec.arch and tensors_equal(net.state_dict(), sd)
