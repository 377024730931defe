"""Wrong, corrupt and hostile files: every one is a WeightsError naming the file, and nothing runs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_spec
from depthany import zoo
from depthany.models import DepthAnything
from depthany.weights import WeightsError, load_into, load_model, read_checkpoint, save_weights
from depthany.weights.config import spec_to_json
from weights_helpers import random_state, tensors_equal

TINY = tiny_spec()


@pytest.fixture(scope="module")
def tiny_sd() -> dict[str, torch.Tensor]:
    return random_state(TINY.arch, seed=1)


class _OpensAFile:
    """Unpickling this calls ``open(path, "w")``: harmless, but visible, like any code a pickle can run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_malicious_pickle_is_refused_and_does_not_run(tmp_path, tiny_sd, zip_format) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pth"
    torch.save({**tiny_sd, "payload": _OpensAFile(str(marker))}, bad, _use_new_zipfile_serialization=zip_format)
    # the payload is real: a plain unpickle runs it
    torch.load(bad, weights_only=False)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(WeightsError, match=r"evil\.pth: refused.*weights_only=True"):
        read_checkpoint(bad)
    with pytest.raises(WeightsError, match=r"evil\.pth"):
        load_model("da2-small", bad)
    assert not marker.exists()


def test_image_renamed_to_pth(tmp_path) -> None:
    p = tmp_path / "photo.pth"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(p, format="PNG")
    with pytest.raises(WeightsError, match=r"photo\.pth: not a recognised weights file \(a PNG image\)"):
        load_model("da2-small", p)
    jpg = tmp_path / "photo.safetensors"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(jpg, format="JPEG")
    with pytest.raises(WeightsError, match=r"photo\.safetensors: not a recognised weights file \(a JPEG image\)"):
        read_checkpoint(jpg)


def test_zero_byte_file(tmp_path) -> None:
    p = tmp_path / "empty.pth"
    p.touch()
    with pytest.raises(WeightsError, match=r"empty\.pth: file is empty"):
        load_model("da2-small", p)


@pytest.mark.parametrize("fmt,name", [("official", "w.pth"), ("depthany", "w.safetensors")])
def test_truncated_file(tmp_path, tiny_sd, fmt, name) -> None:
    p = save_weights(tiny_sd, TINY, tmp_path / name, fmt)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=rf"{name}: .*(truncated|corrupt)"):
        read_checkpoint(p)


def test_random_bytes_and_missing_path(tmp_path) -> None:
    p = tmp_path / "noise.bin"
    p.write_bytes(os.urandom(4096))
    with pytest.raises(WeightsError, match=r"noise\.bin: not a recognised weights file \(unknown format\)"):
        read_checkpoint(p)
    with pytest.raises(WeightsError, match=r"nowhere\.pth: no such weights file"):
        load_model("da2-small", tmp_path / "nowhere.pth")


def test_key_report_names_missing_unexpected_and_misshaped(tmp_path, tiny_sd) -> None:
    sd = dict(tiny_sd)
    del sd["depth_head.scratch.output_conv1.weight"]
    sd["depth_head.extra.weight"] = torch.zeros(3)
    sd["pretrained.norm.weight"] = torch.zeros(7)
    p = save_weights(sd, TINY, tmp_path / "bad.pth", "official")
    model = DepthAnything(TINY.arch)
    with pytest.raises(WeightsError) as e:
        load_into(model, read_checkpoint(p))
    msg = str(e.value)
    assert "bad.pth" in msg
    assert "1 missing key(s): depth_head.scratch.output_conv1.weight" in msg
    assert "1 unexpected key(s): depth_head.extra.weight" in msg
    assert "pretrained.norm.weight: model [32] vs file [7]" in msg


def test_absent_mask_token_is_optional(tmp_path, tiny_sd) -> None:
    sd = {k: v for k, v in tiny_sd.items() if k != "pretrained.mask_token"}
    model = DepthAnything(TINY.arch)
    report = load_into(model, read_checkpoint(save_weights(sd, TINY, tmp_path / "m.pth", "official")))
    assert report.ok and report.defaulted == ["pretrained.mask_token"]
    assert float(model.pretrained.mask_token.detach().abs().sum()) == 0


def test_dinov2_file_needs_encoder_only(tmp_path, tiny_sd) -> None:
    p = save_weights(tiny_sd, TINY, tmp_path / "dinov2_vits14_pretrain.pth", "dinov2")
    ckpt = read_checkpoint(p)
    with pytest.raises(WeightsError, match="no depth head.*encoder_only=True"):
        load_into(DepthAnything(TINY.arch), ckpt)
    with pytest.raises(WeightsError, match="no depth head"):
        load_model(str(p))


def test_dinov2_chunked_blocks_and_registers(tmp_path, tiny_sd) -> None:
    enc = {k.removeprefix("pretrained."): v for k, v in tiny_sd.items() if k.startswith("pretrained.")}
    # DINOv2 training checkpoints with block_chunks=2: blocks.<chunk>.<global index>
    chunked = {(f"blocks.{int(k.split('.')[1]) // 3}.{k[len('blocks.'):]}" if k.startswith("blocks.") else k): v
               for k, v in enc.items()}
    torch.save(chunked, tmp_path / "chunked.pth")
    ckpt = read_checkpoint(tmp_path / "chunked.pth")
    assert ckpt.layout == "dinov2"
    assert tensors_equal(ckpt.state_dict, {k: v for k, v in tiny_sd.items() if k.startswith("pretrained.")})
    torch.save({**enc, "register_tokens": torch.zeros(1, 4, 32)}, tmp_path / "reg.pth")
    with pytest.raises(WeightsError, match=r"reg\.pth: DINOv2 with registers"):
        read_checkpoint(tmp_path / "reg.pth")


def test_unknown_layouts(tmp_path) -> None:  # ZoeDepth files: tests/test_zoedepth_weights.py
    torch.save({"encoder.conv.weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match=r"other\.pth: unknown key layout \(first keys: encoder\.conv\.weight"):
        read_checkpoint(tmp_path / "other.pth")
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match=r"list\.pth: expected a state dict, found a list"):
        read_checkpoint(tmp_path / "list.pth")


def test_transformers_file_with_foreign_key(tmp_path, tiny_sd) -> None:
    folder = save_weights(tiny_sd, TINY, tmp_path / "hf", "transformers")
    from safetensors.torch import load_file, save_file

    sd = load_file(folder / "model.safetensors")
    sd["neck.something_new.weight"] = torch.zeros(2)
    save_file(sd, folder / "model.safetensors")
    with pytest.raises(WeightsError, match=r"model\.safetensors: transformers-layout file .*something_new"):
        read_checkpoint(folder)


def test_bad_config_json(tmp_path, tiny_sd) -> None:
    folder = save_weights(tiny_sd, TINY, tmp_path / "hf", "transformers")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(WeightsError, match=r"config\.json: not valid JSON"):
        read_checkpoint(folder)
    cfg = {"model_type": "depth_anything", "head_hidden_size": 64}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match=r"config\.json: head_hidden_size 64"):
        read_checkpoint(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(WeightsError, match=r"config\.json: not a Depth Anything config"):
        read_checkpoint(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"hf: folder has neither model\.safetensors nor pytorch_model\.bin"):
        read_checkpoint(folder)


def test_training_checkpoint_wrapper_and_prefixes(tmp_path, tiny_sd) -> None:
    """depthany training checkpoints: {"model": state, "spec": json, ...}, with DDP / compile prefixes."""
    wrapped = {"model": {f"module._orig_mod.{k}": v for k, v in tiny_sd.items()}, "spec": spec_to_json(TINY),
               "step": 7, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}}
    torch.save(wrapped, tmp_path / "last.pt")
    ckpt = read_checkpoint(tmp_path / "last.pt")
    assert ckpt.layout == "official" and ckpt.extra["step"] == 7
    assert ckpt.spec is not None and ckpt.spec.arch == TINY.arch
    assert tensors_equal(ckpt.state_dict, tiny_sd)
    net, spec = load_model(str(tmp_path / "last.pt"))
    assert spec.name == TINY.name and tensors_equal(net.state_dict(), tiny_sd)


def test_depthany_file_keeps_spec_and_dtype(tmp_path, tiny_sd) -> None:
    spec = tiny_spec("metric", "v2", 80.0)
    p = save_weights(tiny_sd, spec, tmp_path / "m.safetensors", "depthany", dtype=torch.bfloat16)
    ckpt = read_checkpoint(p)
    assert ckpt.spec is not None
    assert ckpt.spec.arch == spec.arch and ckpt.spec.preprocess == spec.preprocess
    assert all(v.dtype == torch.bfloat16 for v in ckpt.state_dict.values())
    net, got = load_model(str(p))
    assert got.arch.max_depth == 80.0 and next(net.parameters()).dtype == torch.float32
    assert torch.equal(net.state_dict()["pretrained.cls_token"], tiny_sd["pretrained.cls_token"].bfloat16().float())


def test_unknown_model_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown model 'da9-small'.*da2-small"):
        load_model("da9-small")
    assert zoo.get_spec("DA2-small".lower()).name == "da2-small"
