"""depthany.video end to end: real H.264 encoding and decoding with PyAV, a tiny random model, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from click.testing import CliRunner, Result  # noqa: E402

from conftest import randomize, tiny_spec  # noqa: E402
from depthany import DepthPredictor  # noqa: E402
from depthany.cli.main import cli  # noqa: E402
from depthany.io.colormap import colorize  # noqa: E402
from depthany.io.depth import read_png16  # noqa: E402
from depthany.models import DepthAnything  # noqa: E402
from depthany.synth.render import render  # noqa: E402
from depthany.synth.worlds import WorldConfig, make_scene  # noqa: E402
from depthany.video import (  # noqa: E402
    VideoEncoder,
    VideoOptions,
    VideoReadError,
    open_source,
    process_video,
)
from depthany.video.flicker import moving_sequence  # noqa: E402
from depthany.weights import save_weights  # noqa: E402

H, W = 48, 64


def invoke(*args: str) -> Result:
    """Run the real ``depthany`` command line in-process."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def save_tiny(path: Path, head: str = "relative", seed: int = 0) -> Path:
    """A tiny random model whose output depends on the picture (conftest.randomize)."""
    spec = tiny_spec(head=head, max_depth=20.0 if head == "metric" else None)
    model = randomize(DepthAnything(spec.arch), seed)
    save_weights(model.state_dict(), spec, path, fmt="depthany")
    return path


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models run ~50x faster on one thread than on two oversubscribed ones on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("w") / "tiny.safetensors")


@pytest.fixture(scope="module")
def predictor(weights: Path) -> DepthPredictor:
    return DepthPredictor.from_pretrained(weights=weights, input_size=70, batch_size=4)


@pytest.fixture(scope="module")
def scenes() -> list[np.ndarray]:
    """12 frames of a camera moving through a synthetic room."""
    return [rgb for rgb, _ in moving_sequence(12, H, W, step=(0.05, 0.08, 0.0), yaw_step=0.02)]


@pytest.fixture(scope="module")
def worlds() -> list[np.ndarray]:
    """12 different synthetic worlds: frames whose depth pictures differ clearly from one another."""
    return [render(make_scene(0, i, WorldConfig(W, H, "mixed"))).rgb for i in range(12)]


def write_with_pyav(path: Path, frames: list[np.ndarray], codec: str = "mpeg4", rate: Fraction = Fraction(24000, 1001),
                    **options: str) -> None:
    """An input video written with PyAV directly (not with the code under test)."""
    with av.open(str(path), "w", options=options) as c:
        s = c.add_stream(codec, rate=rate)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.options = {"qscale": "2"} if codec == "mpeg4" else {"crf": "12"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def decode(path: Path) -> tuple[list[np.ndarray], list[float], dict]:
    """Frames, timestamps (s) and stream facts of a video, read with PyAV directly."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        info = {"codec": s.codec_context.name, "pix_fmt": s.codec_context.pix_fmt, "width": s.width,
                "height": s.height, "rate": s.average_rate}
        frames, times = [], []
        try:
            for f in c.decode(s):
                frames.append(f.to_ndarray(format="rgb24"))
                times.append(float(f.time))
        except av.error.InvalidDataError:  # a truncated input: keep what decoded
            pass
    return frames, times, info


def test_encoder_writes_browser_h264_with_odd_size_and_variable_timing(tmp_path: Path) -> None:
    y, x = np.mgrid[0:37, 0:51]
    frames = [np.stack([(x * 5 + 20 * i) % 256, y * 6, np.full_like(x, 90)], -1).astype(np.uint8) for i in range(6)]
    pts = [0, 3000, 6000, 12000, 15000, 30000]  # 1/90000 s units: uneven gaps
    out = tmp_path / "vfr.mp4"
    with VideoEncoder(out, 37, 51, Fraction(1, 90000), 30.0, crf=0) as enc:
        for f, p in zip(frames, pts):
            enc.write(f, p)
    got, times, info = decode(out)
    assert (info["codec"], info["pix_fmt"], info["width"], info["height"]) == ("h264", "yuv420p", 52, 38)
    assert len(got) == 6
    np.testing.assert_allclose(times, np.array(pts) / 90000, atol=1e-6)
    for a, b in zip(got, frames):
        assert np.abs(a[:37, :51].astype(int) - b).mean() < 3.0  # lossy 4:2:0, but the same picture
        np.testing.assert_array_equal(a[37], a[36])  # padding repeats the edge
    with open(out, "rb") as f:
        head = f.read(4096)
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head  # index first: streams in browsers


def test_video_file_depth_matches_the_predictor_frame_by_frame(tmp_path: Path, predictor: DepthPredictor,
                                                               worlds: list[np.ndarray]) -> None:
    src = tmp_path / "walk.mkv"
    write_with_pyav(src, worlds)
    decoded, src_times, src_info = decode(src)
    direct = [predictor.predict(f).values for f in decoded]
    vmin = float(min(d.min() for d in direct))
    vmax = float(max(d.max() for d in direct))
    # gray: all of the picture is in luma, which 4:2:0 keeps at full resolution (colour is checked above)
    opts = VideoOptions(layout="side-by-side", cmap="gray", temporal="none", range="fixed", vmin=vmin, vmax=vmax, crf=0,
                        raw_format="npz", raw_path=tmp_path / "walk.npz")
    report = process_video(src, predictor, tmp_path / "walk.mp4", opts)
    assert report.frames == 12 and not report.interrupted and report.stopped_early is None

    frames, times, info = decode(tmp_path / "walk.mp4")
    assert (info["codec"], info["pix_fmt"]) == ("h264", "yuv420p")
    assert (info["height"], info["width"]) == (H, 2 * W + 50)
    assert info["rate"] == src_info["rate"] == Fraction(24000, 1001)
    # Matroska stores milliseconds (0, 42, 83, ...); the output puts them back on the exact 24000/1001 grid.
    np.testing.assert_allclose(times, np.arange(12) * 1001 / 24000, atol=1e-6)
    assert np.abs(np.array(times) - src_times).max() <= 1e-3
    expected = [colorize(d, "gray", vmin, vmax) for d in direct]
    for i, f in enumerate(frames):
        err = [np.abs(f[:, W + 50:].astype(int) - e).mean() for e in expected]
        assert err[i] < 2.5, f"frame {i}: depth picture differs from the predictor's by {err[i]:.1f}"
        assert min(e for j, e in enumerate(err) if j != i) > 2 * err[i]  # this frame's picture, not another's
        assert np.abs(f[:, :W].astype(int) - decoded[i]).mean() < 4.0  # the source on the left
        assert f[:, W + 5:W + 45].min() > 240  # white gap

    with np.load(tmp_path / "walk.npz") as z:
        assert sorted(k for k in z.files if k.startswith("frame_")) == [f"frame_{i:06d}" for i in range(12)]
        for i in range(12):
            np.testing.assert_allclose(z[f"frame_{i:06d}"], direct[i], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(z["time"], src_times, atol=1e-6)  # raw output: the source's own timestamps
        meta = json.loads(str(z["meta"]))
        assert meta["kind"] == "relative_disparity" and meta["frames"] == 12 and meta["temporal"] == "none"


def test_png16_sequence_holds_aligned_values_and_the_way_back(tmp_path: Path, predictor: DepthPredictor,
                                                              scenes: list[np.ndarray]) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(scenes[:6]):
        from PIL import Image

        Image.fromarray(f).save(folder / f"img{i + 1}.png")  # img1 .. img6: natural order, not img1, img10...
    raw = tmp_path / "raw"
    report = process_video(folder, predictor, None, VideoOptions(raw_format="png16", raw_path=raw))
    assert report.frames == 6 and report.output is None
    seq = json.loads((raw / "sequence.json").read_text())
    assert seq["fps"] == 30.0 and seq["frames"] == 6 and seq["pts"] == list(range(6))
    for i in range(6):
        values, meta = read_png16(raw / f"frame_{i:06d}.png")
        assert meta["frame"] == i and meta["kind"] == "relative_disparity" and meta["unit"] is None
        s, t = meta["temporal_alignment"]["scale"], meta["temporal_alignment"]["shift"]
        assert (s, t) == (seq["alignment_scale"][i], seq["alignment_shift"][i])
        direct = predictor.predict(scenes[i]).values
        step = meta["scale"]  # png16 quantisation step
        np.testing.assert_allclose((values - t) / s, direct, atol=(step / s) * 0.6 + 1e-5)
    assert seq["alignment_scale"][0] == 1.0 and seq["alignment_shift"][0] == 0.0


def test_image_sequence_glob_with_fps(tmp_path: Path, predictor: DepthPredictor, scenes: list[np.ndarray]) -> None:
    from PIL import Image

    for i, f in enumerate(scenes[:5]):
        Image.fromarray(f).save(tmp_path / f"f{i:03d}.jpg", quality=95)
    (tmp_path / "notes.txt").write_text("not a frame")
    source = open_source(str(tmp_path / "f*.jpg"), fps=12.5)
    report = process_video(source, predictor, tmp_path / "out.mp4", VideoOptions(layout="depth"))
    frames, times, info = decode(tmp_path / "out.mp4")
    assert len(frames) == report.frames == 5
    assert info["rate"] == Fraction(25, 2) and (info["height"], info["width"]) == (H, W)
    np.testing.assert_allclose(times, np.arange(5) / 12.5, atol=1e-6)


def test_truncated_input_gives_a_playable_video_of_the_decoded_frames(tmp_path: Path, predictor: DepthPredictor,
                                                                     scenes: list[np.ndarray], weights: Path) -> None:
    full = tmp_path / "full.mp4"
    write_with_pyav(full, scenes * 3, codec="libx264", rate=Fraction(25), movflags="+faststart")
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 55 // 100])
    readable = len(decode(cut)[0])
    assert 0 < readable < 36
    report = process_video(cut, predictor, tmp_path / "out.mp4", VideoOptions(layout="depth"))
    assert report.frames == readable
    assert report.stopped_early and "truncated" in report.stopped_early
    frames, times, info = decode(tmp_path / "out.mp4")
    assert len(frames) == readable and info["codec"] == "h264"
    np.testing.assert_allclose(times, np.arange(readable) / 25, atol=1e-6)

    # The CLI says so and still succeeds.
    r = invoke("video", str(cut), "-o", str(tmp_path / "cli.mp4"), "--weights", str(weights), "--input-size", "70",
               "--quiet")
    assert r.exit_code == 0, r.stderr
    assert "input ended early" in r.stderr and "truncated" in r.stderr
    assert len(decode(tmp_path / "cli.mp4")[0]) == readable


def test_unreadable_inputs_fail_with_the_file_name(tmp_path: Path, predictor: DepthPredictor,
                                                   scenes: list[np.ndarray]) -> None:
    whole = tmp_path / "nomoov.mp4"
    write_with_pyav(whole, scenes, codec="libx264")  # index at the end: a cut file has none
    data = whole.read_bytes()
    whole.write_bytes(data[: len(data) // 2])
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 20)
    (tmp_path / "empty.mp4").write_bytes(b"")
    cases = {"nomoov.mp4": "moov", "text.mp4": "cannot open as a video", "empty.mp4": "empty",
             "missing.mp4": "no such file"}
    for name, reason in cases.items():
        with pytest.raises(VideoReadError, match=reason) as e:
            process_video(tmp_path / name, predictor, tmp_path / "x.mp4")
        assert str(tmp_path / name) in str(e.value)
    with pytest.raises(VideoReadError, match="no image files"):
        open_source(tmp_path)  # a folder without images
    with pytest.raises(VideoReadError, match="/dev/video97"):
        open_source("/dev/video97")
    t0 = time.perf_counter()
    with pytest.raises(VideoReadError, match="rtsp://127.0.0.1:9/none"):
        open_source("rtsp://127.0.0.1:9/none", timeout=2.0)  # nothing listens on the discard port
    assert time.perf_counter() - t0 < 10


def test_http_stream_is_read_as_a_live_source(tmp_path: Path, predictor: DepthPredictor,
                                              worlds: list[np.ndarray]) -> None:
    """A network stream: FFmpeg reads the clip from a real HTTP server on a loopback port, frame by frame."""
    import functools
    import http.server
    import threading

    write_with_pyav(tmp_path / "clip.mp4", worlds[:8], codec="libx264")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
        with open_source(url, timeout=5.0) as source:
            assert source.live and source.frame_count is None and "live" in source.describe()
        report = process_video(url, predictor, tmp_path / "from_stream.mp4",
                               VideoOptions(temporal="none", crf=0, raw_format="npz", raw_path=tmp_path / "s.npz"))
    finally:
        server.shutdown()
        server.server_close()
    assert report.frames == 8
    decoded, _, _ = decode(tmp_path / "clip.mp4")
    with np.load(tmp_path / "s.npz") as z:
        for i in range(8):  # the same frames as decoding the file directly
            np.testing.assert_allclose(z[f"frame_{i:06d}"], predictor.predict(decoded[i]).values, rtol=1e-5,
                                       atol=1e-5)
    assert len(decode(tmp_path / "from_stream.mp4")[0]) == 8


def test_interrupt_finishes_the_outputs(tmp_path: Path, predictor: DepthPredictor, scenes: list[np.ndarray]) -> None:
    src = tmp_path / "in.mkv"
    write_with_pyav(src, scenes)

    def stop_after_first_batch(p: object) -> None:
        raise KeyboardInterrupt

    report = process_video(src, predictor, tmp_path / "out.mp4",
                           VideoOptions(raw_format="npz", raw_path=tmp_path / "out.npz"), stop_after_first_batch)
    assert report.interrupted and report.frames == predictor.batch_size
    assert len(decode(tmp_path / "out.mp4")[0]) == predictor.batch_size
    with np.load(tmp_path / "out.npz") as z:
        assert len(z["pts"]) == predictor.batch_size and "frame_000003" in z.files and "frame_000004" not in z.files


def test_ctrl_c_leaves_a_playable_mp4(tmp_path: Path, weights: Path, scenes: list[np.ndarray]) -> None:
    src = tmp_path / "long.mkv"
    write_with_pyav(src, scenes * 40)  # 480 frames: far more than get done before the signal
    out, raw = tmp_path / "out.mp4", tmp_path / "raw"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "depthany", "video", str(src), "-o", str(out), "--weights",
                             str(weights), "--input-size", "70", "--batch-size", "2", "--raw", "png16",
                             "--raw-out", str(raw), "--quiet"], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(raw.glob("*.png"))) < 6:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    frames, _, info = decode(out)
    assert 6 <= len(frames) < 480 and info["codec"] == "h264"
    seq = json.loads((raw / "sequence.json").read_text())
    assert seq["frames"] == len(frames) == len(list(raw.glob("frame_*.png")))


def test_metric_model_stores_metres_without_alignment(tmp_path: Path, scenes: list[np.ndarray]) -> None:
    pred = DepthPredictor.from_pretrained(weights=save_tiny(tmp_path / "metric.safetensors", "metric", 1),
                                          input_size=70)
    report = process_video(_folder(tmp_path, scenes[:4]), pred,
                           tmp_path / "m.mp4", VideoOptions(raw_format="npz", raw_path=tmp_path / "m.npz"))
    assert report.kind == "metric_depth" and report.unit == "m"
    with np.load(tmp_path / "m.npz") as z:
        meta = json.loads(str(z["meta"]))
        assert meta["temporal"] == "none" and meta["unit"] == "m"
        np.testing.assert_array_equal(z["scale"], 1.0)
        for i in range(4):
            np.testing.assert_allclose(z[f"frame_{i:06d}"], pred.predict(scenes[i]).values, rtol=1e-5, atol=1e-5)


def test_calibration_turns_relative_frames_into_metres(tmp_path: Path, predictor: DepthPredictor,
                                                       scenes: list[np.ndarray]) -> None:
    from depthany.geometry.calibrate import Calibration

    calib = Calibration(mode="scale_shift", scale=2.0, shift=0.05, n_points=4, inliers=4,
                        model=predictor.spec.name)
    calib_file = calib.save(tmp_path / "calib.json")
    r = invoke("video", str(_folder(tmp_path, scenes[:3])), "--weights", str(save_tiny(tmp_path / "w.safetensors")),
               "--input-size", "70", "--calibration", str(calib_file), "--raw", "npz", "--raw-out",
               str(tmp_path / "m.npz"), "--no-video", "--quiet")
    assert r.exit_code == 0, r.stderr
    with np.load(tmp_path / "m.npz") as z:
        meta = json.loads(z["meta"].item())
        assert meta["kind"] == "metric_depth" and meta["unit"] == "m" and meta["temporal"] == "none"
        for i in range(3):
            # 1 / depth = scale * d + shift, checked where it is linear: near d = 0 the depth 1 / (2 d + 0.05)
            # magnifies the ~1e-7 rounding between a batch of frames and one image 40-fold.
            d = predictor.predict(scenes[i]).values.astype(np.float64)
            inv = 1.0 / z[f"frame_{i:06d}"].astype(np.float64)
            assert np.abs(inv - (2.0 * d + 0.05)).max() <= 1e-5 * 2.0 * (d.max() - d.min())


def _folder(tmp_path: Path, frames: list[np.ndarray]) -> Path:
    from PIL import Image

    folder = tmp_path / "seq"
    folder.mkdir(exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:04d}.png")
    return folder


def test_cli_rejects_bad_options_clearly(tmp_path: Path, scenes: list[np.ndarray]) -> None:
    write_with_pyav(tmp_path / "ok.mkv", scenes[:2])
    r = invoke("video", str(tmp_path / "ok.mkv"), "--model", "da9-huge")
    assert r.exit_code == 2 and "unknown model 'da9-huge'" in r.stderr
    r = invoke("video", str(tmp_path / "nope.mp4"))
    assert r.exit_code == 1 and "nope.mp4: no such file" in r.stderr
    r = invoke("video", "x.mp4", "--no-video")
    assert r.exit_code == 2 and "--raw" in r.stderr
    r = invoke("video", "x.mp4", "--vmin", "0")
    assert r.exit_code == 2 and "--vmax" in r.stderr
