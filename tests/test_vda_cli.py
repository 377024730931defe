"""``depthany video --model vda-*`` and ``VideoDepthPredictor`` against the official code (tests/vda_oracle.py).

The checkpoint is a random full-size ViT-S file in the official layout under its official name
(``video_depth_anything_vits.pth``: strict loading, file-name recognition), run at input size 42 (3x4 patches)
to stay fast. The sources are a real MPEG-4 file (written and decoded with PyAV directly, not with the code
under test) and a folder of PNGs of the same decoded frames, so both runs see the oracle's frames exactly.
The oracle's windows are computed once per input (its network is memoised on the clip's bytes).

30 frames = two windows: frames 24..29 come from the second window, aligned by the least-squares fit onto the
first one and cross-faded, so the stitching is part of what the npz must reproduce.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from click.testing import CliRunner, Result  # noqa: E402

from depthany import zoo  # noqa: E402
from depthany.budget import InputBudgetError  # noqa: E402
from depthany.cli.main import cli  # noqa: E402
from depthany.video import FrameSource, VideoOptions, process_video  # noqa: E402
from depthany.video.source import Frame  # noqa: E402
from depthany.video.vda import VideoDepthPredictor, infer_video_depth  # noqa: E402
from depthany.weights import save_weights  # noqa: E402
from test_vda_inference import model_and_state, video  # noqa: E402
from test_vda_models import tiny_vda_spec  # noqa: E402
from vda_oracle import OfficialStream, official_forward, official_infer_video_depth, random_vda_state  # noqa: E402

N, H, W, SIZE = 30, 24, 36, 42
STREAMED = 12  # frames checked in streaming mode (the cache schedule over long streams: test_vda_inference)
VITS = zoo.get_spec("vda-small").arch


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    sd = random_vda_state(VITS, seed=3)
    path = tmp_path_factory.mktemp("ckpt") / "video_depth_anything_vits.pth"
    torch.save(sd, path)
    return path, sd


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """(an MPEG-4 file, a PNG folder, the (N, H, W, 3) RGB frames PyAV decodes from the file)."""
    root = tmp_path_factory.mktemp("clip")
    path = root / "walk.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=Fraction(25))
        s.height, s.width, s.pix_fmt, s.options = H, W, "yuv420p", {"qscale": "2"}
        for f in video(N, H, W, seed=1):
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())
    with av.open(str(path)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])])
    assert frames.shape == (N, H, W, 3)
    folder = root / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), f[:, :, ::-1])
    return path, folder, frames


@pytest.fixture(scope="module")
def oracle(official, clip) -> dict[str, np.ndarray]:
    """The official outputs for the clip: offline relative, offline metric (same network), streaming."""
    sd = official[1]
    frames = clip[2]
    memo: dict[bytes, torch.Tensor] = {}

    def forward(x: torch.Tensor) -> torch.Tensor:
        key = x.numpy().tobytes()
        if key not in memo:
            memo[key] = official_forward(sd, VITS, x)[0]
        return memo[key]

    with torch.no_grad():
        stream = OfficialStream(lambda x, cache: official_forward(sd, VITS, x, cache), SIZE)
        return {"window": official_infer_video_depth(forward, frames, SIZE),
                "unaligned": official_infer_video_depth(forward, frames, SIZE, metric=True),
                "streaming": np.stack([stream.step(f) for f in frames[:STREAMED]])}


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(cli, ["video", *map(str, args), "--quiet"], catch_exceptions=False)
    return result


def read_npz(path: Path, n: int = N) -> tuple[np.ndarray, dict]:
    with np.load(path) as z:
        names = sorted(n for n in z.files if n.startswith("frame_"))
        assert names == [f"frame_{i:06d}" for i in range(n)]
        return np.stack([z[n] for n in names]), {"meta": json.loads(z["meta"].item()), "scale": z["scale"]}


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / (ref.max() - ref.min()))


def test_video_file_npz_is_the_official_offline_output(tmp_path, official, clip, oracle) -> None:
    """``depthany video walk.mp4 --model vda-small --weights video_depth_anything_vits.pth``: the npz holds the
    official ``infer_video_depth(frames, fps, input_size, fp32=True)`` per frame; the MP4 is H.264 with every
    frame."""
    r = invoke(clip[0], "--model", "vda-small", "--weights", official[0], "--input-size", SIZE, "-o",
               tmp_path / "d.mp4", "--layout", "depth", "--raw", "npz", "--raw-out", tmp_path / "d.npz")
    assert r.exit_code == 0, r.output
    got, extra = read_npz(tmp_path / "d.npz")
    assert got.dtype == np.float32 and rel_err(got, oracle["window"]) <= 1e-4
    assert rel_err(got, oracle["unaligned"]) > 1e-3  # the second window's alignment is in the numbers
    assert extra["meta"]["mode"] == "window" and extra["meta"]["temporal"] == "none"
    assert extra["scale"][0] == 1.0 and extra["scale"][-1] != 1.0  # frames 24.. carry the second window's fit
    with av.open(str(tmp_path / "d.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in c.decode(c.streams.video[0])) == N


def test_frame_folder_in_streaming_mode(tmp_path, official, clip, oracle) -> None:
    """``--mode streaming`` is the official ``infer_video_depth_one``, frame by frame."""
    r = invoke(clip[1], "--model", "vda-small", "--weights", official[0], "--input-size", SIZE, "--mode", "streaming",
               "--max-frames", STREAMED, "--no-video", "--raw", "npz", "--raw-out", tmp_path / "s.npz")
    assert r.exit_code == 0, r.output
    got, extra = read_npz(tmp_path / "s.npz", STREAMED)
    assert rel_err(got, oracle["streaming"]) <= 1e-4 and extra["meta"]["mode"] == "streaming"
    assert rel_err(got, oracle["window"][:STREAMED]) > 1e-3  # another mode: the comparison can fail


def test_metric_model_stitches_without_alignment(tmp_path, clip) -> None:
    """A metric model (tiny, depthany's self-describing file) writes metres, windows stitched without the
    scale/shift fit, as the official code with ``metric=True``."""
    net, sd = model_and_state("metric", seed=6)
    spec = tiny_vda_spec("metric")
    save_weights(net.state_dict(), spec, tmp_path / "m.safetensors", fmt="depthany")
    r = invoke(clip[1], "--weights", tmp_path / "m.safetensors", "--input-size", SIZE, "--no-video", "--raw", "npz",
               "--raw-out", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    got, extra = read_npz(tmp_path / "m.npz")
    assert extra["meta"]["kind"] == "metric_depth" and extra["meta"]["unit"] == "m" and set(extra["scale"]) == {1.0}
    with torch.no_grad():
        ref = official_infer_video_depth(lambda x: official_forward(sd, spec.arch, x)[0], clip[2], SIZE, metric=True)
        aligned = official_infer_video_depth(lambda x: official_forward(sd, spec.arch, x)[0], clip[2], SIZE)
    assert rel_err(got, ref) <= 1e-4 and rel_err(got, aligned) > 1e-3
    # 16-bit frames: the same values to 16-bit precision, with the sequence's timing
    from depthany.io.depth import read_png16

    r = invoke(clip[1], "--weights", tmp_path / "m.safetensors", "--input-size", SIZE, "--no-video", "--raw", "png16",
               "--raw-out", tmp_path / "png")
    assert r.exit_code == 0, r.output
    pngs = [read_png16(tmp_path / "png" / f"frame_{i:06d}.png") for i in range(N)]
    assert pngs[0][1]["unit"] == "m" and not (tmp_path / "png" / f"frame_{N:06d}.png").exists()
    assert rel_err(np.stack([v for v, _ in pngs]), got) <= 2 / 65535
    assert json.loads((tmp_path / "png" / "sequence.json").read_text())["frames"] == N


def test_cli_refuses_mixed_up_options(tmp_path, official, clip) -> None:
    r = invoke(clip[1], "--weights", official[0], "--temporal", "ema", "--no-video", "--raw", "npz")
    assert r.exit_code == 2 and "temporally consistent" in r.output
    tiny = tmp_path / "tiny.safetensors"
    from conftest import random_model, tiny_spec

    save_weights(random_model(tiny_spec()).state_dict(), tiny_spec(), tiny, fmt="depthany")
    r = invoke(clip[1], "--weights", tiny, "--mode", "window", "--no-video", "--raw", "npz")
    assert r.exit_code == 2 and "--mode is for Video Depth Anything models" in r.output


# ------------------------------------------------------------------------------------ Python API, tiny model


@pytest.fixture(scope="module")
def tiny() -> VideoDepthPredictor:
    net, _ = model_and_state("relative", seed=5)
    return VideoDepthPredictor(net, tiny_vda_spec(), input_size=42)


def test_predictor_returns_the_inference_results(tiny) -> None:
    frames = video(12, seed=2)
    out = list(tiny.predict(frames))
    ref = list(infer_video_depth(tiny.model, tiny.spec, frames, "window", 42))
    assert [f.index for f in out] == list(range(12)) and out[0].kind == tiny.kind == "relative_disparity"
    assert all(np.array_equal(a.values, b.values) for a, b in zip(out, ref))
    live = tiny.stream()
    streamed = np.stack([live.step(f).values for f in frames])
    assert np.array_equal(streamed, tiny.predict_array(frames, mode="streaming"))
    with pytest.raises(ValueError, match="mode must be one of window, streaming"):
        VideoDepthPredictor(tiny.model, tiny.spec, mode="offline")


def test_budget_leaves_ordinary_videos_alone_and_shrinks_the_rest(tiny) -> None:
    """At the official input size no frame reaches the default budget (wide frames are reduced first); a larger
    input size shrinks to the budget, and the shrunk frames run at the fitted size."""
    official = VideoDepthPredictor(tiny.model, tiny.spec)  # input size 518, default budget
    for h, w in [(720, 1280), (1080, 1920), (480, 1280), (1280, 720), (2160, 3840), (100, 1000)]:
        fit = official.fit(h, w)
        assert not fit.shrunk and fit.tokens <= 2442
    big = VideoDepthPredictor(tiny.model, tiny.spec, input_size=1120)
    assert big.fit(720, 1280).shrunk and big.fit(720, 1280).tokens <= big.max_tokens
    small = VideoDepthPredictor(tiny.model, tiny.spec, input_size=42, max_tokens=6)
    fit = small.fit(H, W)
    assert fit.official_size == (42, 56) and fit.network_size == (28, 42) and fit.tokens == 6
    out = list(small.predict(video(3, seed=4)))
    assert out[0].network_size == (28, 42) and out[0].values.shape == (H, W)
    with pytest.raises(InputBudgetError, match="cannot be fitted"):
        VideoDepthPredictor(tiny.model, tiny.spec, input_size=42, max_tokens=1).fit(H, W)


class LiveSource(FrameSource):
    """A webcam stand-in: live, no length."""

    live = True

    def __init__(self, frames: np.ndarray) -> None:
        self.frames, self.name, self.size = frames, "cam", frames.shape[1:3]

    def __iter__(self) -> Iterator[Frame]:
        for i, f in enumerate(self.frames):
            yield Frame(i, f, i, i / 30)


def test_live_sources_stream_and_budget_notes_are_logged(tmp_path, tiny) -> None:
    frames = video(9, seed=6)
    notes: list[str] = []
    report = process_video(LiveSource(frames), tiny, None, VideoOptions(raw_format="npz", raw_path=tmp_path / "l.npz"))
    assert report.mode == "streaming" and report.frames == 9
    with np.load(tmp_path / "l.npz") as z:
        got = np.stack([z[f"frame_{i:06d}"] for i in range(9)])
    assert np.array_equal(got, tiny.predict_array(frames, mode="streaming"))
    shrunk = VideoDepthPredictor(tiny.model, tiny.spec, input_size=42, max_tokens=6)
    report = process_video(LiveSource(frames), shrunk, None, VideoOptions(raw_format="npz", raw_path=tmp_path / "b.npz"),
                           log=notes.append, mode="window")
    assert report.mode == "window" and report.input_budget["shrunk"] and len(notes) == 1 and "42x28" in notes[0]


def test_public_api_exports_the_video_predictor() -> None:
    import depthany

    assert depthany.VideoDepthPredictor is VideoDepthPredictor and "VideoDepthPredictor" in depthany.__all__


# ------------------------------------------------------------------------------------------------- bad input


def test_unreadable_and_empty_videos_fail_naming_the_file(tmp_path, official) -> None:
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 20)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "noframes").mkdir()
    for name, reason in {"text.mp4": "cannot open as a video", "empty.mp4": "empty", "missing.mp4": "no such file",
                         "noframes": "no image files"}.items():
        r = invoke(tmp_path / name, "--weights", official[0], "--input-size", SIZE, "--no-video", "--raw", "npz",
                   "--raw-out", tmp_path / "x.npz")
        assert r.exit_code == 1 and reason in r.output and str(tmp_path / name) in r.output, r.output
    assert not (tmp_path / "x.npz").exists()


class ListSource(FrameSource):
    """A file stand-in with given frames (sizes may differ: a stream whose resolution changes)."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames, self.name, self.size = frames, "clip.mkv", None

    def __iter__(self) -> Iterator[Frame]:
        for i, f in enumerate(self.frames):
            yield Frame(i, f, i, i / 30)


def test_zero_frames_and_size_changes_end_the_video_cleanly(tmp_path, tiny) -> None:
    """No decoded frame is a named error; a frame of another size ends the input there (as a truncated file does):
    every earlier frame is finished exactly as for the video cut before it, in both modes."""
    from depthany.video import VideoReadError

    with pytest.raises(VideoReadError, match="clip.mkv: no frame could be decoded"):
        process_video(ListSource([]), tiny, tmp_path / "x.mp4")
    frames = list(video(25, seed=7))
    odd = [*frames, np.zeros((H + 2, W, 3), np.uint8), frames[0]]
    for mode in ("window", "streaming"):
        raw = tmp_path / f"{mode}.npz"
        report = process_video(ListSource(odd), tiny, tmp_path / f"{mode}.mp4",
                               VideoOptions(raw_format="npz", raw_path=raw), mode=mode)
        assert report.frames == 25 and "frame 25 is 36x26" in (report.stopped_early or "")
        with np.load(raw) as z:
            got = np.stack([z[f"frame_{i:06d}"] for i in range(25)])
            assert "frame_000025" not in z.files
        assert np.array_equal(got, tiny.predict_array(frames, mode=mode))
        with av.open(str(tmp_path / f"{mode}.mp4")) as c:
            assert sum(1 for _ in c.decode(c.streams.video[0])) == 25


def test_from_pretrained_reads_official_files_and_refuses_image_models(tmp_path, official) -> None:
    from conftest import random_model, tiny_spec
    from depthany.weights import WeightsError

    p = VideoDepthPredictor.from_pretrained(weights=official[0], input_size=SIZE, mode="streaming")
    assert (p.spec.name, p.mode, p.kind, p.device.type) == ("vda-small", "streaming", "relative_disparity", "cpu")
    key = "head.motion_modules.2.temporal_transformer.proj_out.weight"
    assert torch.equal(p.model.state_dict()[key], official[1][key])
    tiny = tmp_path / "tiny.safetensors"
    save_weights(random_model(tiny_spec()).state_dict(), tiny_spec(), tiny, fmt="depthany")
    with pytest.raises(WeightsError, match="not a Video Depth Anything model"):
        VideoDepthPredictor.from_pretrained(weights=tiny)
    with pytest.raises(ValueError, match="precision"):
        VideoDepthPredictor(p.model, p.spec, precision="fp8")  # type: ignore[arg-type]
