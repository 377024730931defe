"""Temporal alignment, colour range and flicker measurement (numpy only, no video IO)."""

from __future__ import annotations

import numpy as np
import pytest

from depthany.align import fit_scale_shift
from depthany.video.flicker import (
    FlickerMeter,
    SimulatedRelativeModel,
    flicker_index,
    moving_sequence,
    static_sequence,
)
from depthany.video.temporal import AdaptiveRange, TemporalAligner, normalise


@pytest.fixture(scope="module")
def still() -> np.ndarray:
    """True disparity (1/m) of a synthetic room seen by a still camera."""
    return static_sequence(1, 96, 128).disparity


def test_flicker_meter_values() -> None:
    a = np.zeros((4, 4), np.float32)
    b = a.copy()
    b[0, 0] = 1.0  # one pixel of 16 jumps by the whole colour map
    assert flicker_index([a, a, a]) == 0.0
    m = FlickerMeter()
    for x in (a, b, a):
        m.add(x)
    assert m.pairs == 2 and m.value == pytest.approx(1 / 16)
    assert m.global_value == 0.0  # the median pixel did not move: noise, not flicker
    assert flicker_index([a, a + 0.1]) == pytest.approx(0.1) and np.isnan(flicker_index([a]))
    m = FlickerMeter()
    m.add(a + 0.25)
    m.add(a)
    assert m.global_value == pytest.approx(0.25)
    assert np.isnan(m.relative_value)  # flat maps have no contrast to compare with
    ramp = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    m = FlickerMeter()
    m.add(ramp)
    m.add(ramp + 0.1)
    assert m.contrast == pytest.approx(float(ramp.std()), rel=1e-5)
    assert m.relative_value == pytest.approx(0.1 / float(ramp.std()), rel=1e-4)


def test_aligner_undoes_per_frame_affine_changes_exactly(still: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    aligner = TemporalAligner()
    first = None
    for _ in range(20):
        s, t = float(np.exp(rng.normal(0, 0.2))), float(rng.normal(0, 0.1))
        aligned, info = aligner.align(s * still + t)
        if first is None:
            first = aligned
            assert info.reset and (info.scale, info.shift) == (1.0, 0.0)
            continue
        assert not info.reset and not info.held
        np.testing.assert_allclose(aligned, first, atol=1e-5 * float(np.ptp(first)))


def test_outliers_do_not_move_the_fit(still: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    aligner = TemporalAligner()
    ref, _ = aligner.align(still)
    spiky = 0.7 * still + 0.05
    mask = rng.random(still.shape) < 0.15  # 15% of the pixels are garbage
    spiky[mask] += rng.uniform(-2, 2, int(mask.sum())) * float(np.ptp(still))
    aligned, info = aligner.align(spiky)
    np.testing.assert_allclose(aligned[~mask], ref[~mask], atol=1e-4 * float(np.ptp(still)))
    assert info.inliers < 0.9  # the garbage was left out of the fit


def test_scene_cut_restarts_the_reference(still: np.ndarray) -> None:
    other = static_sequence(1, 96, 128, seed=5, kind="outdoor").disparity
    aligner = TemporalAligner()
    for _ in range(3):
        aligner.align(still)
    aligned, info = aligner.align(other[::-1])  # a different shot, upside down
    assert info.reset
    ref_lo, ref_hi = np.percentile(still, [5, 95])
    lo, hi = np.percentile(aligned, [5, 95])
    assert (lo, hi) == pytest.approx((ref_lo, ref_hi), rel=0.03)  # colours stay comparable across the cut (grid percentiles)
    _, info = aligner.align(0.5 * other[::-1])
    assert not info.reset  # and the new shot is now the reference


def test_constant_and_empty_frames_hold_the_previous_map(still: np.ndarray) -> None:
    aligner = TemporalAligner()
    aligner.align(still)
    aligner.align(2 * still)
    _, info = aligner.align(np.full_like(still, 3.0))
    assert info.held and info.scale == pytest.approx(0.5)
    nan = np.full_like(still, np.nan)
    out, info = aligner.align(nan)
    assert np.isnan(out).all()
    with pytest.raises(ValueError, match="momentum"):
        TemporalAligner(momentum=0)


def test_alignment_stays_consistent_with_a_moving_camera() -> None:
    """On a camera path the map to the true disparity (scale, shift) must stay nearly the same over frames."""
    frames = moving_sequence(10, 72, 96)
    truth = [np.where(np.isfinite(d), 1 / d, 0).astype(np.float32) for _, d in frames]
    model = SimulatedRelativeModel(truth[0], seed=3, noise=0.003, spike_fraction=0.002)
    aligner = TemporalAligner()
    maps = []
    for d in truth:
        aligned, info = aligner.align(model(d))
        assert not info.reset or not maps
        maps.append(fit_scale_shift(d.ravel(), aligned.ravel()))
    scales = np.array([m[0] for m in maps])
    assert np.ptp(scales) / scales.mean() < 0.03  # raw model scale jitters by ~10% per frame


def test_adaptive_range_moves_slowly_and_frame_range_jumps(still: np.ndarray) -> None:
    slow = AdaptiveRange("adaptive", rate=0.1)
    lo0, hi0 = slow.update(still)
    assert (lo0, hi0) == pytest.approx(tuple(np.percentile(still, [0.5, 99.5])), rel=0.02)
    lo1, hi1 = slow.update(still * 2)
    assert hi1 == pytest.approx(hi0 + 0.1 * (2 * hi0 - hi0), rel=1e-6)
    frame = AdaptiveRange("frame")
    assert frame.update(still * 2) == (pytest.approx(2 * still.min()), pytest.approx(2 * still.max()))
    fixed = AdaptiveRange("fixed", vmin=0.1, vmax=0.9)
    assert fixed.update(still) == (0.1, 0.9)
    first = AdaptiveRange("fixed")
    assert first.update(still) == first.update(still * 3)  # the first frame's range for good
    with pytest.raises(ValueError, match="vmax"):
        AdaptiveRange("fixed", vmin=1.0)
    with pytest.raises(ValueError, match="range mode"):
        AdaptiveRange("wobbly")  # type: ignore[arg-type]
    np.testing.assert_allclose(normalise(np.array([[0.0, 0.5, 2.0]]), 0.0, 1.0), [[0.0, 0.5, 1.0]])


def test_alignment_removes_min_max_flicker_of_a_simulated_relative_model(still: np.ndarray) -> None:
    """Per-frame min/max flickers with a relative model's affine drift and spikes; alignment does not."""
    model = SimulatedRelativeModel(still, seed=2, noise=0.0)
    per_frame, ours = FlickerMeter(), FlickerMeter()
    frame_range, slow = AdaptiveRange("frame"), AdaptiveRange("adaptive")
    aligner = TemporalAligner()
    for _ in range(30):
        d = model()
        per_frame.add(normalise(d, *frame_range.update(d)))
        a, _ = aligner.align(d)
        ours.add(normalise(a, *slow.update(a)))
    assert per_frame.value > 0.01
    assert ours.value < per_frame.value / 10
    assert ours.global_value < 1e-3 < per_frame.global_value


def test_static_sequence_changes_pictures_but_not_depth() -> None:
    seq = static_sequence(3, 48, 64)
    assert len(seq.frames) == 3 and seq.frames[0].shape == (48, 64, 3)
    assert np.abs(seq.frames[0].astype(int) - seq.frames[1]).mean() > 2  # exposure and noise differ
    assert seq.valid.any() and np.isfinite(seq.disparity).all()
