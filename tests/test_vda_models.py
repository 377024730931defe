"""Video Depth Anything networks: key layout and sizes, strict loading, parity with the official forward,
initialisation from an image model, conversion. Oracle: tests/vda_oracle.py (written from the official code)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import TINY_ENCODER, lively_model, put_in_hf_cache, tiny_spec
from depthany import zoo
from depthany.cli.main import cli
from depthany.models import DepthAnything, VideoDepthAnything, build_network, video_model_from_image
from depthany.models.temporal import sinusoid_table
from depthany.weights import (
    WeightsError,
    expected_shapes,
    load_into,
    load_model,
    load_video_model,
    read_checkpoint,
)
from test_zoo import reference_shapes
from vda_oracle import official_forward, random_vda_state, sinusoid
from weights_helpers import random_state, tensors_equal

TINY_VDA = zoo.Arch(TINY_ENCODER, (0, 2, 3, 5), 32, (16, 16, 32, 32), family="vda", temporal=zoo.TemporalSpec())
TINY_VDA_METRIC = dataclasses.replace(TINY_VDA, head="metric")


def tiny_vda_spec(head: str = "relative") -> zoo.ModelSpec:
    arch = TINY_VDA if head == "relative" else TINY_VDA_METRIC
    return zoo.ModelSpec(f"test-vda-{head}", arch, zoo.VDA_PRE, (), "Apache-2.0", video=zoo.VDA_WINDOWS)


def motion_module_shapes(i: int, c: int, max_frames: int = 32) -> dict[str, tuple[int, ...]]:
    """Official TemporalModule keys for C channels (8 heads, 1 transformer block, 2 attention blocks)."""
    p = f"head.motion_modules.{i}.temporal_transformer."
    s = {p + "norm.weight": (c,), p + "norm.bias": (c,), p + "proj_in.weight": (c, c), p + "proj_in.bias": (c,),
         p + "proj_out.weight": (c, c), p + "proj_out.bias": (c,)}
    b = p + "transformer_blocks.0."
    for j in range(2):
        a = f"{b}attention_blocks.{j}."
        s.update({a + "to_q.weight": (c, c), a + "to_k.weight": (c, c), a + "to_v.weight": (c, c),
                  a + "to_out.0.weight": (c, c), a + "to_out.0.bias": (c,), a + "pos_encoder.pe": (1, max_frames, c),
                  f"{b}norms.{j}.weight": (c,), f"{b}norms.{j}.bias": (c,)})
    s.update({b + "ff.net.0.proj.weight": (8 * c, c), b + "ff.net.0.proj.bias": (8 * c,),
              b + "ff.net.2.weight": (c, 4 * c), b + "ff.net.2.bias": (c,),
              b + "ff_norm.weight": (c,), b + "ff_norm.bias": (c,)})
    return s


# Official file sizes on the Hugging Face pages (Git LFS): every tensor float32.
PUBLISHED_BYTES = {"vda-small": 116e6, "vda-large": 1.54e9}


@pytest.mark.parametrize("name", ["vda-small", "vda-base", "vda-large", "vda-metric-small", "vda-metric-large"])
def test_keys_and_shapes_are_the_image_tables_plus_four_motion_modules(name) -> None:
    arch = zoo.get_spec(name).arch
    enc = arch.encoder.name
    ref = {k.replace("depth_head.", "head.", 1): v for k, v in reference_shapes(enc).items()}
    c, f = arch.out_channels, arch.features
    for i, ch in enumerate((c[2], c[3], f, f)):
        ref.update(motion_module_shapes(i, ch))
    assert expected_shapes(arch) == ref
    with torch.device("meta"):
        net = build_network(arch)
    numel = sum(t.numel() for t in net.state_dict().values())
    short = name.replace("metric-", "")
    if short in PUBLISHED_BYTES:  # the published .pth holds exactly these tensors (incl. the pe buffers)
        assert abs(4 * numel / PUBLISHED_BYTES[short] - 1) < 0.005


def test_zoo_entries() -> None:
    for size, enc in (("Small", "vits"), ("Base", "vitb"), ("Large", "vitl")):
        rel, met = zoo.get_spec(f"vda-{size.lower()}"), zoo.get_spec(f"vda-metric-{size.lower()}")
        assert rel.weights[0].repo_id == f"depth-anything/Video-Depth-Anything-{size}"
        assert rel.weights[0].filename == f"video_depth_anything_{enc}.pth"
        assert met.weights[0].repo_id == f"depth-anything/Metric-Video-Depth-Anything-{size}"
        assert met.weights[0].filename == f"metric_video_depth_anything_{enc}.pth"
        licence = "Apache-2.0" if enc == "vits" else "CC-BY-NC-4.0"
        assert rel.licence == met.licence == licence
        assert rel.arch.layers == zoo.get_spec(f"da2-{size.lower()}").arch.layers
        assert rel.arch.head == "relative" and met.arch.head == "metric" and met.arch.max_depth is None
        assert rel.output_kind == "relative_disparity" and met.output_kind == "metric_depth"
        assert rel.video == met.video == zoo.VideoWindows() and rel.preprocess.resize_dtype == "float32"
        assert zoo.get_spec(rel.weights[0].repo_id.upper()) is rel
    w = zoo.VDA_WINDOWS
    assert (w.length, w.overlap, w.step, w.interp, w.align_frames, w.stream_gap) == (32, 10, 22, 8, 2, 41)
    assert w.keyframes == (0, 12, *range(24, 32))


def test_models_json_lists_vda(tmp_path, monkeypatch) -> None:
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["vda-small"]["family"] == "vda" and rows["vda-small"]["params"] == 29_035_137
    assert rows["vda-metric-large"]["output"] == "metric depth (m)"
    assert rows["vda-base"]["licence"] == "CC-BY-NC-4.0" and rows["vda-small"]["cached"] == "no"


def test_positional_tables_are_the_sinusoid() -> None:
    got = sinusoid_table(32, 96)
    assert torch.allclose(got, sinusoid(32, 96), atol=2e-6)
    assert torch.equal(got[0, 0, 0::2], torch.zeros(48)) and torch.equal(got[0, 0, 1::2], torch.ones(48))
    net = VideoDepthAnything(TINY_VDA)
    pes = {k: v for k, v in net.state_dict().items() if k.endswith("pos_encoder.pe")}
    assert len(pes) == 8 and all(torch.equal(v, sinusoid_table(32, v.shape[-1])) for v in pes.values())


def _clip(t: int, h: int = 42, w: int = 56, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, t, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a - ref).abs().max() / (ref.max() - ref.min()))


@pytest.fixture(scope="module")
def official_file(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    sd = random_vda_state(TINY_VDA, seed=5)
    path = tmp_path_factory.mktemp("vda") / "tiny_vda.pth"
    torch.save(sd, path)
    return path, sd


@pytest.fixture(scope="module")
def loaded(official_file) -> VideoDepthAnything:
    net = VideoDepthAnything(TINY_VDA).eval()
    load_into(net, read_checkpoint(official_file[0]))  # strict: every key, pe buffers included
    return net


@pytest.mark.parametrize("frames", [1, 7, 32])
def test_forward_matches_official(loaded, official_file, frames) -> None:
    sd = official_file[1]
    x = _clip(frames)
    with torch.no_grad():
        ours = loaded(x)
        ref, _ = official_forward(sd, TINY_VDA, x)
    assert ours.shape == ref.shape == (1, frames, 42, 56)
    assert _rel(ours, ref) <= 1e-5


def test_cached_forward_matches_official(loaded, official_file) -> None:
    """The streaming path: one new frame attending over 31 cached frames' states."""
    sd = official_file[1]
    ctx, new = _clip(31, seed=1), _clip(1, seed=2)
    with torch.no_grad():
        _, ref_states = official_forward(sd, TINY_VDA, ctx)
        ref, ref_new = official_forward(sd, TINY_VDA, new, ref_states)
        _, states = loaded.forward_depth(loaded.forward_features(ctx), tuple(ctx.shape))
        ours, new_states = loaded.forward_depth(loaded.forward_features(new), tuple(new.shape), states)
    assert len(states) == len(ref_states) == 8
    assert all(a.shape == b.shape and torch.allclose(a, b, atol=1e-5) for a, b in zip(states, ref_states))
    assert all(a.shape == b.shape for a, b in zip(new_states, ref_new))
    assert _rel(ours, ref) <= 1e-5
    with torch.no_grad():  # the cache matters: without it the frame gets another answer
        alone, _ = official_forward(sd, TINY_VDA, new)
    assert _rel(alone, ref) > 1e-2


def test_temporal_modules_matter(official_file) -> None:
    """Zeroing every proj_out (the official initialisation) changes the output far beyond the tolerance,
    in the oracle and in our model: the parity above does exercise the temporal path."""
    sd = official_file[1]
    zeroed = {k: (torch.zeros_like(v) if ".proj_out." in k else v) for k, v in sd.items()}
    x = _clip(8, seed=3)
    net = VideoDepthAnything(TINY_VDA).eval()
    net.load_state_dict(zeroed)
    with torch.no_grad():
        full, _ = official_forward(sd, TINY_VDA, x)
        plain, _ = official_forward(zeroed, TINY_VDA, x)
        ours_plain = net(x)
    assert _rel(plain, full) > 1e-2
    assert _rel(ours_plain, plain) <= 1e-5


def test_strict_loading_names_the_wrong_keys(official_file, tmp_path) -> None:
    path, sd = official_file
    broken = {k: v for k, v in sd.items() if "motion_modules.2" not in k or "pe" not in k}
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(WeightsError, match=r"broken\.pth.*\n.*missing.*motion_modules\.2\..*pos_encoder\.pe"):
        load_into(VideoDepthAnything(TINY_VDA), read_checkpoint(tmp_path / "broken.pth"))
    image = random_state(tiny_spec().arch)
    torch.save(image, tmp_path / "image.pth")
    with pytest.raises(WeightsError, match="missing.*head\\.") as err:
        load_into(VideoDepthAnything(TINY_VDA), read_checkpoint(tmp_path / "image.pth"))
    assert "unexpected" in str(err.value) and "depth_head." in str(err.value)


def test_image_network_refuses_video_arch() -> None:
    with pytest.raises(ValueError, match="VideoDepthAnything"):
        DepthAnything(TINY_VDA)
    with pytest.raises(ValueError, match="temporal"):
        VideoDepthAnything(tiny_spec().arch)


def test_video_model_from_image_starts_as_the_image_model() -> None:
    """Encoder and DPT weights renamed (depth_head -> head), temporal modules the identity: every frame of a clip
    gets exactly the image model's output."""
    # the tiny image arch (features 16) cannot hold 32-group norms: widen it, keep everything else
    arch = dataclasses.replace(tiny_spec().arch, features=32, out_channels=(16, 16, 32, 32))
    image = lively_model(zoo.ModelSpec("w", arch, zoo.V2_PRE, (), "x"), seed=7)
    torch.manual_seed(0)
    video = video_model_from_image(image).eval()
    assert video.arch == dataclasses.replace(arch, family="vda", temporal=zoo.TemporalSpec())
    proj_out = [v for k, v in video.state_dict().items() if ".proj_out." in k]
    assert len(proj_out) == 8 and all(not v.any() for v in proj_out)
    others = [v for k, v in video.state_dict().items() if "motion_modules" in k and "to_q" in k]
    assert all(v.abs().sum() > 0 for v in others)  # the rest is initialised, not zero
    x = _clip(6, seed=4)
    with torch.no_grad():
        clip_out = video(x)[0]
        frames_out = image(x[0])
    assert torch.allclose(clip_out, frames_out, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="relative"):
        video_model_from_image(DepthAnything(tiny_spec("metric", max_depth=20.0).arch))


@pytest.fixture(scope="module")
def vda_small_file(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A random full-size ViT-S checkpoint under the official file name."""
    sd = random_vda_state(zoo.get_spec("vda-small").arch, seed=9)
    path = tmp_path_factory.mktemp("official") / "video_depth_anything_vits.pth"
    torch.save(sd, path)
    return path, sd


def test_official_file_name_is_recognised_and_loads_strictly(vda_small_file) -> None:
    path, sd = vda_small_file
    net, spec = load_video_model(weights=path)
    assert spec.name == "vda-small" and spec.video is not None
    assert tensors_equal(net.state_dict(), sd)
    with pytest.raises(WeightsError, match="load_video_model"):
        load_model(weights=path)
    with pytest.raises(WeightsError, match="do not fit the model .vda vitb"):
        load_video_model("vda-base", weights=path)


def test_convert_round_trip(vda_small_file, tmp_path) -> None:
    """official .pth -> depthany .safetensors (self-describing) -> official .pth: bitwise the same tensors,
    positional tables included; transformers cannot describe the model and says so."""
    path, sd = vda_small_file

    def run(*args: str | Path, ok: bool = True) -> str:
        result = CliRunner().invoke(cli, ["convert", *map(str, args)])
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    out = run(path, tmp_path / "vda.safetensors", "--to", "depthany")
    assert "vda-small" in out and "351 tensors" in out
    ckpt = read_checkpoint(tmp_path / "vda.safetensors")
    assert ckpt.layout == "depthany" and ckpt.spec is not None and tensors_equal(ckpt.state_dict, sd)
    assert ckpt.spec.video == zoo.VDA_WINDOWS and ckpt.spec.arch == zoo.get_spec("vda-small").arch
    assert ckpt.spec.preprocess == zoo.VDA_PRE
    net, spec = load_video_model(weights=tmp_path / "vda.safetensors")
    assert spec.video == zoo.VDA_WINDOWS and tensors_equal(net.state_dict(), sd)
    run(tmp_path / "vda.safetensors", tmp_path / "back.pth", "--to", "official")
    assert tensors_equal(torch.load(tmp_path / "back.pth", weights_only=True), sd)
    out = run(tmp_path / "vda.safetensors", tmp_path / "hf", "--to", "transformers", ok=False)
    assert "transformers has no Video Depth Anything" in out and "Traceback" not in out


def test_zoo_names_load_from_the_hf_cache(vda_small_file, hf_cache) -> None:
    """``load_video_model("vda-metric-small")`` finds the official file in the Hugging Face cache; for
    ``vda-small`` the published sha256 is checked, so a different file under that name is refused."""
    path, sd = vda_small_file
    put_in_hf_cache(hf_cache, "depth-anything/Metric-Video-Depth-Anything-Small",
                    {"metric_video_depth_anything_vits.pth": path})
    net, spec = load_video_model("vda-metric-small")
    assert spec.name == "vda-metric-small" and spec.arch.head == "metric" and tensors_equal(net.state_dict(), sd)
    put_in_hf_cache(hf_cache, "depth-anything/Video-Depth-Anything-Small", {path.name: path})
    with pytest.raises(WeightsError, match="sha256 .* does not match the published 13379300b739e659"):
        load_video_model("depth-anything/Video-Depth-Anything-Small")
