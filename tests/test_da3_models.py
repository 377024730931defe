"""Depth Anything 3 networks: official key layout, strict loading, and forward parity with an independent
functional re-implementation (tests/da3_reference.py) on official-layout checkpoints with random weights."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import da3_reference as ref
from depthany import zoo
from depthany.models import DepthAnything3, build_network
from depthany.models.da3.camera import pose_to_cameras, quaternion_to_matrix
from depthany.models.da3.refview import (
    reference_first_order,
    reorder_views,
    restore_views,
    select_reference_view,
)
from depthany.weights import WeightsError, expected_shapes, load_into, read_checkpoint

# Official configs (configs/<preset>.yaml @ 2c21ea8): the zoo's architectures must have exactly these keys.
FULL = {
    "da3-mono-large": ref.Cfg(1024, 24, 16, (4, 11, 17, 23), 256, (256, 512, 1024, 1024)),
    "da3-metric-large": ref.Cfg(1024, 24, 16, (4, 11, 17, 23), 256, (256, 512, 1024, 1024)),
    "da3-small": ref.Cfg(384, 12, 6, (5, 7, 9, 11), 64, (48, 96, 192, 384), 4, 4, 4),
    "da3-base": ref.Cfg(768, 12, 12, (5, 7, 9, 11), 128, (96, 192, 384, 768), 4, 4, 4),
    "da3-large": ref.Cfg(1024, 24, 16, (11, 15, 19, 23), 256, (256, 512, 1024, 1024), 8, 8, 8),
    "da3-giant": ref.Cfg(1536, 40, 24, (19, 27, 33, 39), 256, (256, 512, 1024, 1024), 13, 13, 13, swiglu=True,
                         gs_head=True),
}
# Parameter counts of the official modules built from those configs (shared aux LayerNorm counted once).
PARAMS = {"da3-mono-large": 334_171_394, "da3-small": 34_299_463, "da3-base": 135_366_599,
          "da3-large": 410_941_767, "da3-giant": 1_355_674_125}

TINY_ENC = zoo.EncoderSpec("test-tiny-da3", 32, 6, 2)
MONO = ref.Cfg(32, 6, 2, (0, 2, 3, 5), 16, (8, 16, 32, 32))
# alternation from block 2, q/k norm from 1, RoPE from 3: each start is read separately
ANY = ref.Cfg(32, 6, 2, (1, 3, 4, 5), 16, (8, 16, 32, 32), alt_start=2, qknorm_start=1, rope_start=3)


def tiny_arch(c: ref.Cfg, head: str = "depth") -> zoo.Arch:
    views = zoo.ViewAttention(c.alt_start, c.qknorm_start, c.rope_start) if c.anyview else None
    return zoo.Arch(TINY_ENC, c.layers, c.features, c.out_channels, "multiview" if c.anyview else head,  # type: ignore[arg-type]
                    family="da3", metric_focal=300.0 if head == "focal_metric" else None, views=views)


def loaded(c: ref.Cfg, sd: dict, tmp_path, head: str = "depth") -> DepthAnything3:
    folder = ref.write_official_folder(tmp_path / "official", sd, "da3-small" if c.anyview else "da3mono-large")
    model = DepthAnything3(tiny_arch(c, head)).eval()
    load_into(model, read_checkpoint(folder))
    return model


@pytest.mark.parametrize("name", list(FULL))
def test_zoo_keys_and_shapes_are_the_official_ones(name) -> None:
    assert expected_shapes(zoo.get_spec(name).arch) == ref.official_shapes(FULL[name])


@pytest.mark.parametrize("name", list(PARAMS))
def test_parameter_counts(name) -> None:
    with torch.device("meta"):
        model = build_network(zoo.get_spec(name).arch)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]


def test_zoo_entries() -> None:
    mono, metric, small = (zoo.get_spec(n) for n in ("da3-mono-large", "da3-metric-large", "da3-small"))
    assert mono.output_kind == "relative_depth" and metric.output_kind == "metric_depth"
    assert metric.arch.metric_focal == 300.0 and mono.arch.metric_focal is None
    assert mono.preprocess.input_size == 504 and mono.preprocess.resize == "upper_bound_resize"
    assert small.arch.views == zoo.ViewAttention(4, 4, 4, cat_token=True, rope_freq=100.0)
    assert zoo.get_spec("depth-anything/DA3MONO-LARGE") is mono
    assert zoo.get_spec("depth-anything/DA3-LARGE-1.1").name == "da3-large"
    assert {n: zoo.get_spec(n).licence for n in ("da3-mono-large", "da3-metric-large", "da3-small", "da3-base",
                                                 "da3-large", "da3-giant")} == {
        "da3-mono-large": "Apache-2.0", "da3-metric-large": "Apache-2.0", "da3-small": "Apache-2.0",
        "da3-base": "Apache-2.0", "da3-large": "CC-BY-NC-4.0", "da3-giant": "CC-BY-NC-4.0"}
    src = mono.weights[0]
    assert (src.format, src.filename, src.config_filename) == ("da3", "model.safetensors", "config.json")
    assert zoo.da3_preset(metric.arch) == "da3metric-large" and zoo.da3_preset(zoo.get_spec("da3-large-1.0").arch) \
        == "da3-large"


def _lively_mono(seed: int = 0) -> dict:
    return ref.lively_state(MONO, seed, sky_bias=0.25)


def test_mono_parity_with_the_functional_reference(tmp_path) -> None:
    sd = _lively_mono()
    model = loaded(MONO, sd, tmp_path)
    x = torch.randn(2, 3, 42, 70, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model.forward_mono(x)
    from depthany.da3 import sky_fill

    filled = sky_fill(out.depth, out.sky)
    for i in range(2):
        want_depth, want_sky = ref.mono_forward(x[i], sd, MONO)
        torch.testing.assert_close(out.sky[i], want_sky, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(filled[i], want_depth, rtol=1e-4, atol=1e-5)
        d, s = filled[i], out.sky[i]
        assert torch.isfinite(d).all() and d.std() / d.mean() > 0.1  # varied depth
        assert 0.1 < (s >= 0.3).float().mean() < 0.9  # the fill has sky and non-sky pixels to work on
        assert not torch.allclose(filled[i], out.depth[i], rtol=1e-3)  # the fill changed something


def _lively_any(seed: int = 0) -> dict:
    return ref.lively_state(ANY, seed)


@pytest.mark.parametrize("views", [1, 2, 4])
def test_any_view_parity_with_the_functional_reference(tmp_path, views) -> None:
    sd = _lively_any()
    model = loaded(ANY, sd, tmp_path)
    x = torch.randn(views, 3, 42, 56, generator=torch.Generator().manual_seed(views))
    with torch.no_grad():
        out = model.forward_views(x[None], rays=True)
    want = ref.views_forward(x, sd, ANY)
    tol = {"rtol": 2e-4, "atol": 2e-5}
    torch.testing.assert_close(out.depth[0], want["depth"], **tol)
    torch.testing.assert_close(out.conf[0], want["conf"], **tol)
    torch.testing.assert_close(out.extrinsics[0], want["extrinsics"], **tol)
    torch.testing.assert_close(out.intrinsics[0], want["intrinsics"], **tol)
    assert out.ray is not None and out.ray_conf is not None
    torch.testing.assert_close(out.ray[0], want["ray"], **tol)
    torch.testing.assert_close(out.ray_conf[0], want["ray_conf"], **tol)
    assert int(out.reference[0]) == int(want["reference"])
    assert out.ray.shape[-3:] == (8 * 3, 8 * 4, 6)
    d, k = out.depth[0], out.intrinsics[0]
    assert torch.isfinite(d).all() and d.std() / d.mean() > 0.1
    assert torch.isfinite(k).all() and (k[:, 0, 0] > 5).all() and (k[:, 0, 0] < 500).all()  # finite focal
    assert torch.allclose(k[:, 0, 2], torch.tensor(28.0)) and torch.allclose(k[:, 1, 2], torch.tensor(21.0))


def test_rope_and_its_start_block_matter(tmp_path) -> None:
    sd = _lively_any(2)
    model = loaded(ANY, sd, tmp_path)
    x = torch.randn(3, 3, 42, 56, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        depth = model.forward_views(x[None]).depth[0]
    torch.testing.assert_close(depth, ref.views_forward(x, sd, ANY)["depth"], rtol=2e-4, atol=2e-5)
    for other in (-1, 2):  # no RoPE; RoPE from one block earlier
        changed = ref.views_forward(x, sd, ANY, rope_start=other)["depth"]
        assert (changed - depth).abs().max() > 100 * 2e-4 * depth.abs().max()


def test_reference_view_choice_matters(tmp_path) -> None:
    sd = _lively_any(3)
    model = loaded(ANY, sd, tmp_path)
    x = torch.randn(4, 3, 42, 56, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        balanced = model.forward_views(x[None], "saddle_balanced")
        first = model.forward_views(x[None], "first")
        sim_range = model.forward_views(x[None], "saddle_sim_range")
        middle = model.forward_views(x[None], "middle")
    chosen = int(balanced.reference[0])
    assert chosen != 0  # otherwise this input could not tell the strategies apart
    assert int(first.reference[0]) == 0 and int(middle.reference[0]) == 2
    assert int(sim_range.reference[0]) == int(ref.views_forward(x, sd, ANY, "saddle_sim_range")["reference"])
    # the reference view's camera is the world frame: its extrinsics differ from the others' ...
    assert (balanced.depth - first.depth).abs().max() > 1e-2 * balanced.depth.abs().max()
    assert (balanced.extrinsics - first.extrinsics).abs().max() > 1e-2
    # ... and outputs come back in input order: choosing view k == putting it first yourself with "first"
    perm = [chosen] + [i for i in range(4) if i != chosen]
    with torch.no_grad():
        manual = model.forward_views(x[perm][None], "first")
    inv = [perm.index(i) for i in range(4)]
    torch.testing.assert_close(balanced.depth[0], manual.depth[0][inv], rtol=1e-4, atol=1e-5)


def test_reference_order_helpers() -> None:
    order = reference_first_order(torch.tensor([2, 0, 4]), 5)
    assert order.tolist() == [[2, 0, 1, 3, 4], [0, 1, 2, 3, 4], [4, 0, 1, 2, 3]]
    x = torch.arange(15.0).reshape(3, 5)
    assert torch.equal(restore_views(reorder_views(x, order), order), x)
    with pytest.raises(ValueError, match="ref_view_strategy"):
        select_reference_view(torch.randn(1, 3, 4), "best")  # type: ignore[arg-type]
    tokens = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))
    for strategy in ("saddle_balanced", "saddle_sim_range", "middle", "first"):
        got = select_reference_view(tokens, strategy).tolist()  # type: ignore[arg-type]
        assert got == [ref.select_reference(tokens[b], strategy) for b in range(2)]


def test_camera_decoder_math() -> None:
    # rotation by 90 degrees about z: quaternion (0, 0, sin 45, cos 45), any scale
    q = torch.tensor([0.0, 0.0, 1.0, 1.0]) * 3.0
    assert torch.allclose(quaternion_to_matrix(q), torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]), atol=1e-6)
    fov = 2 * math.atan(0.5)  # tan(fov/2) = 0.5: f = (size/2) / 0.5 = size
    pose = torch.tensor([[1.0, 2.0, 3.0, 0.0, 0.0, 1.0, 1.0, fov, fov]])
    ext, k = pose_to_cameras(pose, (42, 56))
    r = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    # camera-to-world [R | t] -> world-to-camera [R^T | -R^T t]: maps the camera centre t to the origin
    assert torch.allclose(ext[0, :, :3], r.T, atol=1e-6)
    assert torch.allclose(ext[0, :, :3] @ torch.tensor([1.0, 2, 3]) + ext[0, :, 3], torch.zeros(3), atol=1e-6)
    assert torch.allclose(k[0], torch.tensor([[56.0, 0, 28], [0, 42, 21], [0, 0, 1]]), atol=1e-4)


def test_strict_loading_reports_wrong_checkpoints(tmp_path) -> None:
    sd = _lively_mono()
    model = DepthAnything3(tiny_arch(MONO)).eval()
    broken = dict(sd)
    broken.pop(ref.P + "head.scratch.sky_output_conv2.0.weight")
    broken[ref.P + "head.scratch.refinenet4.resConfUnit1.conv1.weight"] = torch.zeros(16, 16, 3, 3)  # V2-only
    broken[ref.P + "backbone.pretrained.norm.weight"] = torch.zeros(7)
    folder = ref.write_official_folder(tmp_path / "bad", broken, "da3mono-large")
    with pytest.raises(WeightsError) as e:
        load_into(model, read_checkpoint(folder))
    msg = str(e.value)
    assert str(folder) in msg and "sky_output_conv2.0.weight" in msg and "refinenet4.resConfUnit1" in msg
    assert "norm.weight: model [32] vs file [7]" in msg
    # an any-view checkpoint into a mono model, and the other way round
    any_folder = ref.write_official_folder(tmp_path / "any", _lively_any(), "da3-small")
    with pytest.raises(WeightsError, match=r"unexpected key\(s\): model\.backbone\.pretrained\.blocks\.1\.attn\.k_norm"):
        load_into(model, read_checkpoint(any_folder))
    with pytest.raises(WeightsError, match="sky_output_conv2"):
        load_into(DepthAnything3(tiny_arch(ANY)), read_checkpoint(tmp_path / "bad"))


def test_shared_aux_norm_is_stored_once_or_under_all_names(tmp_path) -> None:
    sd = _lively_any(4)
    one = read_checkpoint(ref.write_official_folder(tmp_path / "dedup", sd, "da3-small"))
    assert one.layout == "da3" and one.arch == zoo.get_spec("da3-small").arch
    assert sum(k in one.state_dict for k in ref.SHARED_AUX_NORM) == 2  # only the .0.2 weight and bias
    all_names = read_checkpoint(ref.write_official_folder(tmp_path / "full", sd, "da3-small", dedupe=False))
    x = torch.randn(1, 2, 3, 28, 42, generator=torch.Generator().manual_seed(0))
    outs = []
    for ckpt in (one, all_names):
        model = DepthAnything3(tiny_arch(ANY)).eval()
        load_into(model, ckpt)
        with torch.no_grad():
            outs.append(model.forward_views(x, rays=True).ray)
    assert torch.equal(outs[0], outs[1])


def test_config_errors(tmp_path) -> None:
    sd = _lively_mono()
    for name, match in (("da3nested-giant-large", "nested"), ("da3-tiny", "unknown Depth Anything 3 model_name")):
        with pytest.raises(WeightsError, match=match):
            read_checkpoint(ref.write_official_folder(tmp_path / name, sd, name))
    folder = ref.write_official_folder(tmp_path / "noconf", sd, "da3mono-large")
    (folder / "config.json").unlink()
    from depthany.weights import resolve_checkpoint

    with pytest.raises(WeightsError, match="without its config.json.*da3-mono-large"):
        resolve_checkpoint(None, folder)
    nested = {"model.da3." + k[len(ref.P):]: v for k, v in list(sd.items())[:3]}
    from safetensors.torch import save_file

    save_file(nested, str(tmp_path / "nested.safetensors"))
    with pytest.raises(WeightsError, match="nested"):
        read_checkpoint(tmp_path / "nested.safetensors")


def test_v1_v2_classes_refuse_da3_architectures() -> None:
    from depthany.models import DepthAnything

    with pytest.raises(ValueError, match="Depth Anything 3"):
        DepthAnything(zoo.get_spec("da3-mono-large").arch)
    with pytest.raises(ValueError, match="family"):
        dataclasses.replace(zoo.get_spec("da2-small").arch, head="depth")


def test_depthany_file_describes_a_custom_da3_model(tmp_path) -> None:
    """A tiny DA3Metric / any-view network in depthany's own file loads by itself (spec in the metadata)."""
    from depthany.weights import load_network, save_weights

    for c, head, sd in ((MONO, "focal_metric", _lively_mono()), (ANY, "multiview", _lively_any())):
        spec = zoo.ModelSpec(f"tiny-{head}", tiny_arch(c, head), zoo.DA3_PRE, (), "Apache-2.0")
        path = save_weights(sd, spec, tmp_path / f"{head}.safetensors", "depthany")
        model, got = load_network(weights=path)
        assert got.arch == spec.arch and got.preprocess == zoo.DA3_PRE and isinstance(model, DepthAnything3)
        direct = loaded(c, sd, tmp_path / head, head)
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), direct.state_dict().values()))
        with pytest.raises(ValueError, match="cannot describe this architecture"):
            save_weights(sd, spec, tmp_path / f"{head}-official", "official")
