"""V1 metric (ZoeDepth) checkpoints in the official file layout: reading, strict loading, head-variant detection,
conversion to and from depthany's safetensors, key reports, and the zoo entries.

The zoo's two entries are ViT-L; the loading tests swap a tiny architecture into them (same names, files and
configuration), so the whole path (file name -> entry -> detection -> strict load) runs in a second.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import zoe_oracle as oracle
from conftest import put_in_hf_cache
from depthany import zoe_pipeline, zoo
from depthany.cli.main import cli
from depthany.models import ZoeDepth
from depthany.weights import (
    WeightsError,
    expected_shapes,
    load_model,
    load_network,
    read_checkpoint,
    save_weights,
)
from depthany.weights.config import spec_to_json
from depthany.weights.convert import convert_weights
from depthany.weights.zoedepth import detect_zoe_config
from test_zoedepth_model import tiny_zoe_arch
from weights_helpers import random_state, tensors_equal

INDOOR, OUTDOOR = "da1-metric-indoor-large", "da1-metric-outdoor-large"
FILES = {INDOOR: "depth_anything_metric_depth_indoor.pt", OUTDOOR: "depth_anything_metric_depth_outdoor.pt"}


@pytest.fixture
def tiny_zoo(monkeypatch) -> dict[str, zoo.ModelSpec]:
    """The two zoo entries with a tiny encoder in place of ViT-L (everything else as published)."""
    out = {}
    for name in (INDOOR, OUTDOOR):
        spec = zoo.MODELS[name]
        tiny = tiny_zoe_arch(dataclasses.replace(spec.arch.zoe, img_size=(42, 56)), spec.arch.max_depth)
        out[name] = dataclasses.replace(spec, arch=tiny)
        monkeypatch.setitem(zoo.MODELS, name, out[name])
    return out


def write_official(sd: dict[str, torch.Tensor], path: Path, prefix: str = "") -> Path:
    torch.save(oracle.official_file(sd, prefix), path)
    return path


def check_output(model: ZoeDepth, arch: zoo.Arch, sd: dict[str, torch.Tensor]) -> None:
    x = torch.rand(1, 3, 40, 60, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got, ref = zoe_pipeline.forward(model, x), oracle.forward(sd, arch, x)
    assert float((got - ref).abs().max()) < 1e-5 * float(ref.max() - ref.min())


# ---------------------------------------------------------------------------------------------------- the zoo

def test_zoo_entries_say_where_the_files_are_and_what_they_hold() -> None:
    for name, domain, max_depth in ((INDOOR, "indoor", 10.0), (OUTDOOR, "outdoor", 80.0)):
        spec = zoo.get_spec(name)
        (src,) = spec.weights
        assert (src.repo_id, src.repo_type, src.format) == ("LiheYoung/Depth-Anything", "space", "zoedepth")
        assert src.filename == f"checkpoints_metric_depth/depth_anything_metric_depth_{domain}.pt"
        assert spec.arch.max_depth == max_depth and spec.output_kind == "metric_depth"
        assert spec.licence.startswith("unspecified") and "metres" in spec.description
        # both released files: the default config_zoedepth.json head (see docs/zoedepth.md)
        assert spec.arch.zoe == zoo.ZoeConfig(n_bins=64, bin_centers_type="softplus", bin_embedding_dim=128,
                                              min_depth=1e-3, n_attractors=(16, 8, 4, 1), attractor_alpha=1000,
                                              attractor_gamma=2, attractor_kind="mean", attractor_type="inv",
                                              min_temp=0.0212, max_temp=50.0, img_size=(392, 518), keep_aspect=False)
        assert spec.arch.family == "v1" and spec.arch.layers == (20, 21, 22, 23)


def test_detection_on_the_released_shapes() -> None:
    """The released layout (meta tensors of the full-size keys): the softplus head with 64 bins."""
    spec = zoo.get_spec(INDOOR)
    assert spec.arch == dataclasses.replace(zoo.get_spec(OUTDOOR).arch, max_depth=10.0)
    meta = {k: torch.empty(s, device="meta") for k, s in expected_shapes(spec.arch).items()}
    assert detect_zoe_config(meta, spec.arch.zoe) == spec.arch.zoe
    normed = zoo.make_zoe_arch("vitl", 80.0, zoo.ZOE_PRESETS["normed"])
    meta = {k: torch.empty(s, device="meta") for k, s in expected_shapes(normed).items()}
    assert detect_zoe_config(meta, spec.arch.zoe) == zoo.ZOE_PRESETS["normed"]  # config_zoedepth_kitti.json


# ---------------------------------------------------------------------------------------------------- loading

@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize("name", [INDOOR, OUTDOOR])
def test_official_file_loads_strictly(tiny_zoo, tmp_path, name, prefix) -> None:
    arch = tiny_zoo[name].arch
    sd = oracle.official_state(arch, seed=1)
    path = write_official(sd, tmp_path / FILES[name], prefix)
    ckpt = read_checkpoint(path)
    assert ckpt.layout == "zoedepth" and ckpt.extra == {"optimizer": None, "epoch": 4}
    assert tensors_equal(ckpt.state_dict, sd)
    for args in ((None, path), (name, path), (str(path), None)):  # by file name, with --model, as a path
        model, spec = load_network(*args)
        assert isinstance(model, ZoeDepth) and spec.name == name and spec.arch == arch
        assert tensors_equal(model.state_dict(), sd)
    check_output(model, arch, sd)


def test_zoo_name_loads_from_the_hf_cache(tiny_zoo, hf_cache, tmp_path) -> None:
    arch = tiny_zoo[INDOOR].arch
    sd = oracle.official_state(arch, seed=2)
    write_official(sd, tmp_path / FILES[INDOOR])
    put_in_hf_cache(hf_cache, "LiheYoung/Depth-Anything",
                    {f"checkpoints_metric_depth/{FILES[INDOOR]}": tmp_path / FILES[INDOOR]}, repo_type="space")
    model, spec = load_network(INDOOR)
    assert spec.extra["weights"].endswith(FILES[INDOOR]) and tensors_equal(model.state_dict(), sd)
    with pytest.raises(WeightsError, match=f"{OUTDOOR}.*not found"):
        load_network(OUTDOOR)


def test_head_variant_comes_from_the_shapes_not_the_file_name(tiny_zoo, tmp_path) -> None:
    """A normed-head file under the outdoor name, and a 16-bin softplus file under the indoor one: each loads
    with the head its shapes show, and computes what the official code would with that head."""
    normed = dataclasses.replace(tiny_zoo[OUTDOOR].arch, zoe=dataclasses.replace(
        zoo.ZOE_PRESETS["normed"], img_size=(42, 56)))
    sd = oracle.official_state(normed, seed=3)
    model, spec = load_network(None, write_official(sd, tmp_path / FILES[OUTDOOR]))
    assert spec.arch.zoe.bin_centers_type == "normed" and spec.arch.zoe.img_size == (384, 768)
    assert "normed head read from the file's shapes" in spec.extra["zoe_head"]
    small = ZoeDepth(normed).eval()  # the same weights at a small network size, against the oracle
    small.load_state_dict(model.state_dict())
    check_output(small, normed, sd)

    fewer = dataclasses.replace(tiny_zoo[INDOOR].arch, zoe=dataclasses.replace(
        tiny_zoo[INDOOR].arch.zoe, n_bins=16, bin_embedding_dim=32, n_attractors=(8, 4, 2, 1)))
    sd = oracle.official_state(fewer, seed=4)
    model, spec = load_network(INDOOR, write_official(sd, tmp_path / "renamed.pt"))
    assert spec.arch == fewer and "zoe_head" in spec.extra
    check_output(model, fewer, sd)


# ------------------------------------------------------------------------------------------------- conversion

def test_convert_to_depthany_and_back_is_lossless(tiny_zoo, tmp_path) -> None:
    arch = tiny_zoo[OUTDOOR].arch
    sd = oracle.official_state(arch, seed=5)
    src = write_official(sd, tmp_path / FILES[OUTDOOR], "module.")
    r = convert_weights(src, tmp_path / "zoe.safetensors", "depthany")
    assert (r.source_layout, r.model, r.tensors) == ("zoedepth", OUTDOOR, len(sd))
    ckpt = read_checkpoint(tmp_path / "zoe.safetensors")
    assert ckpt.layout == "depthany" and ckpt.spec is not None and ckpt.spec.arch == arch
    assert tensors_equal(ckpt.state_dict, sd)
    model, spec = load_network(str(tmp_path / "zoe.safetensors"))  # self-describing: no name needed
    assert spec.arch == arch and tensors_equal(model.state_dict(), sd)
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "zoe.safetensors"), str(tmp_path / "back.pt"),
                                      "--to", "official"])
    assert result.exit_code == 0, result.output
    back = torch.load(tmp_path / "back.pt", weights_only=True)
    assert set(back) == {"model"} and tensors_equal(back["model"], sd)  # the official {"model": ...} form
    result = CliRunner().invoke(cli, ["convert", str(src), str(tmp_path / "hf"), "--to", "transformers"])
    assert result.exit_code != 0 and "--to depthany or --to official" in result.output


def test_depthany_training_checkpoint_describes_itself(tiny_zoo, tmp_path) -> None:
    """``{"model": ..., "spec": ...}`` (what depthany's trainer writes) needs no name even with ZoeDepth keys."""
    spec = tiny_zoo[INDOOR]
    sd = oracle.official_state(spec.arch, seed=6)
    torch.save({"model": sd, "spec": spec_to_json(dataclasses.replace(spec, name="my-run")), "step": 3},
               tmp_path / "last.pt")
    model, got = load_network(None, tmp_path / "last.pt")
    assert got.name == "my-run" and got.arch == spec.arch and tensors_equal(model.state_dict(), sd)


def test_fp16_conversion_keeps_the_integer_buffer(tiny_zoo, tmp_path) -> None:
    arch = tiny_zoo[INDOOR].arch
    src = write_official(oracle.official_state(arch), tmp_path / FILES[INDOOR])
    convert_weights(src, tmp_path / "h.safetensors", "depthany", dtype="fp16")
    got = read_checkpoint(tmp_path / "h.safetensors").state_dict
    assert got["conditional_log_binomial.log_binomial_transform.k_idx"].dtype == torch.int64
    assert got["conv2.weight"].dtype == torch.float16


# -------------------------------------------------------------------------------------------- wrong files

def test_missing_unexpected_and_misshaped_keys_are_listed(tiny_zoo, tmp_path) -> None:
    arch = tiny_zoo[INDOOR].arch
    sd = oracle.official_state(arch)
    broken = {k: v for k, v in sd.items() if k != "projectors.2._net.0.weight"}
    broken["attractors.9._net.0.bias"] = torch.zeros(3)
    broken["conditional_log_binomial.mlp.0.weight"] = torch.zeros(5, 161, 1, 1)
    path = write_official(broken, tmp_path / "partial.pt")
    with pytest.raises(WeightsError) as e:
        load_network(INDOOR, path)
    msg = str(e.value)
    assert str(path) in msg and "ZoeDepth (softplus)" in msg
    assert "1 missing key(s): projectors.2._net.0.weight" in msg
    assert "1 unexpected key(s): attractors.9._net.0.bias" in msg
    assert "conditional_log_binomial.mlp.0.weight: model [80, 161, 1, 1] vs file [5, 161, 1, 1]" in msg


def test_wrong_model_for_the_file(tiny_zoo, tmp_path) -> None:
    arch = tiny_zoo[INDOOR].arch
    path = write_official(oracle.official_state(arch), tmp_path / "mine.pt")
    with pytest.raises(WeightsError, match=r"mine\.pt: a V1 metric \(ZoeDepth\) checkpoint whose file name .*"
                                           r"--model \(one of: da1-metric-indoor-large, da1-metric-outdoor-large\)"):
        load_network(None, path)
    with pytest.raises(WeightsError, match=r"model da2-small is not a ZoeDepth model"):
        load_network("da2-small", path)
    net, _ = load_model(INDOOR, path)  # load_model and load_network are the same loader
    assert isinstance(net, ZoeDepth)
    relative = save_weights(random_state(zoo.get_spec("da1-small").arch), zoo.get_spec("da1-small"),
                            tmp_path / "rel.pth", "official")
    with pytest.raises(WeightsError, match=r"rel\.pth: model da1-metric-indoor-large is a V1 metric .* no ZoeDepth head"):
        load_network(INDOOR, relative)


def test_headless_or_ambiguous_zoe_files(tiny_zoo, tmp_path) -> None:
    torch.save({"model": {"core.core.pretrained.cls_token": torch.zeros(1, 1, 4)}}, tmp_path / "core.pt")
    assert read_checkpoint(tmp_path / "core.pt").layout == "zoedepth"
    with pytest.raises(WeightsError, match=r"core\.pt: a ZoeDepth checkpoint without seed_bin_regressor"):
        load_network(INDOOR, tmp_path / "core.pt")
    sd = oracle.official_state(tiny_zoo[INDOOR].arch)
    for i, n in enumerate((6, 4, 2, 2)):  # even counts that fit neither kind of the configured 16/8/4/1
        sd[f"attractors.{i}._net.2.weight"] = torch.zeros(n, 128, 1, 1)
    with pytest.raises(WeightsError, match=r"attractor output channels \[6, 4, 2, 2\] fit neither"):
        load_network(INDOOR, write_official(sd, tmp_path / "odd.pt"))


@pytest.mark.slow
def test_full_size_official_file_end_to_end(hf_cache, tmp_path) -> None:
    """A full-size random ViT-L file in the official layout (1.3 GB), under its published name in the HF cache:
    found by zoo name, loaded strictly, and infer_pil agrees with the oracle on a small image."""
    spec = zoo.get_spec(INDOOR)
    sd = oracle.official_state(spec.arch, seed=9)
    write_official(sd, tmp_path / FILES[INDOOR], "module.")
    put_in_hf_cache(hf_cache, "LiheYoung/Depth-Anything",
                    {f"checkpoints_metric_depth/{FILES[INDOOR]}": tmp_path / FILES[INDOOR]}, repo_type="space")
    model, got = load_network(INDOOR)
    assert got.arch == spec.arch and tensors_equal(model.state_dict(), sd)
    from test_official_pipeline import photo

    rgb = photo(60, 80, seed=1)
    ours, ref = zoe_pipeline.infer_pil(model, rgb), oracle.infer_pil(sd, spec.arch, rgb)
    assert float(abs(ours - ref).max()) < 1e-4 * float(ref.max() - ref.min())
