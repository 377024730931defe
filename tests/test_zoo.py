"""The model table against the published facts, and ``depthany models``.

Key names and shapes of every official architecture are checked on the meta device against tables written out
in tests/official_arch.py from the upstream modules (docs/reference/official_facts.md), so vitl and vitg cost no
memory.
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
from official_arch import (
    KEY_COUNTS,
    README_PARAMS,
    REFERENCE,
    param_count,
    reference_shapes,
    rounded_like_readme,
)

OFFICIAL = [n for n, s in zoo.MODELS.items()
            if s.arch.encoder.name in REFERENCE and s.arch.zoe is None and s.video is None and not s.arch.is_da3]
# (the V1 metric (ZoeDepth) entries hold this V1 model under core.core.*: tests/test_zoedepth_weights.py; VDA:
# tests/test_vda_models.py; DA3: tests/test_da3_models.py)


@pytest.mark.parametrize("name", OFFICIAL)
def test_keys_and_shapes_match_the_reference_tables(name) -> None:
    arch = zoo.MODELS[name].arch
    ref = reference_shapes(arch.encoder.name)
    assert len(ref) == KEY_COUNTS[arch.encoder.name]
    assert expected_shapes(arch) == ref


@pytest.mark.parametrize("enc", list(REFERENCE))
def test_parameter_counts_round_to_the_published_figures(enc) -> None:
    """The counts the tests use are sums over the key tables, and round to the V2 README's "Params" column."""
    assert rounded_like_readme(param_count(enc)) == README_PARAMS[enc]


def test_layer_taps_and_max_depth() -> None:
    taps = {n: s.arch.layers for n, s in zoo.MODELS.items()}
    assert taps["da1-small"] == taps["da1-base"] == (8, 9, 10, 11) and taps["da1-large"] == (20, 21, 22, 23)
    assert taps["da2-small"] == taps["da2-base"] == (2, 5, 8, 11)
    assert taps["da2-large"] == taps["da2-metric-indoor-large"] == (4, 11, 17, 23)
    assert taps["da2-giant"] == (9, 19, 29, 39)
    assert taps["da1-metric-indoor-large"] == taps["da1-metric-outdoor-large"] == (20, 21, 22, 23)
    assert {n: s.arch.max_depth for n, s in zoo.MODELS.items() if s.arch.bounded} == {
        **{f"da2-metric-{d}-{z}": m for d, m in (("indoor", 20.0), ("outdoor", 80.0)) for z in ("small", "base", "large")},
        "da1-metric-indoor-large": 10.0, "da1-metric-outdoor-large": 80.0}


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
    assert len(untagged) == 11 and all(lic[n].startswith("unspecified") for n in untagged)


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
        spec = zoo.MODELS[name]
        if enc in REFERENCE and spec.arch.zoe is None and spec.video is None and not spec.arch.is_da3:
            assert r["params"] == param_count(enc)  # the other families: their own test files
        assert set(r) == {"name", "family", "encoder", "params", "output", "licence", "cached", "repo", "aliases",
                          "description"}
    assert rows["da2-metric-outdoor-small"]["cached"] == "yes"
    assert rows["da2-small"]["cached"] == "no" and rows["da2-giant"]["cached"] == "not released"
    assert rows["da2-metric-outdoor-small"]["output"] == "metric depth (m), max 80"
    assert rows["da1-large"] | {"aliases": None} == {
        "name": "da1-large", "family": "v1", "encoder": "vitl", "params": param_count("vitl"), "output": "relative disparity",
        "licence": zoo.V1_LICENCE, "cached": "no", "repo": "LiheYoung/depth_anything_vitl14", "aliases": None,
        "description": "Depth Anything V1 Large: relative disparity"}
    mini = rows[zoo.BUNDLED_NAME]
    assert mini["repo"] == "bundled" and 1_000_000 < mini["params"] < param_count("vits")


def test_bundled_model_status_follows_its_file(cache, tmp_path, monkeypatch) -> None:
    """"yes" when the package has the file, "not available" when it does not (an install without assets)."""
    from depthany.weights import hub

    monkeypatch.setattr(hub, "bundled_path", lambda rel: tmp_path / "package" / rel)
    (src,) = zoo.get_spec(zoo.BUNDLED_NAME).weights
    assert src.bundled is not None

    def status() -> str:
        return {r["name"]: r for r in json.loads(_run("models", "--json"))}[zoo.BUNDLED_NAME]["cached"]

    assert status() == "not available"
    (tmp_path / "package" / src.bundled).parent.mkdir(parents=True)
    (tmp_path / "package" / src.bundled).write_bytes(b"status only looks for the file")
    assert status() == "yes"


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


@pytest.mark.parametrize("typo,closest", [
    ("da2-smal", ["da2-small"]), ("DA2-SMALL", ["da2-small"]), ("da2_small", ["da2-small"]),
    ("da-v2-small", ["da2-small"]), ("da2-metric-indor-small", ["da2-metric-indoor-small"]),
    ("da2-metric-small", ["vda-metric-small"]),  # one letter away; the V2 metric names are two words longer
    ("depth-anything/depth-anything-v2-smal-hf", ["da2-small"]),  # a misspelt repo alias
    ("xyz", []), ("da9-huge", []),
])
def test_unknown_names_suggest_the_closest(typo, closest) -> None:
    assert zoo.closest_names(typo) == closest
    with pytest.raises(ValueError) as e:
        zoo.get_spec(typo)
    msg = str(e.value)
    assert msg.startswith(f"unknown model {typo!r}; ") and msg.endswith("known models: " + ", ".join(zoo.MODELS))
    assert ("did you mean " + " or ".join(closest) + "?" in msg) if closest else "did you mean" not in msg


def test_predict_with_a_misspelt_model_suggests_the_name(tmp_path) -> None:
    from PIL import Image

    Image.new("RGB", (30, 20)).save(tmp_path / "x.png")
    res = CliRunner().invoke(cli, ["predict", str(tmp_path / "x.png"), "--model", "da2-smal", "--out",
                                   str(tmp_path / "out")])
    assert res.exit_code == 2 and "unknown model 'da2-smal'; did you mean da2-small?" in res.stderr, res.output


def test_sizing_every_zoo_model_stays_on_meta_and_imports_no_compiler() -> None:
    """``depthany models`` sizes every entry by building it on the meta device. No constructor may compute on meta
    (torch's reference kernels import torch._dynamo on first use, ~2-3 s: VDA's positional table and ZoeDepth's
    log-binomial constants did), and the buffers made on the CPU must still follow the default device."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from depthany import zoo\n"
        "from depthany.models import build_network\n"
        "from depthany.weights.catalog import count_params\n"
        "for n in zoo.list_models():\n"
        "    count_params(zoo.get_spec(n).arch)\n"
        "with torch.device('meta'):\n"
        "    net = build_network(zoo.get_spec('vda-small').arch)\n"
        "    zoe = build_network(zoo.get_spec('da1-metric-indoor-large').arch)\n"
        "devices = {t.device.type for m in (net, zoe) for t in [*m.parameters(), *m.buffers()]}\n"
        "print(sorted(devices), 'torch._dynamo' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["['meta']", "False"], res.stdout
