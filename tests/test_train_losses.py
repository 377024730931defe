"""Training losses against hand-computed values and analytic invariants."""

from __future__ import annotations

import math

import pytest
import torch

from depthany.train.losses import (
    depth_to_disparity,
    gradient_matching_loss,
    masked_median,
    normalize_affine,
    silog_loss,
    ssi_gm_losses,
    ssi_loss,
)


def row(*values: float) -> torch.Tensor:
    """A (1, 1, W) map."""
    return torch.tensor(values, dtype=torch.float64).view(1, 1, -1)


def smooth_map(seed: int = 0, b: int = 2, h: int = 24, w: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = 1.0 + 0.5 * torch.sin(3 * x) * torch.cos(2 * y)
    return (base + 0.3 * torch.rand(b, h, w, generator=g)).double()


# ------------------------------------------------------------------------------------------- hand-computed


def test_ssi_hand_computed() -> None:
    # pred [0,1,2,3]: lower median 1, MAD (1+0+1+2)/4 = 1 -> [-1,0,1,2]
    # target [0,0,1,3]: lower median 0, MAD 4/4 = 1 -> [0,0,1,3];  mean |diff| = (1+0+0+1)/4 = 0.5
    pred, target = row(0, 1, 2, 3), row(0, 0, 1, 3)
    mask = torch.ones_like(pred, dtype=torch.bool)
    assert torch.equal(normalize_affine(pred, mask), row(-1, 0, 1, 2))
    assert torch.equal(normalize_affine(target, mask), row(0, 0, 1, 3))
    assert ssi_loss(pred, target, mask).item() == pytest.approx(0.5, abs=1e-12)


def test_gradient_matching_hand_computed() -> None:
    # On the normalised maps above, diff = [-1, 0, 0, -1].
    # scale 0: |0-(-1)| + |0-0| + |-1-0| = 2 over 4 valid pixels = 0.5
    # scale 1 (stride 2): diff at columns 0, 2 = [-1, 0] -> 1 over 2 pixels = 0.5
    pred, target = row(0, 1, 2, 3), row(0, 0, 1, 3)
    mask = torch.ones_like(pred, dtype=torch.bool)
    ssi, gm1 = ssi_gm_losses(pred, target, mask, scales=1)
    _, gm2 = ssi_gm_losses(pred, target, mask, scales=2)
    assert ssi.item() == pytest.approx(0.5, abs=1e-12)
    assert gm1.item() == pytest.approx(0.5, abs=1e-12)
    assert gm2.item() == pytest.approx(1.0, abs=1e-12)


def test_gradient_matching_2d_hand_computed() -> None:
    # diff = pred - target = [[0, 1], [0, 0]]; x pairs: |1-0| + |0-0| = 1; y pairs: |0-0| + |0-1| = 1 -> 2 / 4
    pred = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    target = torch.tensor([[[1.0, 1.0], [3.0, 4.0]]])
    mask = torch.ones_like(pred, dtype=torch.bool)
    assert gradient_matching_loss(pred, target, mask, scales=1).item() == pytest.approx(0.5)
    # masking the top-right pixel removes both pairs that touch it and one pixel from the count: 0 / 3
    mask[0, 0, 1] = False
    assert gradient_matching_loss(pred, target, mask, scales=1).item() == 0.0


def test_silog_hand_computed() -> None:
    # d = ln gt - ln pred = [0, 1]: mean d^2 = 0.5, mean d = 0.5 -> sqrt(0.5 - 0.5 * 0.25) = sqrt(0.375)
    gt, pred = row(1.0, math.e), row(1.0, 1.0)
    mask = torch.ones_like(gt, dtype=torch.bool)
    assert silog_loss(pred, gt, mask).item() == pytest.approx(math.sqrt(0.375), rel=1e-12)
    # lambda = 1 is the standard deviation of d: sqrt(0.5 - 0.25) = 0.5, and scale-invariant
    assert silog_loss(pred, gt, mask, lam=1.0).item() == pytest.approx(0.5, rel=1e-12)
    assert silog_loss(pred * 7.0, gt, mask, lam=1.0).item() == pytest.approx(0.5, rel=1e-12)


def test_median_is_lower_middle_and_masked() -> None:
    x = torch.tensor([[[4.0, 1.0, 3.0, 2.0, 100.0]], [[5.0, 5.0, 5.0, 5.0, 5.0]]])
    mask = torch.tensor([[[True, True, True, True, False]], [[False] * 5]])
    med = masked_median(x, mask)
    assert med.tolist() == [2.0, 0.0]  # lower of (2, 3); no valid pixels -> 0
    assert torch.equal(med[:1], torch.median(x[0, 0, :4]).view(1))


def test_depth_to_disparity() -> None:
    depth = torch.tensor([[[2.0, 0.0, 4.0]]])
    mask = depth > 0
    assert depth_to_disparity(depth, mask).tolist() == [[[0.5, 0.0, 0.25]]]


# ---------------------------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("scale,shift", [(1.0, 0.0), (3.7, -2.0), (0.01, 5.0)])
def test_affine_transform_of_target_gives_zero(scale: float, shift: float) -> None:
    target = smooth_map()
    mask = torch.ones_like(target, dtype=torch.bool)
    pred = scale * target + shift
    ssi, gm = ssi_gm_losses(pred, target, mask)
    assert ssi.item() < 1e-12
    assert gm.item() < 1e-10


def test_negative_scale_is_not_invariant() -> None:
    target = smooth_map()
    mask = torch.ones_like(target, dtype=torch.bool)
    ssi, gm = ssi_gm_losses(-target, target, mask)
    assert ssi.item() > 0.5 and gm.item() > 0.1


def test_gradient_matching_zero_for_constant_offset_nonzero_for_shifted_structure() -> None:
    target = torch.zeros(1, 16, 16, dtype=torch.float64)
    target[:, :, 8:] = 1.0  # a vertical step edge
    mask = torch.ones_like(target, dtype=torch.bool)
    assert gradient_matching_loss(target + 0.25, target, mask).item() == 0.0  # exact in binary
    shifted = torch.zeros_like(target)
    shifted[:, :, 9:] = 1.0  # the edge one column to the right
    # diff is -1 in column 8 only: each of the 16 rows has two x pairs with |step| = 1 -> 32 / 256
    assert gradient_matching_loss(shifted, target, mask, scales=1).item() == pytest.approx(32 / 256)
    assert ssi_gm_losses(shifted, target, mask)[1].item() > 0.1


def test_values_under_the_mask_do_not_matter() -> None:
    g = torch.Generator().manual_seed(1)
    pred, target = smooth_map(1), smooth_map(2)
    mask = torch.rand(pred.shape, generator=g) > 0.3
    ref = [v.item() for v in ssi_gm_losses(pred, target, mask)] + [silog_loss(pred, target, mask).item()]
    junk_p = torch.where(mask, pred, torch.rand(pred.shape, generator=g) * 1e3 - 5)
    junk_t = torch.where(mask, target, torch.rand(pred.shape, generator=g) * -1e3)
    got = [v.item() for v in ssi_gm_losses(junk_p, junk_t, mask)] + [silog_loss(junk_p, junk_t, mask).item()]
    assert got == ref


def test_per_image_mean_is_batch_split_invariant() -> None:
    pred, target = smooth_map(3, b=4), smooth_map(4, b=4)
    mask = torch.ones_like(pred, dtype=torch.bool)
    mask[1, :5] = False
    whole = ssi_gm_losses(pred, target, mask)
    halves = [ssi_gm_losses(pred[i:i + 2], target[i:i + 2], mask[i:i + 2]) for i in (0, 2)]
    for k in range(2):
        assert whole[k].item() == pytest.approx((halves[0][k].item() + halves[1][k].item()) / 2, rel=1e-12)


def test_images_without_valid_pixels_are_skipped_and_gradients_stay_finite() -> None:
    pred = smooth_map(5, b=2).requires_grad_()
    target = smooth_map(6, b=2)
    mask = torch.ones_like(target, dtype=torch.bool)
    mask[1] = False
    target[0] = 2.0  # a constant target (MAD 0) is normalised to 0, not inf
    ssi, gm = ssi_gm_losses(pred, target, mask)
    one_ssi, one_gm = ssi_gm_losses(pred[:1], target[:1], mask[:1])
    assert ssi.item() == pytest.approx(one_ssi.item()) and gm.item() == pytest.approx(one_gm.item())
    (ssi + gm + silog_loss(pred, target, mask)).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[1].abs().sum() == 0


def test_no_valid_pixels_gives_zero_attached_loss() -> None:
    pred = smooth_map(7, b=1).requires_grad_()
    mask = torch.zeros_like(pred, dtype=torch.bool)
    ssi, gm = ssi_gm_losses(pred, pred.detach(), mask)
    assert ssi.item() == 0.0 and gm.item() == 0.0
    (ssi + gm).backward()  # still part of the graph, so every DDP rank can run backward
    assert pred.grad is not None and pred.grad.abs().sum() == 0


def test_silog_floor_keeps_zero_predictions_finite() -> None:
    gt = smooth_map(8, b=1)
    pred = torch.zeros_like(gt, requires_grad=True)
    loss = silog_loss(pred, gt, torch.ones_like(gt, dtype=torch.bool))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
