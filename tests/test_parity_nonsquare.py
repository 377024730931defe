"""Parity off the square: our model against an independent functional re-implementation of the official forward.

At 518x518 the stored positional embedding is used as is, and transformers is a valid oracle (tests/test_models.py).
At any other size DINOv2 resizes the 37x37 embedding grid; the official code passes
``scale_factor=((h + 0.1) / 37, (w + 0.1) / 37)`` to bicubic ``F.interpolate``, while transformers passes
``size=(h, w)``. Both give an h x w grid, but sample it at different positions, so transformers' outputs differ
from the official ones at every non-square size. The oracle here is therefore written from the official
description (tests/official_forward.py, docs/reference/official_facts.md) with plain tensor ops reading the
state dict: explicit softmax attention instead of SDPA, functional convolutions, no depthany module code.
"""

from __future__ import annotations

import pytest
import torch

from conftest import lively_model, tiny_spec
from depthany import zoo
from depthany.weights import save_weights
from official_forward import official_forward

SIZES = [(518, 686), (364, 490)]


def _input(h: int, w: int) -> torch.Tensor:
    return torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(h * w))


def _max_rel_diff(a: torch.Tensor, ref: torch.Tensor) -> float:
    rng = float(ref.max() - ref.min())
    assert rng > 0
    return float((a - ref).abs().max()) / rng


TINY = {"v2": tiny_spec("relative", "v2"), "v1": tiny_spec("relative", "v1"),
        "metric": tiny_spec("metric", "v2", 20.0)}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("kind", list(TINY))
def test_matches_official_forward_off_square(kind, size) -> None:
    """V1 / V2 / metric forward logic (tiny 6-block encoder, real 37x37 positional grid)."""
    spec = TINY[kind]
    model = lively_model(spec, seed=3)
    x = _input(*size)
    with torch.no_grad():
        ours = model(x)
        ref = official_forward(model.state_dict(), spec.arch, x)
    assert ours.shape == ref.shape == (1, *size)
    assert _max_rel_diff(ours, ref) <= 1e-4


def test_da2_small_matches_official_forward_at_518x686() -> None:
    """The real ViT-S/DPT sizes once, at the size a 640x480 photo is run at."""
    spec = zoo.get_spec("da2-small")
    model = lively_model(spec, seed=4)
    x = _input(518, 686)
    with torch.no_grad():
        ours = model(x)
        ref = official_forward(model.state_dict(), spec.arch, x)
    assert _max_rel_diff(ours, ref) <= 1e-4


def test_oracle_sees_layer_taps_and_pos_embed_rule() -> None:
    """The oracle must react to a wrong tap or a wrong interpolation rule by far more than the tolerance."""
    spec = TINY["v2"]
    sd = lively_model(spec, seed=3).state_dict()
    x = _input(364, 490)
    with torch.no_grad():
        ref = official_forward(sd, spec.arch, x)
        as_v1 = official_forward(sd, TINY["v1"].arch, x)
        by_size = official_forward(sd, spec.arch, x, pos_by_size=True)
    assert _max_rel_diff(as_v1, ref) > 1e-2
    assert _max_rel_diff(by_size, ref) > 1e-2


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_transformers_differs_off_square_only_by_pos_embed(size, tmp_path) -> None:
    """Why transformers is not the oracle here: it resizes the positional grid with size=, not the official
    scale factor. With the oracle switched to that rule the two agree, so that is the only difference."""
    transformers = pytest.importorskip("transformers")
    spec = TINY["v2"]
    sd = lively_model(spec, seed=5).state_dict()
    folder = save_weights(sd, spec, tmp_path / "hf", "transformers")
    theirs = transformers.DepthAnythingForDepthEstimation.from_pretrained(folder).eval()
    x = _input(*size)
    with torch.no_grad():
        hf = theirs(pixel_values=x).predicted_depth
        official = official_forward(sd, spec.arch, x)
        by_size = official_forward(sd, spec.arch, x, pos_by_size=True)
    assert _max_rel_diff(hf, official) > 1e-2
    assert _max_rel_diff(hf, by_size) <= 1e-4
