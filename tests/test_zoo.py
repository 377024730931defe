"""The model table against the published facts (depth_anything.md §1-2), and ``depthany models``.

Key names and shapes of every official architecture are checked on the meta device against tables written
here from the reference, so vitl and vitg cost no memory.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

from conftest import put_in_hf_cache
from depthany import zoo
from depthany.cli.main import cli
from depthany.models import DepthAnything
from depthany.weights import expected_shapes

# Reference §1.2-1.3: embed dim, blocks, DPT features, out_channels, FFN.
REFERENCE = {
    "vits": (384, 12, 64, (48, 96, 192, 384), "mlp"),
    "vitb": (768, 12, 128, (96, 192, 384, 768), "mlp"),
    "vitl": (1024, 24, 256, (256, 512, 1024, 1024), "mlp"),
    "vitg": (1536, 40, 384, (1536, 1536, 1536, 1536), "swiglu"),
}
KEY_COUNTS = {"vits": 239, "vitb": 239, "vitl": 407, "vitg": 631}
PUBLISHED_PARAMS = {"vits": 24_785_089, "vitb": 97_470_785, "vitl": 335_315_649, "vitg": 1_258_132_225}
OFFICIAL = [n for n, s in zoo.MODELS.items() if s.arch.encoder.name in REFERENCE and not s.arch.is_da3]


def reference_shapes(enc: str) -> dict[str, tuple[int, ...]]:
    """§2.1 key tables, written out independently of the model code."""
    d, depth, f, c, ffn = REFERENCE[enc]
    s: dict[str, tuple[int, ...]] = {
        "pretrained.cls_token": (1, 1, d), "pretrained.pos_embed": (1, 1370, d), "pretrained.mask_token": (1, d),
        "pretrained.patch_embed.proj.weight": (d, 3, 14, 14), "pretrained.patch_embed.proj.bias": (d,),
        "pretrained.norm.weight": (d,), "pretrained.norm.bias": (d,),
    }
    for i in range(depth):
        b = f"pretrained.blocks.{i}."
        s.update({b + "norm1.weight": (d,), b + "norm1.bias": (d,), b + "attn.qkv.weight": (3 * d, d),
                  b + "attn.qkv.bias": (3 * d,), b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
                  b + "ls1.gamma": (d,), b + "norm2.weight": (d,), b + "norm2.bias": (d,), b + "ls2.gamma": (d,)})
        if ffn == "swiglu":
            s.update({b + "mlp.w12.weight": (8192, 1536), b + "mlp.w12.bias": (8192,),
                      b + "mlp.w3.weight": (1536, 4096), b + "mlp.w3.bias": (1536,)})
        else:
            s.update({b + "mlp.fc1.weight": (4 * d, d), b + "mlp.fc1.bias": (4 * d,),
                      b + "mlp.fc2.weight": (d, 4 * d), b + "mlp.fc2.bias": (d,)})
    h = "depth_head."
    for k in range(4):
        s.update({f"{h}projects.{k}.weight": (c[k], d, 1, 1), f"{h}projects.{k}.bias": (c[k],),
                  f"{h}scratch.layer{k + 1}_rn.weight": (f, c[k], 3, 3)})
    for k, ksz in ((0, 4), (1, 2), (3, 3)):
        s.update({f"{h}resize_layers.{k}.weight": (c[k], c[k], ksz, ksz), f"{h}resize_layers.{k}.bias": (c[k],)})
    for r in range(1, 5):
        n = f"{h}scratch.refinenet{r}."
        s.update({n + "out_conv.weight": (f, f, 1, 1), n + "out_conv.bias": (f,)})
        for unit in ("resConfUnit1", "resConfUnit2"):
            for conv in ("conv1", "conv2"):
                s.update({f"{n}{unit}.{conv}.weight": (f, f, 3, 3), f"{n}{unit}.{conv}.bias": (f,)})
    s.update({f"{h}scratch.output_conv1.weight": (f // 2, f, 3, 3), f"{h}scratch.output_conv1.bias": (f // 2,),
              f"{h}scratch.output_conv2.0.weight": (32, f // 2, 3, 3), f"{h}scratch.output_conv2.0.bias": (32,),
              f"{h}scratch.output_conv2.2.weight": (1, 32, 1, 1), f"{h}scratch.output_conv2.2.bias": (1,)})
    return s


@pytest.mark.parametrize("name", OFFICIAL)
def test_keys_and_shapes_match_the_reference_tables(name) -> None:
    arch = zoo.MODELS[name].arch
    ref = reference_shapes(arch.encoder.name)
    assert len(ref) == KEY_COUNTS[arch.encoder.name]
    assert expected_shapes(arch) == ref


def test_layer_taps_and_max_depth() -> None:
    taps = {n: s.arch.layers for n, s in zoo.MODELS.items()}
    assert taps["da1-small"] == taps["da1-base"] == (8, 9, 10, 11) and taps["da1-large"] == (20, 21, 22, 23)
    assert taps["da2-small"] == taps["da2-base"] == (2, 5, 8, 11)
    assert taps["da2-large"] == taps["da2-metric-indoor-large"] == (4, 11, 17, 23)
    assert taps["da2-giant"] == (9, 19, 29, 39)
    assert {n: s.arch.max_depth for n, s in zoo.MODELS.items() if s.arch.head == "metric"} == {
        f"da2-metric-{d}-{z}": m for d, m in (("indoor", 20.0), ("outdoor", 80.0)) for z in ("small", "base", "large")}


@pytest.mark.parametrize("name,taps", [("da2-large", (4, 11, 17, 23)), ("da1-large", (20, 21, 22, 23))])
def test_large_models_feed_the_head_from_the_right_blocks(name, taps) -> None:
    """A 24-block encoder (narrow, so cheap) wired like the Large models: the head receives the final-norm
    patch tokens of exactly these blocks, shallowest first."""
    arch = zoo.get_spec(name).arch
    narrow = dataclasses.replace(arch.encoder, name="narrow-24", embed_dim=32, num_heads=2)
    model = DepthAnything(dataclasses.replace(arch, encoder=narrow, features=16, out_channels=(8, 16, 32, 32)))
    model.eval()
    outputs: dict[int, torch.Tensor] = {}
    for i, block in enumerate(model.pretrained.blocks):
        block.register_forward_hook(lambda m, a, out, i=i: outputs.__setitem__(i, out))
    received: list[list[torch.Tensor]] = []
    model.depth_head.register_forward_pre_hook(lambda m, args: received.append(args[0]))
    with torch.no_grad():
        model(torch.randn(1, 3, 28, 42))
    expected = [model.pretrained.norm(outputs[i])[:, 1:] for i in taps]
    assert len(received[0]) == 4
    assert all(torch.equal(a, b) for a, b in zip(received[0], expected))


def test_names_aliases_and_preferred_sources() -> None:
    aliases = [a.lower() for s in zoo.MODELS.values() for a in s.aliases]
    assert len(aliases) == len(set(aliases)) and not set(aliases) & set(zoo.MODELS)
    for name, spec in zoo.MODELS.items():
        assert zoo.get_spec(name) is spec
        for alias in spec.aliases:
            assert zoo.get_spec(alias.upper()) is spec
            src = zoo.preferred_source(spec, alias)
            assert src is not None and src.repo_id == alias
    assert zoo.get_spec("depth-anything/Depth-Anything-V2-Small-hf").name == "da2-small"
    assert zoo.get_spec("LiheYoung/depth_anything_vits14").name == "da1-small"
    assert zoo.preferred_source(zoo.get_spec("da2-small"), "da2-small").filename == "depth_anything_v2_vits.pth"


def test_licences() -> None:
    lic = {n: s.licence for n, s in zoo.MODELS.items()}
    assert lic["da2-small"] == "Apache-2.0"
    assert lic["da2-base"] == lic["da2-large"] == lic["da2-giant"] == "CC-BY-NC-4.0"
    untagged = [n for n in lic if n.startswith(("da1-", "da2-metric-"))]
    assert len(untagged) == 9 and all(lic[n].startswith("unspecified") for n in untagged)


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_models_json_lists_every_entry_with_computed_sizes(cache, tmp_path) -> None:
    weights = tmp_path / "depth_anything_v2_metric_vkitti_vits.pth"
    weights.write_bytes(b"cached")  # status only looks for the file
    put_in_hf_cache(cache, "depth-anything/Depth-Anything-V2-Metric-VKITTI-Small", {weights.name: weights})
    rows = {r["name"]: r for r in json.loads(_run("models", "--json"))}
    assert list(rows) == list(zoo.MODELS)
    for name, r in rows.items():
        enc = zoo.MODELS[name].arch.encoder.name
        if enc in PUBLISHED_PARAMS and not zoo.MODELS[name].arch.is_da3:
            assert r["params"] == PUBLISHED_PARAMS[enc]
        assert set(r) == {"name", "family", "encoder", "params", "output", "licence", "cached", "repo", "aliases",
                          "description"}
    assert rows["da2-metric-outdoor-small"]["cached"] == "yes"
    assert rows["da2-small"]["cached"] == "no" and rows["da2-giant"]["cached"] == "not released"
    assert rows["da2-metric-outdoor-small"]["output"] == "metric depth (m), max 80"
    assert rows["da1-large"] | {"aliases": None} == {
        "name": "da1-large", "family": "v1", "encoder": "vitl", "params": 335_315_649, "output": "relative disparity",
        "licence": zoo.V1_LICENCE, "cached": "no", "repo": "LiheYoung/depth_anything_vitl14", "aliases": None,
        "description": "Depth Anything V1 Large: relative disparity"}
    mini = rows[zoo.BUNDLED_NAME]
    assert mini["repo"] == "bundled" and mini["cached"] in ("yes", "not available")
    assert 1_000_000 < mini["params"] < 24_785_089


def test_models_table(cache) -> None:
    lines = _run("models").splitlines()
    assert lines[0].split() == ["NAME", "FAMILY", "ENCODER", "PARAMS", "OUTPUT", "LICENCE", "CACHED", "REPO"]
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert list(by_name) == list(zoo.MODELS)
    assert by_name["da2-small"].split()[1:4] == ["v2", "vits", "24.8M"]
    assert "1.26B" in by_name["da2-giant"] and "not released" in by_name["da2-giant"]
    assert "CC-BY-NC-4.0" in by_name["da2-base"] and "unspecified" in by_name["da1-base"]
    assert "metric depth (m), max 20" in by_name["da2-metric-indoor-large"]
    assert by_name["da2-large"].split()[-1] == "depth-anything/Depth-Anything-V2-Large"
