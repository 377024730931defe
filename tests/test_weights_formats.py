"""Real files in every layout for the vits, vitb and mini architectures: write, read back, strict load, compare.

One random state dict per encoder size is built (without a module) and reused; every case writes it in one
layout, reads it with :func:`read_checkpoint`, loads it with :func:`load_model` and checks every tensor is
bitwise the original. The transformers >= 5 names come from transformers itself (its in-memory state dict).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from depthany import zoo
from depthany.models import DepthAnything
from depthany.weights import WeightsError, load_into, load_model, read_checkpoint, save_weights
from depthany.weights.config import v1_hub_config
from weights_helpers import random_state, tensors_equal

CASES = [
    ("da1-small", "official"), ("da1-small", "v1_hub"), ("da1-small", "v1_hub_safetensors"),
    ("da1-small", "transformers"), ("da1-small", "depthany"), ("da1-small", "dinov2"),
    ("da2-small", "official_zoo_name"), ("da2-small", "transformers"), ("da2-small", "transformers_v5_names"),
    ("da2-small", "depthany"), ("da2-small", "dinov2"),
    ("da2-metric-indoor-small", "official"), ("da2-metric-indoor-small", "transformers"),
    ("da2-metric-indoor-small", "depthany"),
    ("da2-base", "official"), ("da2-base", "transformers"), ("da2-base", "depthany"), ("da1-base", "v1_hub"),
    ("da2-mini", "official"), ("da2-mini", "transformers"), ("da2-mini", "depthany"), ("da2-mini", "dinov2"),
]
LAYOUT = {"official": "official", "official_zoo_name": "official", "v1_hub": "v1_hub",
          "v1_hub_safetensors": "v1_hub", "transformers": "transformers", "transformers_v5_names": "transformers",
          "depthany": "depthany", "dinov2": "dinov2"}
SELF_DESCRIBING = {"v1_hub", "v1_hub_safetensors", "transformers", "transformers_v5_names", "depthany"}


@pytest.fixture(scope="module")
def states() -> dict[str, dict[str, torch.Tensor]]:
    """Random state dicts, one per encoder size (V1, V2 and metric checkpoints share the key set)."""
    return {}


def _state(states: dict, name: str) -> dict[str, torch.Tensor]:
    enc = zoo.get_spec(name).arch.encoder.name
    if enc not in states:
        states[enc] = random_state(zoo.get_spec(name).arch, seed=len(states))
    return states[enc]


def write(sd: dict[str, torch.Tensor], name: str, fmt: str, folder: Path) -> Path:
    """Write ``sd`` for zoo model ``name`` in layout ``fmt`` (including the variants not produced by save)."""
    spec = zoo.get_spec(name)
    if fmt == "official":
        return save_weights(sd, spec, folder / "renamed.pth", "official")
    if fmt == "official_zoo_name":
        return save_weights(sd, spec, folder / Path(spec.weights[0].filename or "").name, "official")
    if fmt == "v1_hub_safetensors":  # the newer PyTorchModelHubMixin layout: official keys in model.safetensors
        out = folder / "hub-st"
        out.mkdir()
        (out / "config.json").write_text(json.dumps(v1_hub_config(spec.arch)))
        save_file({k: v.contiguous() for k, v in sd.items()}, str(out / "model.safetensors"))
        return out
    if fmt == "transformers_v5_names":
        transformers = pytest.importorskip("transformers")
        legacy = save_weights(sd, spec, folder / "legacy", "transformers")
        theirs = transformers.DepthAnythingForDepthEstimation.from_pretrained(legacy)
        v5 = {k: v.contiguous() for k, v in theirs.state_dict().items()}
        assert any(".attention.q_proj." in k for k in v5)  # transformers really uses the new names in memory
        out = folder / "v5"
        out.mkdir()
        (out / "config.json").write_text((legacy / "config.json").read_text())
        save_file(v5, str(out / "model.safetensors"))
        return out
    ext = {"depthany": "x.safetensors", "dinov2": "enc.pth"}.get(fmt, fmt)
    return save_weights(sd, spec, folder / ext, fmt)  # type: ignore[arg-type]


def _empty_model(arch: zoo.Arch) -> DepthAnything:
    with torch.device("meta"):
        model = DepthAnything(arch)
    return model.to_empty(device="cpu")


@pytest.mark.parametrize("name,fmt", CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_every_layout_round_trips_bitwise(states, name, fmt, tmp_path) -> None:
    spec = zoo.get_spec(name)
    sd = _state(states, name)
    path = write(sd, name, fmt, tmp_path)
    ckpt = read_checkpoint(path)
    assert ckpt.layout == LAYOUT[fmt]
    if fmt == "dinov2":
        assert set(ckpt.state_dict) == {k for k in sd if k.startswith("pretrained.")}
        model = _empty_model(spec.arch)
        for p in model.depth_head.parameters():
            p.data.zero_()
        report = load_into(model, ckpt, encoder_only=True)
        assert report.ok and not report.defaulted
        got = model.state_dict()
        assert tensors_equal({k: got[k] for k in ckpt.state_dict}, ckpt.state_dict)
        assert all(float(p.detach().abs().sum()) == 0 for p in model.depth_head.parameters())  # head untouched
        with pytest.raises(WeightsError, match="no depth head"):
            load_model(name, path)
        return
    net, got_spec = load_model(name, path)
    assert got_spec.name == name and got_spec.extra["weights"] == str(path)
    assert tensors_equal(net.state_dict(), sd)
    if fmt in SELF_DESCRIBING or fmt == "official_zoo_name":  # the file alone says what it is
        _, own = load_model(str(path))
        assert own.arch == spec.arch


def test_file_without_description_needs_model_name(states, tmp_path) -> None:
    path = write(_state(states, "da2-small"), "da2-small", "official", tmp_path)
    with pytest.raises(WeightsError, match=r"renamed\.pth.*--model.*da1-small, da2-small"):
        load_model(str(path))


def test_vitb_weights_for_small_model_is_a_clear_error(states, tmp_path) -> None:
    path = write(_state(states, "da2-base"), "da2-base", "official", tmp_path)
    with pytest.raises(WeightsError) as e:
        load_model("da2-small", path)
    msg = str(e.value)
    assert str(path) in msg and "wrong shape" in msg
    assert "pretrained.cls_token: model [1, 1, 384] vs file [1, 1, 768]" in msg


def test_small_weights_for_large_model_lists_missing_blocks(states, tmp_path) -> None:
    path = write(_state(states, "da2-small"), "da2-small", "official", tmp_path)
    with pytest.raises(WeightsError, match=r"missing key\(s\): .*pretrained\.blocks\.1[2-9]\."):
        load_model("da2-large", path)


def test_file_that_describes_another_model_is_refused(states, tmp_path) -> None:
    path = write(_state(states, "da1-small"), "da1-small", "transformers", tmp_path)
    with pytest.raises(WeightsError, match="describes v1 vits.*da2-small is v2 vits"):
        load_model("da2-small", path)


def test_v2_checkpoint_run_as_v1_gives_different_output(states, tmp_path) -> None:
    """V1 and V2 share every key and shape, so only the taps tell them apart: strict loading cannot catch a
    V2 file run as V1, which is why self-describing layouts and file-name matching matter."""
    path = write(_state(states, "da2-small"), "da2-small", "official_zoo_name", tmp_path)
    v2, spec = load_model(str(path))  # recognised by its published file name
    assert spec.name == "da2-small"
    v1, _ = load_model("da1-small", path)
    x = torch.randn(1, 3, 70, 98, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = v2(x), v1(x)
    assert float((a - b).abs().max()) > 1e-2 * float(a.max() - a.min())
