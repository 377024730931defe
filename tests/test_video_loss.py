"""The Video Depth Anything training loss against a numpy float64 re-implementation written here from the
official description (DepthAnything/Video-Depth-Anything, commit 4f5ae23172ba60fd7bc11ef671cca678842c7072,
``loss/loss.py``: ``VideoDepthLoss(alpha=0.5, scales=4, trim=0.0, stable_scale=10)``), and its invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthany.train.video_loss import robust_normalize, trimmed_mae, video_depth_loss


def np_normalize(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(len(x)):
        if m[i].sum() == 0:
            out[i] = x[i]
            continue
        flat = np.sort((m[i] * x[i]).ravel())
        med = flat[(flat.size - 1) // 2]  # torch.median: the lower of the two middle values
        s = max(np.abs(x[i] - med)[m[i]].sum() / m[i].sum(), 1e-6)
        out[i] = (x[i] - med) / s
    return out


def np_grad(p: np.ndarray, t: np.ndarray, m: np.ndarray, scales: int = 4) -> float:
    total = 0.0
    for s in range(scales):
        st = 2 ** s
        ps, ts, ms = p[:, ::st, ::st], t[:, ::st, ::st], m[:, ::st, ::st].astype(float)
        d = ms * (ps - ts)
        gx = np.abs(np.diff(d, axis=2)) * ms[:, :, 1:] * ms[:, :, :-1]
        gy = np.abs(np.diff(d, axis=1)) * ms[:, 1:] * ms[:, :-1]
        total += (gx.sum() + gy.sum()) / ms.sum()
    return total


def np_video_loss(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    b, t, h, w = pred.shape
    p2, t2, m2 = pred.reshape(-1, h, w), target.reshape(-1, h, w), mask.reshape(-1, h, w)
    pn, tn = np_normalize(p2, m2), np_normalize(t2, m2)
    spatial = np.abs(pn - tn)[m2].sum() / m2.sum() + 0.5 * np_grad(pn, tn, m2)
    num = den = 0.0
    for i in range(b):
        x, y, k = pred[i][mask[i]], target[i][mask[i]], mask[i]
        a = np.array([[np.sum(x * x), np.sum(x)], [np.sum(x), k.sum()]])
        rhs = np.array([np.sum(x * y), np.sum(y)])
        det = np.linalg.det(a)
        sc, sh = (np.linalg.solve(a, rhs) if det != 0 else (0.0, 0.0))
        al = sc * pred[i] + sh
        for f in range(1, t):
            rng = target[i, f][mask[i, f]].max() - target[i, f][mask[i, f]].min()
            dt = target[i, f] - target[i, f - 1]
            keep = mask[i, f] & mask[i, f - 1] & (np.abs(dt) < 0.05 * rng)
            num += np.abs((al[f] - al[f - 1]) - dt)[keep].sum()
            den += keep.sum()
    return spatial, 10 * num / den


def clip(seed: int = 0, b: int = 2, t: int = 5, h: int = 16, w: int = 20) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    target = 1 + xx + 0.5 * yy + 0.02 * torch.arange(t).view(1, t, 1, 1) * torch.randn(b, 1, 1, 1, generator=g)
    target = target + 0.01 * torch.randn(b, t, h, w, generator=g)
    target[:, 2, 3:6, 4:9] += 0.8  # a moving object: large changes are left out of the temporal term
    pred = 0.7 * target + 0.2 + 0.03 * torch.randn(b, t, h, w, generator=g)
    mask = torch.rand(b, t, h, w, generator=g) > 0.15
    return pred.double(), target.double(), mask


def test_loss_matches_the_official_description() -> None:
    pred, target, mask = clip()
    terms = video_depth_loss(pred, target, mask)
    spatial, stable = np_video_loss(pred.numpy(), target.numpy(), mask.numpy())
    assert float(terms.spatial) == pytest.approx(spatial, rel=1e-6)
    assert float(terms.stable) == pytest.approx(stable, rel=1e-6) and stable > 0
    assert float(terms.total) == pytest.approx(spatial + stable, rel=1e-6)


def test_invariances_and_gradients() -> None:
    pred, target, mask = clip(1)
    pred = pred.float().requires_grad_()
    base = video_depth_loss(pred, target.float(), mask)
    base.total.backward()
    base = base._replace(total=base.total.detach())
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    moved = video_depth_loss(3 * pred.detach() + 1.5, target.float(), mask)  # scale-and-shift invariant
    assert float(moved.total) == pytest.approx(float(base.total), rel=1e-4)
    other = pred.detach().clone()
    other[~mask] = 1e3  # masked pixels do not count (the median is over mask * x: they enter as zeros)
    assert float(video_depth_loss(other, target.float(), mask).total) == pytest.approx(float(base.total), rel=1e-4)
    perfect = video_depth_loss(2 * target.float() - 1, target.float(), mask)
    assert float(perfect.total) < 1e-5
    # the median over mask * x counts masked pixels as zeros: it differs from the median of the valid pixels
    x = torch.tensor([[[5.0, 6.0, 7.0, 100.0]]])
    m = torch.tensor([[[True, True, False, False]]])
    assert robust_normalize(x, m)[0, 0, 0] == pytest.approx((5 - 0) / ((5 + 6) / 2))
    assert float(trimmed_mae(torch.arange(4.0), torch.zeros(4), torch.ones(4, dtype=torch.bool), trim=0.5)) == 0.25
    with pytest.raises(ValueError, match="must all be"):
        video_depth_loss(pred[0], target[0], mask[0])
