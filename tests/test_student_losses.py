"""Student losses against analytic cases: trimming, per-region CutMix weighting, feature alignment + margin."""

from __future__ import annotations

import pytest
import torch

from conftest import lively_model, tiny_spec
from depthany.models import DepthAnything
from depthany.train.config import RecipeError
from depthany.train.feature_align import FinalTokens, feature_alignment_loss, load_frozen_encoder
from depthany.train.losses import (
    gradient_matching_loss,
    gradient_matching_per_image,
    normalize_affine,
    ssi_gm_losses,
)
from depthany.train.student_losses import drop_largest, pseudo_losses, region_losses
from depthany.weights import save_weights


def ramp(b: int = 2, h: int = 8, w: int = 10, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    base = 1.0 + 0.1 * x + 0.05 * y
    return base + 0.3 * torch.rand(b, h, w, generator=g, dtype=torch.float64)


def test_drop_largest_drops_exactly_floor_fraction_of_valid_pixels() -> None:
    r = torch.arange(20, dtype=torch.float64).view(1, 4, 5)
    mask = torch.ones(1, 4, 5, dtype=torch.bool)
    kept = drop_largest(r, mask, 0.1)  # floor(0.1 * 20) = 2: values 19 and 18 go
    assert kept.sum().item() == 18 and not kept.flatten()[18:].any()
    mask[0, 3, 4] = False  # the largest is invalid: never counted, never "dropped"
    kept = drop_largest(r, mask, 0.1)  # 19 valid -> floor(1.9) = 1: value 18 goes
    assert kept.sum().item() == 18 and not kept[0, 3, 3] and kept[0, 3, 2]
    assert torch.equal(drop_largest(r, mask, 0.0), mask)
    ties = torch.ones(1, 2, 5, dtype=torch.float64)  # all equal: still exactly floor(0.3 * 10) = 3 dropped
    assert drop_largest(ties, torch.ones(1, 2, 5, dtype=torch.bool), 0.3).sum().item() == 7
    two = torch.stack([torch.arange(10.0), -torch.arange(10.0)]).view(2, 2, 5)  # per image, not per batch
    kept = drop_largest(two, torch.ones(2, 2, 5, dtype=torch.bool), 0.2)
    assert kept[0].flatten()[:8].all() and not kept[0].flatten()[8:].any()
    assert kept[1].flatten()[2:].all() and not kept[1].flatten()[:2].any()


def test_region_losses_match_the_batch_losses_and_are_affine_invariant() -> None:
    t = ramp(3)
    p = ramp(3, seed=1)
    mask = torch.rand(3, 8, 10, generator=torch.Generator().manual_seed(2)) > 0.2
    ssi, gm = region_losses(p, t, mask, scales=3)
    ref_ssi, ref_gm = ssi_gm_losses(p, t, mask, scales=3)
    assert ssi.mean().item() == pytest.approx(ref_ssi.item(), rel=1e-12)
    assert gm.mean().item() == pytest.approx(ref_gm.item(), rel=1e-12)
    ssi0, gm0 = region_losses(2.5 * t + 7.0, t, mask, scales=3)
    assert ssi0.abs().max().item() < 1e-12 and gm0.abs().max().item() < 1e-12


def test_gradient_matching_per_image_sums_scales_per_image() -> None:
    t, p = ramp(2), ramp(2, seed=3)
    m = torch.ones(2, 8, 10, dtype=torch.bool)
    per = gradient_matching_per_image(p, t, m, scales=2)
    assert per.shape == (2,)
    assert per.mean().item() == pytest.approx(gradient_matching_loss(p, t, m, scales=2).item(), rel=1e-12)
    assert per[0].item() == pytest.approx(gradient_matching_loss(p[:1], t[:1], m[:1], scales=2).item(), rel=1e-12)


def test_trimming_ignores_the_largest_residuals_of_each_image() -> None:
    t = ramp(1, h=10, w=10)
    p = 3.0 * t + 1.0 + 0.05 * ramp(1, h=10, w=10, seed=9)
    p[0, 2, 3] += 2.0  # 3 wrong pseudo-label pixels out of 100: trim 0.1 drops 10, the outliers among them
    p[0, 7, 1] -= 2.5
    p[0, 5, 5] += 1.5
    mask = torch.ones_like(t, dtype=torch.bool)
    ssi_raw, _ = region_losses(p, t, mask, scales=1)
    ssi_trim, _ = region_losses(p, t, mask, scales=1, trim=0.1)
    # oracle: normalise on all valid pixels, sort the residuals, average all but the 10 largest
    r = (normalize_affine(p, mask) - normalize_affine(t, mask)).abs().flatten().sort().values
    assert ssi_raw.item() == pytest.approx(r.mean().item(), rel=1e-12)
    assert ssi_trim.item() == pytest.approx(r[:90].mean().item(), rel=1e-12)
    assert ssi_trim.item() < 0.5 * ssi_raw.item()
    kept = drop_largest((normalize_affine(p, mask) - normalize_affine(t, mask)).abs(), mask, 0.1)
    assert not kept[0, 2, 3] and not kept[0, 7, 1] and not kept[0, 5, 5]
    _, gm_trim = region_losses(p, t, mask, scales=1, trim=0.1)  # gradient pairs only between kept pixels
    pn, tn = normalize_affine(p, mask), normalize_affine(t, mask)
    assert gm_trim.item() == pytest.approx(gradient_matching_per_image(pn, tn, kept, 1).item(), rel=1e-12)


def test_cutmix_regions_are_aligned_separately_and_weighted_by_area() -> None:
    h, w = 12, 12
    ta, tb = ramp(1, h, w, seed=4), 10.0 * ramp(1, h, w, seed=5) + 3.0  # unrelated scales, as two teacher maps
    box = torch.zeros(1, h, w, dtype=torch.bool)
    box[0, 2:8, 3:9] = True  # 36 of 144 pixels: a_in = 0.25
    valid = torch.ones(1, h, w, dtype=torch.bool)
    # a prediction that is an affine copy of each label in its own region (different affine maps): loss 0
    pred = torch.where(box, 0.5 * tb - 2.0, 4.0 * ta + 1.0)
    ssi, gm = pseudo_losses(pred, ta, tb, box, valid, scales=2)
    assert ssi.item() < 1e-12 and gm.item() < 1e-12
    # ...while one loss against the pasted label map (a single normalisation) is not 0
    assert region_losses(pred, torch.where(box, tb, ta), valid, scales=2)[0].item() > 0.05

    # area weighting: exact outside, wrong inside -> a_in * (the inside region's own loss), and vice versa
    noise = ramp(1, h, w, seed=6)
    pred_in = torch.where(box, noise, 4.0 * ta + 1.0)
    ssi, gm = pseudo_losses(pred_in, ta, tb, box, valid, scales=2)
    l_in, g_in = region_losses(pred_in, tb, valid & box, scales=2)
    assert ssi.item() == pytest.approx(0.25 * l_in.item(), rel=1e-12)
    assert gm.item() == pytest.approx(0.25 * g_in.item(), rel=1e-12)
    pred_out = torch.where(box, 0.5 * tb - 2.0, noise)
    ssi, _ = pseudo_losses(pred_out, ta, tb, box, valid, scales=2)
    l_out, _ = region_losses(pred_out, ta, valid & ~box, scales=2)
    assert ssi.item() == pytest.approx(0.75 * l_out.item(), rel=1e-12)
    assert l_in.item() > 0.05 and l_out.item() > 0.05

    # no box: the plain region loss of the whole image
    none = torch.zeros_like(box)
    assert torch.allclose(torch.stack(pseudo_losses(noise, ta, tb, none, valid, 2)),
                          torch.stack(region_losses(noise, ta, valid, 2)), rtol=1e-12)


def test_feature_alignment_loss_and_the_margin() -> None:
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 6, 8, generator=g)
    loss, kept = feature_alignment_loss(f, 3.0 * f)  # identical directions: cos 1 > 0.85, excluded
    assert torch.equal(loss, torch.zeros(2)) and torch.equal(kept, torch.zeros(2))
    loss, kept = feature_alignment_loss(f, f, margin=1.0)  # no margin: included, 1 - cos = 0
    assert loss.abs().max().item() < 1e-6 and torch.allclose(kept, torch.ones(2))

    # tokens with cos exactly 0.9 (above the margin) and 0.5 (below): e1 vs (c, sqrt(1 - c^2)) directions
    e1 = torch.zeros(8)
    e1[0] = 1.0

    def at(c: float) -> torch.Tensor:
        v = torch.zeros(8)
        v[0], v[1] = c, (1 - c * c) ** 0.5
        return v

    student = torch.stack([e1, e1, e1, e1])[None]
    frozen = torch.stack([at(0.9), at(0.5), at(0.9), at(-1.0)])[None]
    loss, kept = feature_alignment_loss(student, frozen, margin=0.85)
    assert loss.item() == pytest.approx((0.5 + 2.0) / 4, abs=1e-6)  # 1 - 0.5 and 1 - (-1); the 0.9s excluded
    assert kept.item() == pytest.approx(0.5)
    loss1, _ = feature_alignment_loss(student, frozen, margin=1.0)
    assert loss1.item() == pytest.approx((0.1 + 0.5 + 0.1 + 2.0) / 4, abs=1e-6)

    # gradient: none through excluded tokens, none into the frozen side
    s = student.clone().requires_grad_(True)
    fr = frozen.clone().requires_grad_(True)
    feature_alignment_loss(s, fr)[0].sum().backward()
    assert s.grad is not None and s.grad[0, 0].abs().sum() == 0 and s.grad[0, 2].abs().sum() == 0
    assert s.grad[0, 1].abs().sum() > 0 and fr.grad is None
    with pytest.raises(ValueError, match="differ"):
        feature_alignment_loss(f, f[:, :3])


def test_final_tokens_come_from_the_same_forward_pass() -> None:
    model = lively_model(tiny_spec()).train()
    x = torch.randn(2, 3, 42, 56, generator=torch.Generator().manual_seed(1))
    tokens = FinalTokens(model)
    with tokens.capture():
        depth = model(x)
    f = tokens.get()
    assert f.shape == (2, 12, 32)
    assert torch.allclose(f, model.encoder_features(x), atol=1e-6)
    (depth.mean() + f.square().mean()).backward()  # one graph: both reach the encoder
    assert model.pretrained.norm.weight.grad is not None
    model(x)  # outside capture(): nothing recorded
    assert len(tokens._outputs) == 4
    tokens.remove()
    with pytest.raises(RuntimeError, match="final-norm"):
        with tokens.capture():
            model(x)
        tokens.get()


def test_final_tokens_need_the_last_block_tapped() -> None:
    spec = tiny_spec()
    arch = spec.arch.__class__(spec.arch.encoder, (0, 1, 2, 3), 16, (8, 16, 32, 32), "relative", None, "v2")
    with pytest.raises(RecipeError, match="final encoder block"):
        FinalTokens(DepthAnything(arch))


def test_frozen_encoder_loads_weights_and_refuses_other_widths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = tiny_spec()
    teacher = lively_model(spec, seed=3)
    path = save_weights(teacher.state_dict(), spec, tmp_path / "t.safetensors")
    frozen = load_frozen_encoder(str(path), spec.arch)
    x = torch.randn(1, 3, 28, 28)
    assert torch.allclose(frozen(x), teacher.encoder_features(x), atol=1e-6)
    assert not any(p.requires_grad for p in frozen.parameters())
    frozen.train()
    assert not frozen.training
    wide = spec.arch.__class__(spec.arch.encoder.__class__("w", 64, 6, 2), spec.arch.layers, 16, (8, 16, 32, 32),
                               "relative", None, "v2")
    with pytest.raises(RecipeError, match="64 wide.*projector"):
        load_frozen_encoder(str(path), wide)
    with pytest.raises(RecipeError, match="neither an existing file nor a zoo model"):
        load_frozen_encoder(str(tmp_path / "nope.pth"), spec.arch)
