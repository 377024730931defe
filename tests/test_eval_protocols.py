"""Protocol invariants (docs/reference/evaluation_facts.md section 6) and equivalence with the reference
pipelines (Marigold ``script/depth/eval.py``, ZoeDepth ``compute_metrics``; section 1) re-derived here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from depthany.eval import align, protocols
from depthany.eval.protocols import PROTOCOLS, SkipSample, score_sample
from depthany.eval.settings import EvalSettings

NYU = EvalSettings(1e-3, 10.0, "none", mask_mode="range")


def _gt(rng: np.random.Generator, shape=(24, 32), lo=0.5, hi=9.0) -> np.ndarray:
    return rng.uniform(lo, hi, shape).astype(np.float64)


def score(pid: str, pred, kind, gt, settings=NYU, **kw):
    return score_sample(np.asarray(pred, np.float64), kind, np.asarray(gt, np.float64), PROTOCOLS[pid], settings, **kw)


# ---------------------------------------------------------------------------------------- 1. affine recovery


def test_exact_affine_recovery_in_disparity(rng) -> None:
    g = _gt(rng)
    p = (1.0 / g - 0.03) / 2.5  # disparity affine in GT disparity, all > 0
    for pid in ("disparity_lsq_eval_depth", "disparity_lsq_eval_disparity"):
        s = score(pid, p, "disparity", g)
        assert s.metrics["abs_rel"] <= 1e-9 and s.metrics["rmse"] <= 1e-9
        assert s.metrics["delta1"] == s.metrics["delta2"] == s.metrics["delta3"] == 1.0
        assert s.scale == pytest.approx(2.5, rel=1e-9) and s.shift == pytest.approx(0.03, abs=1e-9)


def test_exact_affine_recovery_in_depth(rng) -> None:
    g = _gt(rng)
    s = score("marigold_depth_lsq", (g + 0.7) / 3.0, "depth", g)
    assert s.metrics["abs_rel"] <= 1e-9 and s.metrics["delta1"] == 1.0 and s.metrics["rmse"] <= 1e-9


# ---------------------------------------------------------------------------------------- 2. discrimination


def test_protocols_disagree_where_they_should(rng) -> None:
    g = _gt(rng)
    affine_in_depth = 2.0 * g + 1.0
    assert score("marigold_depth_lsq", affine_in_depth, "depth", g).metrics["abs_rel"] <= 1e-9
    assert score("disparity_lsq_eval_depth", affine_in_depth, "depth", g).metrics["abs_rel"] > 0.01
    affine_in_disp_as_depth = 1.0 / (3.0 / g + 0.5)
    assert score("disparity_lsq_eval_depth", affine_in_disp_as_depth, "depth", g).metrics["abs_rel"] <= 1e-9
    assert score("marigold_depth_lsq", affine_in_disp_as_depth, "depth", g).metrics["abs_rel"] > 0.01
    noisy = 1.0 / g * np.exp(rng.normal(0, 0.3, g.shape))
    vals = {pid: score(pid, noisy, "disparity", g).metrics["abs_rel"]
            for pid in ("disparity_lsq_eval_depth", "disparity_lsq_eval_disparity")}
    assert abs(vals["disparity_lsq_eval_depth"] - vals["disparity_lsq_eval_disparity"]) > 1e-3


def test_disparity_predictions_refused_by_depth_protocols() -> None:
    g = np.full((4, 4), 2.0)
    for pid in ("marigold_depth_lsq", "median_scaling", "zoedepth_metric"):
        with pytest.raises(ValueError, match="relative disparity"):
            score(pid, g, "disparity", g)


# ---------------------------------------------------------------------------------------- 3. masks


def test_range_mask_is_strict_and_excludes_zero_and_inf() -> None:
    gt = np.array([[1e-3, 10.0, 5.0, 2.0, 0.0, np.inf]])
    valid = protocols.valid_mask(gt, NYU)
    assert valid.tolist() == [[False, False, True, True, False, False]]
    assert score("zoedepth_metric", np.full(gt.shape, 3.0), "depth", gt).n_valid == 2


def test_mask_only_ignores_range_and_range_ignores_mask() -> None:
    gt = np.array([[0.3, 400.0, 5.0, 7.0]])
    mask = np.array([[True, True, False, True]])
    diode = EvalSettings(0.6, 350.0, mask_mode="mask_only")
    assert protocols.valid_mask(gt, diode, mask).tolist() == [[True, True, False, True]]
    zoe = EvalSettings(1e-3, 10.0, mask_mode="range")
    assert protocols.valid_mask(gt, zoe, mask).tolist() == [[True, False, True, True]]
    both = EvalSettings(0.6, 350.0, mask_mode="range_and_mask")
    assert protocols.valid_mask(gt, both, mask).tolist() == [[False, False, False, True]]


def test_no_valid_pixels_is_a_skip() -> None:
    with pytest.raises(SkipSample):
        score("zoedepth_metric", np.ones((3, 3)), "depth", np.zeros((3, 3)))


# ---------------------------------------------------------------------------------------- 5. clipping order


def test_negative_aligned_disparity_becomes_max_depth() -> None:
    g = np.array([[1.0, 2.0, 4.0, 5.0, 8.0, 2.0]])
    p = 1.0 / g + 0.05  # fit: s = 1, t = -0.05
    p[0, -1] = 0.0  # excluded from the fit (pred > 0) but evaluated: aligned -0.05 -> 1e-3 -> 1000 m -> 10 m
    s = score("disparity_lsq_eval_depth", p, "disparity", g)
    assert s.scale == pytest.approx(1.0) and s.shift == pytest.approx(-0.05)
    assert s.metrics["abs_rel"] == pytest.approx(((10.0 - 2.0) / 2.0) / 6, rel=1e-9)


def test_zoedepth_clipping_order() -> None:
    out = protocols.clip_depth(np.array([np.nan, np.inf, -np.inf, 1e-4, 50.0, 3.0]), 1e-3, 10.0)
    assert out.tolist() == [1e-3, 10.0, 1e-3, 1e-3, 10.0, 3.0]
    gt = np.full((1, 4), 5.0)
    s = score("zoedepth_metric", [[np.nan, np.inf, 5.0, 5.0]], "depth", gt)
    expect = (abs(1e-3 - 5) / 5 + abs(10 - 5) / 5) / 4
    assert s.metrics["abs_rel"] == pytest.approx(expect, rel=1e-12) and s.n_nonfinite == 2


def test_toy_example_through_the_metric_protocol() -> None:
    gt = np.array([[1.0, 2.0, 4.0, 8.0]])
    s = score("zoedepth_metric", [[1.1, 1.5, 4.0, 12.0]], "depth", gt, EvalSettings(1e-3, 80.0, mask_mode="range"))
    m = s.metrics
    assert (m["delta1"], m["delta2"], m["delta3"]) == (0.5, 1.0, 1.0)
    assert m["abs_rel"] == pytest.approx(0.2125) and m["sq_rel"] == pytest.approx(0.53375)
    assert m["rmse"] == pytest.approx(2.016185, abs=1e-6) and m["rmse_log"] == pytest.approx(0.253104, abs=1e-6)
    assert m["silog_bts"] == pytest.approx(24.743422, abs=1e-6) and m["log10"] == pytest.approx(0.085606, abs=1e-6)


def test_median_scaling_then_clip() -> None:
    gt = np.array([[2.0, 4.0, 6.0, 9.9]])
    s = score("median_scaling", [[1.0, 2.0, 3.0, 100.0]], "depth", gt)  # ratio = 5 / 2.5 = 2
    assert s.scale == pytest.approx(2.0)
    assert s.metrics["abs_rel"] == pytest.approx(abs(10.0 - 9.9) / 9.9 / 4)  # 200 clipped to 10


def test_median_scaling_ignores_nonfinite_predictions_and_skips_without_a_positive_median() -> None:
    gt = np.array([[2.0, 4.0, 6.0, 9.9]])
    s = score("median_scaling", [[1.0, 2.0, np.nan, 3.0]], "depth", gt)  # median of (1, 2, 3) = 2; of gt = 5
    assert s.scale == pytest.approx(2.5) and s.n_nonfinite == 1
    for pred in ([[-1.0, -2.0, 0.0, 3.0]], [[np.nan] * 4]):  # median -0.5; no finite pixel at all
        with pytest.raises(SkipSample, match="median of the prediction on valid pixels is not positive"):
            score("median_scaling", pred, "depth", gt)


# ------------------------------------------------------------------------ equivalence with the reference pipeline


def _marigold_reference(gt, pred, valid, lo, hi, disparity: bool, max_res=None):
    """Marigold eval.py + alignment.py, re-derived from the published description (lstsq, torch Upsample)."""
    g_fit = np.zeros_like(gt)
    g_fit[gt > 0] = 1.0 / gt[gt > 0]
    target = g_fit if disparity else gt
    mask = valid & (gt > 0) & (pred > 0) if disparity else valid
    t, p, m = target, pred, mask
    if max_res is not None:
        sf = np.min(max_res / np.array(gt.shape[-2:]))
        if sf < 1:
            up = torch.nn.Upsample(scale_factor=sf, mode="nearest")
            t = up(torch.as_tensor(t).unsqueeze(0)).numpy()
            p = up(torch.as_tensor(p).unsqueeze(0)).numpy()
            m = up(torch.as_tensor(m).unsqueeze(0).float()).bool().numpy()
    a = np.stack([p[m], np.ones(int(m.sum()))], 1)
    (s, sh), *_ = np.linalg.lstsq(a, t[m], rcond=None)
    out = pred * s + sh
    if disparity:
        out = 1.0 / np.clip(out, 1e-3, None)
    out = np.clip(np.clip(out, lo, hi), 1e-6, None)
    gv, pv = gt[valid], out[valid]
    return {"abs_rel": np.mean(np.abs(pv - gv) / gv), "delta1": np.mean(np.maximum(pv / gv, gv / pv) < 1.25),
            "rmse": np.sqrt(np.mean((pv - gv) ** 2)), "scale": s, "shift": sh}


@pytest.mark.parametrize("pid", ["marigold_depth_lsq", "disparity_lsq_eval_depth"])
@pytest.mark.parametrize("max_res", [None, 16])
def test_matches_marigold_pipeline(rng, pid, max_res) -> None:
    g = _gt(rng, (40, 60), 0.2, 12.0)
    g[rng.random(g.shape) < 0.2] = 0.0
    pred = np.clip(1.0 / np.maximum(g, 0.3) + rng.normal(0, 0.2, g.shape), -0.5, None)
    if pid == "marigold_depth_lsq":
        pred = g * np.exp(rng.normal(0, 0.2, g.shape)) + 0.3
    settings = EvalSettings(1e-3, 10.0, mask_mode="range", alignment_max_res=max_res)
    kind = "depth" if pid == "marigold_depth_lsq" else "disparity"
    got = score_sample(pred, kind, g, PROTOCOLS[pid], settings)
    ref = _marigold_reference(g, pred, protocols.valid_mask(g, settings), 1e-3, 10.0, kind == "disparity", max_res)
    assert got.scale == pytest.approx(ref["scale"], rel=1e-9) and got.shift == pytest.approx(ref["shift"], abs=1e-9)
    for k in ("abs_rel", "delta1", "rmse"):
        assert got.metrics[k] == pytest.approx(ref[k], rel=1e-9)


# ---------------------------------------------------------------------------------------- 8. downsampled fit


def test_nearest_indices_match_torch() -> None:
    for n in (7, 37, 436, 1024, 4032, 6048):
        for sf in (0.5, 0.1693, 1024 / 6048, 0.3333):
            if math.floor(n * sf) < 1:
                continue
            ref = torch.nn.Upsample(scale_factor=sf, mode="nearest")(torch.arange(n, dtype=torch.float32)[None, None])
            assert np.array_equal(align.nearest_indices(n, sf), ref[0, 0].numpy().astype(np.int64)), (n, sf)


def test_downsample_width_only_is_marigold_and_both_is_2d() -> None:
    a = np.arange(40 * 60, dtype=np.float64).reshape(40, 60)
    w = align.downsample_for_fit(a, 16, "width")
    assert w.shape == (40, 16)  # Marigold's 3-D tensor: only the last axis is resampled
    ref = torch.nn.Upsample(scale_factor=float(np.min(16 / np.array([40, 60]))), mode="nearest")(
        torch.as_tensor(a).unsqueeze(0)).numpy()[0]
    assert np.array_equal(w, ref)
    assert align.downsample_for_fit(a, 16, "both").shape == (10, 16)
    assert align.downsample_for_fit(a, 100) is a


def test_downsampled_fit_equals_full_fit_for_affine_prediction(rng) -> None:
    g = _gt(rng, (90, 130))
    p = (g - 0.4) / 1.7
    mask = rng.random(g.shape) < 0.5
    full = align.fit_affine_masked(p, g, mask)
    for axes in ("width", "both"):
        small = align.fit_affine_masked(p, g, mask, max_res=32, axes=axes)
        assert small.n_fit < full.n_fit
        assert small.scale == pytest.approx(full.scale, rel=1e-10) and small.shift == pytest.approx(full.shift, abs=1e-9)


def test_degenerate_fit_is_lstsq_minimum_norm(rng) -> None:
    g = rng.uniform(1, 5, 50)
    fit = align.fit_affine_masked(np.full(50, 2.0), g, np.ones(50, bool))
    ref = np.linalg.lstsq(np.stack([np.full(50, 2.0), np.ones(50)], 1), g, rcond=None)[0]
    assert fit.degenerate and np.allclose([fit.scale, fit.shift], ref, atol=1e-12)
    assert fit.scale * 2.0 + fit.shift == pytest.approx(g.mean())
    with pytest.raises(align.AlignmentError):
        align.fit_affine_masked(np.ones(5), g[:5], np.zeros(5, bool))
