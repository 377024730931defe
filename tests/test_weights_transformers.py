"""The transformers layout against transformers itself: key names (legacy on-disk and >= 5 in-memory), configs,
and outputs. Full-size architectures are checked on the meta device, so vitl and vitg cost no memory."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from conftest import TINY_ENCODER
from depthany import zoo
from depthany.models import DepthAnything
from depthany.weights import expected_shapes, load_model, read_checkpoint, save_weights
from depthany.weights.config import arch_from_config, arch_to_transformers_config
from depthany.weights.keymaps import transformers_to_official
from weights_helpers import random_state, tensors_equal

transformers = pytest.importorskip("transformers")

SWIGLU = zoo.EncoderSpec("test-tiny-swiglu", 32, 6, 2, ffn="swiglu")
TINY_ARCHS = {
    "v2": zoo.Arch(TINY_ENCODER, (0, 2, 3, 5), 16, (8, 16, 32, 32)),
    "v1": zoo.Arch(TINY_ENCODER, (2, 3, 4, 5), 16, (8, 16, 32, 32), family="v1"),
    "metric": zoo.Arch(TINY_ENCODER, (0, 2, 3, 5), 16, (8, 16, 32, 32), "metric", 20.0),
    "swiglu": zoo.Arch(SWIGLU, (0, 2, 3, 5), 16, (8, 16, 32, 32)),
}
# 1-based out_indices of transformers' conversion script (huggingface/transformers commit
# 23925e160765f64e73942fe794d73a753c4b5732, src/transformers/models/depth_anything/
# convert_depth_anything_to_hf.py::get_dpt_config); docs/reference/official_facts.md section 1.
OUT_INDICES = {"da1-small": [9, 10, 11, 12], "da1-large": [21, 22, 23, 24], "da2-small": [3, 6, 9, 12],
               "da2-base": [3, 6, 9, 12], "da2-large": [5, 12, 18, 24], "da2-giant": [10, 20, 30, 40]}


# transformers has neither a ZoeDepth-on-Depth-Anything model nor video models nor Depth Anything 3
DA_MODELS = [n for n, s in zoo.MODELS.items() if s.arch.zoe is None and s.video is None and not s.arch.is_da3]


def _spec(arch: zoo.Arch) -> zoo.ModelSpec:
    return zoo.ModelSpec("tiny", arch, zoo.V2_PRE, (), "Apache-2.0")


@pytest.mark.parametrize("name", DA_MODELS)
def test_meta_keys_match_transformers_model(name) -> None:
    """transformers' own module tree (>= 5 names, on meta) maps exactly onto our keys and shapes."""
    arch = zoo.MODELS[name].arch
    config = transformers.DepthAnythingConfig.from_dict(arch_to_transformers_config(arch))
    with torch.device("meta"):
        theirs = transformers.DepthAnythingForDepthEstimation(config)
    mapped = transformers_to_official(theirs.state_dict())
    assert {k: tuple(v.shape) for k, v in mapped.items()} == expected_shapes(arch)


@pytest.mark.parametrize("name", list(OUT_INDICES))
def test_out_indices_match_the_official_conversion(name) -> None:
    cfg = arch_to_transformers_config(zoo.get_spec(name).arch)
    assert cfg["backbone_config"]["out_indices"] == OUT_INDICES[name]


@pytest.mark.parametrize("name", DA_MODELS)
def test_config_round_trip_through_transformers(name) -> None:
    """Our config -> transformers config object -> full and diff-only JSON -> our arch: unchanged. Hub configs
    store only non-default values, so the diff form checks that missing fields take transformers' defaults."""
    arch = zoo.MODELS[name].arch
    config = transformers.DepthAnythingConfig.from_dict(arch_to_transformers_config(arch))
    assert arch_from_config(config.to_dict()) == arch
    assert arch_from_config(json.loads(config.to_json_string(use_diff=True))) == arch


def test_default_config_is_v1_small() -> None:
    """A bare ``DepthAnythingConfig()`` describes the V1 small model (its defaults come from it)."""
    cfg = json.loads(transformers.DepthAnythingConfig().to_json_string(use_diff=True))
    assert arch_from_config(cfg) == zoo.get_spec("da1-small").arch


@pytest.mark.parametrize("kind", list(TINY_ARCHS))
def test_outputs_and_names_agree_with_transformers(kind, tmp_path) -> None:
    """Our file -> transformers: same output at 518; transformers' save_pretrained (legacy names) and its
    in-memory state dict (>= 5 names: q_proj, gate_proj/up_proj ...) -> our reader: bitwise the original."""
    arch = TINY_ARCHS[kind]
    sd = random_state(arch, seed=2)
    folder = save_weights(sd, _spec(arch), tmp_path / "ours", "transformers")
    theirs = transformers.DepthAnythingForDepthEstimation.from_pretrained(folder).eval()
    ours, spec = load_model(str(folder))
    assert spec.arch.encoder.name == "custom-32x6"  # not a zoo size: named after its dimensions
    assert dataclasses.replace(spec.arch, encoder=arch.encoder) == arch
    x = torch.randn(1, 3, 518, 518, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ours(x), theirs(pixel_values=x).predicted_depth
    rng = float(a.max() - a.min())
    assert rng > 0 and float((a - b).abs().max()) <= 1e-4 * rng

    theirs.save_pretrained(tmp_path / "saved")
    assert tensors_equal(read_checkpoint(tmp_path / "saved").state_dict, sd)
    in_memory = theirs.state_dict()
    if kind == "swiglu":
        assert any(".mlp.gate_proj." in k for k in in_memory)
    assert tensors_equal(transformers_to_official(in_memory), sd)


def test_swiglu_gate_is_the_first_half_of_w12() -> None:
    """ViT-G's w12 = [gate; up]: output w3(silu(gate(x)) * up(x)); swapping the halves changes the output."""
    model = DepthAnything(TINY_ARCHS["swiglu"]).eval()
    mlp = model.pretrained.blocks[0].mlp
    x = torch.randn(4, 32, generator=torch.Generator().manual_seed(0))
    gate, up = mlp.w12.weight.chunk(2), mlp.w12.bias.chunk(2)
    expected = mlp.w3(torch.nn.functional.silu(x @ gate[0].T + up[0]) * (x @ gate[1].T + up[1]))
    assert torch.allclose(mlp(x), expected, atol=1e-6)


def test_full_size_small_model_agrees_with_transformers_at_518(tmp_path) -> None:
    """The real ViT-S/DPT widths with weights whose output varies (tests/test_models.py uses near-constant
    random weights, under which a wrong layer tap would stay inside the tolerance)."""
    spec = zoo.get_spec("da2-small")
    sd = random_state(spec.arch, seed=3)
    folder = save_weights(sd, spec, tmp_path / "hf", "transformers")
    theirs = transformers.DepthAnythingForDepthEstimation.from_pretrained(folder).eval()
    ours, _ = load_model("da2-small", folder)
    x = torch.randn(1, 3, 518, 518, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = ours(x), theirs(pixel_values=x).predicted_depth
    rng = float(a.max() - a.min())
    assert rng > 1e-2 * float(a.abs().max()) and float((a - b).abs().max()) <= 1e-4 * rng
