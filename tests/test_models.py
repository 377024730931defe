"""The network itself: sizes against the published parameter counts, parity with transformers."""

from __future__ import annotations

import pytest
import torch

from conftest import lively_model, random_model, tiny_spec
from depthany import zoo
from depthany.models import DepthAnything
from depthany.models.vit import interpolate_pos_embed
from depthany.weights import save_weights
from official_arch import REFERENCE, param_count, reference_shapes

# Parameter and key counts from the key tables written out in tests/official_arch.py (they round to the V2
# README's published 24.8M / 97.5M / 335.3M / 1.3B: test_zoo.py).
EXPECTED = {enc: (param_count(enc), len(reference_shapes(enc))) for enc in REFERENCE}


@pytest.mark.parametrize("name", [n for n in zoo.list_models()
                                  if zoo.MODELS[n].arch.encoder.name in EXPECTED and zoo.MODELS[n].arch.zoe is None
                                  and zoo.MODELS[n].video is None
                                  and not zoo.MODELS[n].arch.is_da3])
def test_every_zoo_architecture_has_published_size(name: str) -> None:
    spec = zoo.MODELS[name]
    with torch.device("meta"):
        m = DepthAnything(spec.arch)
    params, keys = EXPECTED[spec.arch.encoder.name]
    assert sum(p.numel() for p in m.parameters()) == params
    assert len(m.state_dict()) == keys


def test_layer_taps_per_family() -> None:
    assert zoo.get_spec("da1-small").arch.layers == (8, 9, 10, 11)
    assert zoo.get_spec("da1-large").arch.layers == (20, 21, 22, 23)
    assert zoo.get_spec("da2-small").arch.layers == (2, 5, 8, 11)
    assert zoo.get_spec("da2-large").arch.layers == (4, 11, 17, 23)
    assert zoo.get_spec("da2-giant").arch.layers == (9, 19, 29, 39)


def test_pos_embed_identity_at_518_and_scale_factor_rule() -> None:
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(1, 1 + 37 * 37, 8, generator=g)
    assert interpolate_pos_embed(pos, 37, 37, 37) is pos
    out = interpolate_pos_embed(pos, 37, 37, 49)
    # independent formula: the official code passes scale_factor=((h + .1)/37, (w + .1)/37), not a size
    grid = pos[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2)
    ref = torch.nn.functional.interpolate(grid, scale_factor=(37.1 / 37, 49.1 / 37), mode="bicubic")
    assert torch.equal(out[:, 1:], ref.permute(0, 2, 3, 1).reshape(1, -1, 8))
    by_size = torch.nn.functional.interpolate(grid, size=(37, 49), mode="bicubic")
    assert not torch.allclose(ref, by_size)  # the rule matters


def test_input_must_be_multiple_of_14(tiny) -> None:
    m = random_model(tiny)
    with pytest.raises(ValueError, match="multiples of 14"):
        m(torch.zeros(1, 3, 30, 28))


@pytest.mark.parametrize("family,head,max_depth", [("v1", "relative", None), ("v2", "relative", None),
                                                   ("v2", "metric", 20.0)])
def test_tiny_model_shapes_and_ranges(family, head, max_depth) -> None:
    m = random_model(tiny_spec(head, family, max_depth))
    with torch.no_grad():
        y = m(torch.randn(2, 3, 42, 56))
    assert y.shape == (2, 42, 56)
    if head == "metric":
        assert 0 < y.min() and y.max() < max_depth
    else:
        assert y.min() >= 0 and y.max() > 0


@pytest.mark.parametrize("name", ["da1-small", "da2-small", "da2-metric-indoor-small", "da2-metric-outdoor-small"])
def test_parity_with_transformers_at_518(name, tmp_path) -> None:
    """Same random weights in transformers' DepthAnythingForDepthEstimation: outputs agree to 1e-4 of range."""
    transformers = pytest.importorskip("transformers")
    spec = zoo.get_spec(name)
    ours = lively_model(spec, seed=1)  # outputs that vary, so a wrong tap or rule would show
    folder = save_weights(ours.state_dict(), spec, tmp_path / "hf", "transformers")
    theirs = transformers.DepthAnythingForDepthEstimation.from_pretrained(folder).eval()
    x = torch.randn(1, 3, 518, 518, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = ours(x)
        b = theirs(pixel_values=x).predicted_depth
    rng = float(a.max() - a.min())
    assert rng > 0
    assert float((a - b).abs().max()) <= 1e-4 * rng
