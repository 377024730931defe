"""Video Depth Anything inference against the official offline and streaming code (tests/vda_oracle.py).

* end to end: our network + our streamed windows vs the oracle network + the oracle's whole-video stitching;
* the schedule: with the *same* network in both, our streamed windows must give the oracle's numbers
  bit for bit, for every edge case of the window schedule (N < 32, N = 32, 33, multiples of 22, wide frames);
* streaming: the official cache schedule, bit for bit with the same network, and end to end;
* constant memory: frames held and frames read ahead are counted, not timed.

Comparisons with the oracle *network* run at input size 42 (3x4 patches): at 28 (2x3 patches) the coarsest
level is 1x2 pixels, its 32-group GroupNorm normalises pairs of values, and float32 rounding differences of
1e-6 between two correct implementations grow to 1e-3. Bit-exact schedule checks use 28 (same network).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from depthany.video.vda import (
    StreamingVideoDepth,
    WindowedVideoDepth,
    crossfade_weights,
    fit_scale_shift,
    infer_video_depth,
    video_input_size,
)
from depthany.weights import load_into, read_checkpoint
from depthany.zoo import VDA_WINDOWS
from test_vda_models import TINY_VDA, TINY_VDA_METRIC, tiny_vda_spec
from vda_oracle import (
    OfficialStream,
    official_forward,
    official_infer_video_depth,
    official_input_size,
    official_interpolate,
    official_scale_shift,
    random_vda_state,
)

cv2 = pytest.importorskip("cv2")
from depthany.models import VideoDepthAnything  # noqa: E402


def video(n: int, h: int = 24, w: int = 36, seed: int = 0) -> np.ndarray:
    """A moving pattern (N, H, W, 3) uint8: smooth structure that shifts frame to frame, plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = []
    for t in range(n):
        r = 128 + 90 * np.sin((x + 1.5 * t) / 5) * np.cos(y / 4)
        g = 255 * ((x + t) % w) / w
        b = 128 + 100 * np.cos((y - t) / 6)
        img = np.stack([r, g, b], -1) + rng.normal(0, 8, (h, w, 3))
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(frames)


def model_and_state(head: str = "relative", seed: int = 5) -> tuple[VideoDepthAnything, dict[str, torch.Tensor]]:
    arch = TINY_VDA if head == "relative" else TINY_VDA_METRIC
    sd = random_vda_state(arch, seed)
    net = VideoDepthAnything(arch).eval()
    net.load_state_dict(sd, strict=True)
    return net, sd


@pytest.fixture(scope="module")
def relative() -> tuple[VideoDepthAnything, dict[str, torch.Tensor]]:
    return model_and_state("relative")


@pytest.fixture(scope="module")
def metric() -> tuple[VideoDepthAnything, dict[str, torch.Tensor]]:
    return model_and_state("metric", seed=6)


def ours(net: VideoDepthAnything, frames, input_size: int, head: str = "relative", mode: str = "window") -> np.ndarray:
    out = list(infer_video_depth(net, tiny_vda_spec(head), iter(frames), mode, input_size))  # type: ignore[arg-type]
    assert [f.index for f in out] == list(range(len(frames)))
    assert all(f.values.dtype == np.float32 and f.values.shape == frames.shape[1:3] for f in out)
    return np.stack([f.values for f in out])


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / (ref.max() - ref.min()))


# ------------------------------------------------------------------------------------------------ pieces


@pytest.mark.parametrize("h,w", [(720, 1280), (1080, 1920), (480, 1280), (800, 1920), (1280, 720), (64, 64),
                                 (100, 178), (100, 179), (30, 1000)])
@pytest.mark.parametrize("size", [518, 280])
def test_input_size_reduction_for_wide_videos(h, w, size) -> None:
    assert video_input_size(h, w, size, VDA_WINDOWS) == official_input_size(h, w, size)
    assert video_input_size(480, 1280, 518, VDA_WINDOWS) == 350


def test_alignment_and_crossfade_pieces_are_the_official_arithmetic() -> None:
    rng = np.random.default_rng(1)
    p, t = rng.random((2, 40, 30), dtype=np.float32), rng.random((2, 40, 30), dtype=np.float32) * 3 + 1
    got = fit_scale_shift(np.concatenate(list(p)), np.concatenate(list(t)))
    ref = official_scale_shift(np.concatenate(list(p)), np.concatenate(list(t)), np.ones((80, 30), bool))
    assert got == ref and isinstance(got[0], np.float32)
    assert fit_scale_shift(np.ones((4, 4), np.float32), p[0, :4, :4]) == (1, 0)  # singular: identity
    frames = [rng.random((5, 6), dtype=np.float32) for _ in range(16)]
    mine = [a * (1 - c) + b * c for a, b, c in zip(frames[:8], frames[8:], crossfade_weights(8))]
    assert all(np.array_equal(a, b) for a, b in zip(mine, official_interpolate(frames[:8], frames[8:])))


# ------------------------------------------------------------------------------------------------ offline


def test_windowed_matches_official_end_to_end(relative) -> None:
    """Our network and streamed windows vs the oracle network and whole-video stitching (4 windows)."""
    net, sd = relative
    frames = video(70)
    got = ours(net, frames, 42)
    ref = official_infer_video_depth(lambda x: official_forward(sd, TINY_VDA, x)[0], frames, 42)
    assert got.shape == ref.shape == (70, 24, 36)
    assert rel_err(got, ref) <= 1e-4


def test_stitching_matters(relative) -> None:
    """The check can fail: skipping the alignment of later windows, or the cross-fade, moves the output by far
    more than the tolerance above."""
    net, sd = relative
    frames = video(50, seed=2)
    ref = official_infer_video_depth(lambda x: net(x), frames, 28)
    runner = WindowedVideoDepth(net, tiny_vda_spec(), 28)
    out = list(runner.run(frames))
    scales = {f.window: f.scale for f in out}
    assert scales[0] == 1.0 and abs(scales[1] - 1.0) > 1e-3 and abs(scales[2] - 1.0) > 1e-3
    unaligned = official_infer_video_depth(lambda x: net(x), frames, 28, metric=True)
    assert rel_err(unaligned, ref) > 1e-3


@pytest.mark.parametrize("n", [1, 10, 22, 23, 32, 33, 44, 66, 67])
def test_window_schedule_is_bit_exact(relative, n) -> None:
    """Same network in both: the streamed windows reproduce the whole-video official stitching exactly."""
    net, _ = relative
    frames = video(n, seed=n)
    calls = []
    hook = net.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[1]))
    try:
        got = ours(net, frames, 28)
    finally:
        hook.remove()
    assert calls == [32] * max(1, -(-n // 22))  # one 32-frame clip per window, ceil(N / 22) windows
    ref = official_infer_video_depth(lambda x: net(x), frames, 28)
    assert np.array_equal(got, ref)


def test_wide_video_runs_at_the_reduced_size(relative) -> None:
    net, _ = relative
    frames = video(30, h=16, w=48, seed=3)  # ratio 3 > 1.78: 56 -> round(int(56 * 1.777 / 3) / 14) * 14 = 28
    out = list(infer_video_depth(net, tiny_vda_spec(), frames, "window", 56))
    assert out[0].network_size == (28, 84)
    ref = official_infer_video_depth(lambda x: net(x), frames, 56)
    assert np.array_equal(np.stack([f.values for f in out]), ref)


def test_metric_windows_are_not_aligned(metric) -> None:
    net, sd = metric
    frames = video(50, seed=4)
    got = list(WindowedVideoDepth(net, tiny_vda_spec("metric"), 28).run(frames))
    assert all(f.kind == "metric_depth" and f.scale == 1.0 and f.shift == 0.0 for f in got)
    ref = official_infer_video_depth(lambda x: net(x), frames, 28, metric=True)
    assert np.array_equal(np.stack([f.values for f in got]), ref)
    frames = frames[:30]
    end_to_end = official_infer_video_depth(lambda x: official_forward(sd, TINY_VDA_METRIC, x)[0], frames, 42,
                                            metric=True)
    assert rel_err(ours(net, frames, 42, "metric"), end_to_end) <= 1e-4


def test_constant_memory_in_video_length(relative) -> None:
    """Frames read ahead of the output and frame-sized arrays held stay bounded by the window length,
    whatever the video's length; the bound is the same for 60 and 200 frames."""
    net, _ = relative
    frames = video(23, h=14, w=14, seed=5)
    peaks = {}
    for n in (60, 200):
        read = 0

        def source(n: int = n):
            nonlocal read
            for i in range(n):
                read += 1
                yield frames[i % len(frames)]

        runner = WindowedVideoDepth(net, tiny_vda_spec(), 14)
        ahead = held = done = 0
        for f in runner.run(source()):
            assert f.index == done
            done += 1
            ahead = max(ahead, read - done)
            held = max(held, runner.held_frames)
        assert done == n
        peaks[n] = (ahead, held)
    assert peaks[60] == peaks[200]
    ahead, held = peaks[200]
    assert ahead <= VDA_WINDOWS.length and held <= VDA_WINDOWS.overlap + VDA_WINDOWS.interp + 2


def test_bad_frames_are_named(relative) -> None:
    net, _ = relative
    frames = list(video(5))
    frames[3] = frames[3][:, :-2]
    with pytest.raises(ValueError, match="frame 3: expected an .24, 36, 3. RGB array"):
        list(infer_video_depth(net, tiny_vda_spec(), frames, "window", 28))
    with pytest.raises(ValueError, match="no frames"):
        list(infer_video_depth(net, tiny_vda_spec(), [], "window", 28))
    with pytest.raises(ValueError, match="mode must be one of window, streaming"):
        infer_video_depth(net, tiny_vda_spec(), frames, "offline", 28)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="too wide"):
        list(infer_video_depth(net, tiny_vda_spec(), [np.zeros((2, 400, 3), np.uint8)], "window", 28))


def test_reduced_precision_runs_close_to_fp32(relative) -> None:
    net, _ = relative
    frames = video(8, seed=6)
    fp32 = ours(net, frames, 42)
    bf16 = np.stack([f.values for f in infer_video_depth(net, tiny_vda_spec(), frames, "window", 42, "bf16")])
    assert np.isfinite(bf16).all()
    assert 0 < np.abs(bf16 - fp32).mean() / (fp32.max() - fp32.min()) < 0.02  # autocast ran, and stays close


def test_loaded_official_file_end_to_end(tmp_path) -> None:
    """The file path a user takes: an official-layout .pth, strictly loaded, through the windows."""
    sd = random_vda_state(TINY_VDA, seed=8)
    torch.save(sd, tmp_path / "tiny.pth")
    net = VideoDepthAnything(TINY_VDA).eval()
    load_into(net, read_checkpoint(tmp_path / "tiny.pth"))
    frames = video(26, seed=7)
    ref = official_infer_video_depth(lambda x: official_forward(sd, TINY_VDA, x)[0], frames, 42)
    assert rel_err(ours(net, frames, 42), ref) <= 1e-4


# ------------------------------------------------------------------------------------------------ streaming


def _official_stream(net: VideoDepthAnything | None, sd: dict | None, frames: np.ndarray, size: int):
    def forward(clip, cache):
        if net is not None:
            return net.forward_depth(net.forward_features(clip), tuple(clip.shape), cache)
        return official_forward(sd, TINY_VDA, clip, cache)

    stream = OfficialStream(forward, size)
    return np.stack([stream.step(f) for f in frames]), stream


def test_streaming_is_bit_exact_and_keeps_the_official_schedule(relative) -> None:
    net, _ = relative
    frames = video(46, seed=8)
    runner = StreamingVideoDepth(net, tiny_vda_spec(), 28)
    got, slots = [], []
    for f in frames:
        out = runner.step(f)
        got.append(out.values)
        slots.append(runner.cached_frames)
    with torch.inference_mode():
        ref, stream = _official_stream(net, None, frames, 28)
    assert np.array_equal(np.stack(got), ref)
    assert slots[:12] == [32, *range(33, 43), 42] and set(slots[11:]) == {42}  # bounded at gap + 1
    for n, ids in enumerate(stream.context_ids, start=1):  # frame n's context in the official bookkeeping
        if n >= 42:
            assert ids == [0, n - 41, *range(n - 29, n)]
        assert len(ids) == 31


def test_streaming_matches_official_end_to_end(relative) -> None:
    net, sd = relative
    frames = video(16, seed=9)
    got = ours(net, frames, 42, mode="streaming")
    with torch.no_grad():
        ref, _ = _official_stream(None, sd, frames, 42)
    assert rel_err(got, ref) <= 1e-4
    offline = ours(net, frames, 42)
    assert rel_err(got, offline) > 1e-3  # a different mode: the comparison above can fail


def test_streaming_metric_and_reset(metric) -> None:
    net, _ = metric
    frames = video(12, seed=10)
    runner = StreamingVideoDepth(net, tiny_vda_spec("metric"), 28)
    first = [f.values for f in runner.run(frames)]
    again = [f.values for f in runner.run(iter(frames))]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))  # run() starts a fresh stream
    out = runner.step(frames[0])
    assert out.index == 12 and out.kind == "metric_depth" and out.window is None
    with pytest.raises(ValueError, match="frame 13"):
        runner.step(frames[0][:-1])
    assert list(itertools.islice(runner.run(frames), 1))[0].index == 0


def test_windowed_runner_restarts_cleanly(relative) -> None:
    """An abandoned run (the consumer stopped early) leaves nothing behind for the next one."""
    net, _ = relative
    frames = video(30, h=14, w=14, seed=11)
    runner = WindowedVideoDepth(net, tiny_vda_spec(), 14)
    assert [f.index for f in itertools.islice(runner.run(frames), 3)] == [0, 1, 2]
    again = np.stack([f.values for f in runner.run(frames)])
    fresh = np.stack([f.values for f in WindowedVideoDepth(net, tiny_vda_spec(), 14).run(frames)])
    assert np.array_equal(again, fresh)
