"""The ZoeDepth head (V1 metric models) against an independent functional oracle (tests/zoe_oracle.py).

Every head variant the official code can build (softplus / normed / hybrid centres, inverse / exponential
attractors, mean / sum aggregation) runs on a tiny encoder with random weights in the official layout whose bins
are spread over the depth range; the oracle reads the same state dict by its official names. The oracle's output
varies by metres across the image and moves beyond the tolerance when any weight group is perturbed, so a wrong
tap, variant or formula would fail.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import zoe_oracle as oracle
from conftest import TINY_ENCODER
from depthany import zoe_pipeline, zoo
from depthany.models import DepthAnything, ZoeDepth, build_network
from depthany.weights import expected_shapes
from test_zoo import reference_shapes

TOL = 1e-5  # of the output range; float32 re-association (SDPA vs explicit attention, mean vs loop)
BASE = zoo.ZoeConfig(img_size=(42, 56))
VARIANTS = {
    "official": BASE,
    "normed": dataclasses.replace(BASE, bin_centers_type="normed"),
    "exp-sum": dataclasses.replace(BASE, attractor_type="exp", attractor_kind="sum", attractor_alpha=0.5),
    "hybrid1": dataclasses.replace(BASE, bin_centers_type="hybrid1", attractor_alpha=10.0),
    "hybrid2": dataclasses.replace(BASE, bin_centers_type="hybrid2", attractor_kind="sum"),
    "keep-aspect": dataclasses.replace(BASE, keep_aspect=True, n_bins=16, n_attractors=(8, 4, 2, 2)),
}


def tiny_zoe_arch(cfg: zoo.ZoeConfig = BASE, max_depth: float = 10.0) -> zoo.Arch:
    return zoo.Arch(TINY_ENCODER, (2, 3, 4, 5), 16, (8, 16, 32, 32), "metric", max_depth, "v1", cfg)


def loaded(arch: zoo.Arch, sd: dict[str, torch.Tensor]) -> ZoeDepth:
    model = ZoeDepth(arch).eval()
    model.load_state_dict(sd, strict=True)
    return model


def image01(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A [0, 1] image with structure (gradients, a block), (1, 3, h, w)."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([0.5 + 0.4 * torch.sin(9 * x) * torch.cos(7 * y), x, 1 - y])
    img[:, h // 4:h // 2, w // 3:2 * w // 3] = torch.tensor([0.9, 0.1, 0.2]).view(3, 1, 1)
    return (img + 0.03 * torch.randn(img.shape, generator=g)).clamp(0, 1)[None]


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    span = float(ref.max() - ref.min())
    assert span > 0
    return float((a - ref).abs().max()) / span


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_matches_the_official_oracle(variant) -> None:
    arch = tiny_zoe_arch(VARIANTS[variant])
    sd = oracle.official_state(arch, seed=3)
    assert oracle.shapes_match(arch, sd)
    x = image01(47, 66, seed=1)
    with torch.no_grad():
        ref = oracle.forward(sd, arch, x)
        got = zoe_pipeline.forward(loaded(arch, sd), x)
    assert got.shape == ref.shape == (1, 1, *zoe_pipeline.network_size(47, 66, arch.zoe))
    assert float(ref.max() - ref.min()) > 0.3  # metres: not a flat map
    assert rel_err(got, ref) < TOL


# Weights that act only through the attractors: their points, and the embeddings that feed them.
ATTRACTOR_PATH = (*(f"attractors.{i}._net.2.bias" for i in range(4)), "seed_projector._net.2.bias",
                  *(f"projectors.{i}._net.2.bias" for i in range(3)))


@pytest.mark.parametrize("variant", ["official", "exp-sum"])
def test_the_oracle_sees_every_part_of_the_head(variant) -> None:
    """Perturbing any weight group (seed bins, each attractor, projectors, temperature, the tapped decoder maps)
    or a variant setting moves the output by more than 10x the tolerance (100x the measured parity error of
    ~1e-6), so the parity test above can fail. With the official inverse attractors (alpha 1000) a point moves
    the centres near it by about 1/(1000 dx): ~1.5e-4 of the range here for the weights that act only through
    the attractors; the exp/sum variant (alpha 0.5) reacts strongly."""
    arch = tiny_zoe_arch(VARIANTS[variant])
    sd = oracle.official_state(arch, seed=3)
    x = image01(47, 66, seed=1)
    bound = 10 * TOL if variant == "official" else 1000 * TOL
    with torch.no_grad():
        ref = oracle.forward(sd, arch, x)
        for key in ATTRACTOR_PATH:
            moved = {**sd, key: sd[key] + 1.0}
            assert rel_err(oracle.forward(moved, arch, x), ref) > bound, key
        for key in ("seed_bin_regressor._net.2.bias", "projectors.3._net.2.bias", "conv2.bias", "conditional_log_binomial.mlp.2.bias", "core.core.depth_head.scratch.layer4_rn.weight",
                    "core.core.depth_head.scratch.refinenet1.out_conv.bias",
                    "core.core.depth_head.scratch.output_conv2.0.bias"):
            moved = {**sd, key: sd[key] + 0.2 * torch.ones_like(sd[key])}
            assert rel_err(oracle.forward(moved, arch, x), ref) > 100 * TOL, key
        if variant != "official":
            return
        for change in ({"attractor_kind": "sum"}, {"attractor_type": "exp"}, {"attractor_alpha": 300.0},
                       {"min_temp": 0.5}, {"bin_centers_type": "hybrid1"}):
            other = dataclasses.replace(arch, zoe=dataclasses.replace(arch.zoe, **change))
            assert rel_err(oracle.forward(sd, other, x), ref) > 10 * TOL, change


def test_features_come_from_the_official_taps() -> None:
    """The decoder maps our ZoeDepth reads are exactly the tensors the official hooks capture."""
    arch = tiny_zoe_arch()
    sd = oracle.official_state(arch, seed=5)
    x = zoe_pipeline.prepare(image01(47, 66), arch.zoe)
    with torch.no_grad():
        rel, hooks = oracle.core(sd, arch, x)
        ours, feats = loaded(arch, sd).relative.forward_features(x)
    mine = {"out_conv": feats.hidden, "l4_rn": feats.layer4_rn, **dict(zip(("r4", "r3", "r2", "r1"), feats.refined))}
    assert feats.hidden.shape[1] == 32
    for name, t in hooks.items():
        assert rel_err(mine[name], t) < TOL, name
    assert rel_err(ours, rel) < TOL


def test_probabilities_centres_and_depth_agree() -> None:
    arch = tiny_zoe_arch()
    model = loaded(arch, oracle.official_state(arch, seed=2))
    with torch.no_grad():
        out = model.forward_full(zoe_pipeline.prepare(image01(30, 40), arch.zoe))
    assert out.probs.shape == out.bin_centers.shape == (1, 64, 42, 56)
    assert torch.allclose(out.probs.sum(dim=1), torch.ones(1, 42, 56), atol=1e-5)
    assert torch.allclose(out.depth, (out.probs * out.bin_centers).sum(dim=1, keepdim=True))
    assert out.rel_depth.shape == (1, 42, 56) and bool((out.rel_depth >= 0).all())


def test_normed_centres_stay_in_range_and_sorted() -> None:
    arch = tiny_zoe_arch(VARIANTS["normed"], max_depth=80.0)
    model = loaded(arch, oracle.official_state(arch, seed=4))
    with torch.no_grad():
        out = model.forward_full(zoe_pipeline.prepare(image01(30, 40), arch.zoe))
    c = out.bin_centers
    assert float(c.min()) >= arch.zoe.min_depth - 1e-6 and float(c.max()) <= 80.0 + 1e-4
    assert bool((c[:, 1:] >= c[:, :-1] - 1e-4).all())  # sorted before the bilinear resize, which keeps order
    assert float(out.depth.min()) > 0 and float(out.depth.max()) < 80.0


# -------------------------------------------------------------------------------------------------- sizes and keys

def head_reference_shapes(f: int, n_bins: int = 64, e: int = 128, n_attr: tuple[int, ...] = (16, 8, 4, 1),
                          normed: bool = False) -> dict[str, tuple[int, ...]]:
    """The head's keys and shapes, written from the official module definitions (zoedepth_v1.py,
    localbins_layers.py, attractor.py, dist_layers.py)."""
    s: dict[str, tuple[int, ...]] = {"conv2.weight": (f, f, 1, 1), "conv2.bias": (f,)}

    def mlp(name: str, cin: int, hidden: int, cout: int) -> None:
        s.update({f"{name}._net.0.weight": (hidden, cin, 1, 1), f"{name}._net.0.bias": (hidden,),
                  f"{name}._net.2.weight": (cout, hidden, 1, 1), f"{name}._net.2.bias": (cout,)})

    mlp("seed_bin_regressor", f, 256, n_bins)
    mlp("seed_projector", f, 128, e)
    for i in range(4):
        mlp(f"projectors.{i}", f, 128, e)
    for i, n in enumerate(n_attr):
        mlp(f"attractors.{i}", e, 128, 2 * n if normed else n)
    c = 33 + e
    s.update({"conditional_log_binomial.log_binomial_transform.k_idx": (1, n_bins, 1, 1),
              "conditional_log_binomial.log_binomial_transform.K_minus_1": (1, 1, 1, 1),
              "conditional_log_binomial.mlp.0.weight": (c // 2, c, 1, 1), "conditional_log_binomial.mlp.0.bias": (c // 2,),
              "conditional_log_binomial.mlp.2.weight": (4, c // 2, 1, 1), "conditional_log_binomial.mlp.2.bias": (4,)})
    return s


@pytest.mark.parametrize("name", ["da1-metric-indoor-large", "da1-metric-outdoor-large"])
def test_released_architecture_keys_shapes_and_size(name) -> None:
    """ViT-L on the meta device: the V1 Large model under core.core.*, the softplus head, 478,145 head parameters
    (F = 256, E = 128, 64 bins, attractors 16/8/4/1) on top of the 335,315,649 of the relative model."""
    arch = zoo.get_spec(name).arch
    ref = {f"core.core.{k}": v for k, v in reference_shapes("vitl").items()} | head_reference_shapes(256)
    assert expected_shapes(arch) == ref
    with torch.device("meta"):
        model = build_network(arch)
    assert isinstance(model, ZoeDepth)
    head = (256 * 256 + 256) + (256 * 256 + 256 + 256 * 64 + 64) + 5 * (256 * 128 + 128 + 128 * 128 + 128) \
        + sum(128 * 128 + 128 + 128 * n + n for n in (16, 8, 4, 1)) + (161 * 80 + 80 + 80 * 4 + 4)
    assert head == 478_145
    assert sum(p.numel() for p in model.parameters()) == 335_315_649 + head


@pytest.mark.parametrize("encoder", ["vitt", "vits", "vitb", "vitg"])
def test_any_zoo_encoder(encoder) -> None:
    """The head sits on any encoder size: widths follow the decoder (official: 256 for ViT-L only)."""
    arch = zoo.make_zoe_arch(encoder, 10.0)
    f = zoo.HEAD_WIDTHS[encoder][0]
    assert arch.layers == tuple(range(arch.encoder.depth - 4, arch.encoder.depth))
    shapes = expected_shapes(arch)
    assert {k: v for k, v in shapes.items() if not k.startswith("core.")} == head_reference_shapes(f)


def test_normed_head_keys() -> None:
    arch = zoo.make_zoe_arch("vits", 80.0, zoo.ZOE_PRESETS["normed"])
    shapes = {k: v for k, v in expected_shapes(arch).items() if not k.startswith("core.")}
    assert shapes == head_reference_shapes(64, normed=True)


def test_tiny_any_size_forward() -> None:
    model = build_network(zoo.make_zoe_arch("vitt", 10.0, dataclasses.replace(BASE, n_bins=8)))
    with torch.no_grad():
        y = model(torch.randn(2, 3, 28, 42))
    assert y.shape == (2, 28, 42) and bool(torch.isfinite(y).all()) and float(y.min()) > 0


def test_plain_depth_anything_refuses_a_zoedepth_arch() -> None:
    with pytest.raises(ValueError, match="build_network"):
        DepthAnything(zoo.get_spec("da1-metric-indoor-large").arch)


def test_zoe_config_validation() -> None:
    with pytest.raises(ValueError, match="bin_centers_type"):
        zoo.ZoeConfig(bin_centers_type="linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_attractors"):
        zoo.ZoeConfig(n_attractors=(16, 8, 4))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="V1 metric"):
        dataclasses.replace(zoo.get_spec("da1-metric-indoor-large").arch, family="v2")
