"""Metric values against the reference toy example and alignment against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from depthany import align
from depthany.eval import metrics


def test_toy_example_matches_zoedepth_compute_errors() -> None:
    gt = np.array([1.0, 2.0, 4.0, 8.0])
    pred = np.array([1.1, 1.5, 4.0, 12.0])
    m = metrics.compute_all(gt, pred)
    assert m["delta1"] == 0.5 and m["delta2"] == 1.0 and m["delta3"] == 1.0
    assert m["abs_rel"] == pytest.approx(0.2125, abs=1e-9)
    assert m["sq_rel"] == pytest.approx(0.53375, abs=1e-9)
    assert m["rmse"] == pytest.approx(2.016185, abs=1e-6)
    assert m["rmse_log"] == pytest.approx(0.253104, abs=1e-6)
    assert m["silog_bts"] == pytest.approx(24.743422, abs=1e-6)
    assert m["log10"] == pytest.approx(0.085606, abs=1e-6)


def test_delta_is_strict() -> None:
    gt = np.array([1.0, 1.0])
    assert metrics.delta(gt, np.array([1.25, 1.0])) == 0.5  # ratio exactly 1.25 is not < 1.25


def test_silog_definitions_differ() -> None:
    gt = np.array([1.0, 2.0, 4.0])
    pred = np.array([1.5, 1.8, 5.0])
    a, b, c = metrics.silog_bts(gt, pred), metrics.silog_dav2(gt, pred), metrics.silog_loss_085(gt, pred)
    assert len({round(a, 6), round(b, 6), round(c, 6)}) == 3
    assert metrics.silog_bts(gt, 3.0 * gt) == pytest.approx(0.0, abs=1e-6)  # scale invariant


def test_fit_scale_shift_recovers_affine_and_matches_lstsq(rng) -> None:
    p = rng.uniform(0.1, 5.0, 1000)
    s, t = align.fit_scale_shift(p, 3.7 * p - 0.02)
    assert s == pytest.approx(3.7, abs=1e-12) and t == pytest.approx(-0.02, abs=1e-12)
    g = rng.normal(size=1000)
    ref = np.linalg.lstsq(np.stack([p, np.ones_like(p)], 1), g, rcond=None)[0]
    assert np.allclose(align.fit_scale_shift(p, g), ref, atol=1e-12)


def test_degenerate_fit_raises() -> None:
    with pytest.raises(align.AlignmentError):
        align.fit_scale_shift(np.ones(10), np.arange(10.0))


def test_silog_variants_against_variance_identities(rng) -> None:
    gt = rng.uniform(0.5, 10, 200)
    pred = gt * np.exp(rng.normal(0.1, 0.2, 200))
    e = np.log(pred) - np.log(gt)
    var, mean = np.var(e), np.mean(e)  # biased variance, as the metrics use
    assert metrics.silog_bts(gt, pred) == pytest.approx(100 * np.sqrt(var), rel=1e-10)
    assert metrics.silog_dav2(gt, pred) == pytest.approx(np.sqrt(var + 0.5 * mean**2), rel=1e-10)
    assert metrics.silog_loss_085(gt, pred) == pytest.approx(10 * np.sqrt(var + 0.15 * mean**2), rel=1e-10)
    assert metrics.irmse(gt, pred) == pytest.approx(np.sqrt(np.mean((1 / pred - 1 / gt) ** 2)), rel=1e-12)
