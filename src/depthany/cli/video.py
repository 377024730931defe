"""``depthany video``: depth for a video file, an image sequence, a webcam or a stream.

    depthany video walk.mp4                                  # -> walk_depth.mp4 (side by side, H.264)
    depthany video walk.mp4 --layout depth --raw png16       # + walk_depth/frame_000000.png ...
    depthany video "frames/*.png" --fps 24 -o frames.mp4     # an image sequence
    depthany video /dev/video0 --max-frames 300 -o cam.mp4   # a webcam (Ctrl-C stops and finishes the file)
    depthany video walk.mp4 --model vda-small                # Video Depth Anything (temporally consistent)
    depthany video frames/ --model vda-small --no-video --raw npz --raw-out walk.npz   # its exact output

All logic lives in :mod:`depthany.video`; this module parses arguments and prints.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .options import model_options


def default_output(source: str, suffix: str) -> Path:
    """``walk.mp4`` -> ``walk_depth<suffix>`` beside it; folders, globs and streams -> ``./<name>_depth``."""
    text = source.rstrip("/")
    p = Path(text)
    if p.is_file():
        return p.with_name(f"{p.stem}_depth{suffix}")
    if p.is_dir():
        return Path(f"{p.name}_depth{suffix}")
    if text.isdigit() or text.startswith("/dev/video"):
        return Path(f"webcam_depth{suffix}")
    if "://" in text:
        return Path(f"stream_depth{suffix}")
    return Path(f"sequence_depth{suffix}")  # a glob pattern


@click.command("video", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output .mp4 (H.264) [default: <input>_depth.mp4].")
@click.option("--no-video", is_flag=True, help="Write only the raw depth (--raw), no MP4.")
@model_options(cmap=True, int8=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="Frames per forward pass.")
@click.option("--layout", type=click.Choice(["side-by-side", "depth"]), default="side-by-side", show_default=True)
@click.option("--mode", type=click.Choice(["window", "streaming"]), default=None,
              help="Video Depth Anything (vda-* models): window (the official offline windows) or streaming (one "
                   "frame at a time) [default: streaming for webcams and streams, window otherwise].")
@click.option("--temporal", type=click.Choice(["ema", "none"]), default=None,
              help="Image models: ema aligns each frame to a running reference (no flicker); none: frames as "
                   "predicted [default: ema for relative models, none for metric and Video Depth Anything].")
@click.option("--momentum", type=click.FloatRange(0, 1, min_open=True), default=0.1, show_default=True,
              help="Weight of the newest frame in the temporal reference.")
@click.option("--range", "range_mode", type=click.Choice(["adaptive", "frame", "fixed"]), default="adaptive",
              show_default=True, help="Colour range: slowly adapting, each frame's min/max (official, flickers), "
                                      "or fixed (--vmin/--vmax, else the first frame's).")
@click.option("--range-rate", type=click.FloatRange(0, 1, min_open=True), default=0.05, show_default=True)
@click.option("--vmin", type=float, default=None, help="Fixed range start (disparity, or 1/m for metric).")
@click.option("--vmax", type=float, default=None, help="Fixed range end.")
@click.option("--raw", "raw_format", type=click.Choice(["png16", "npz"]), default=None,
              help="Also write per-frame values: a 16-bit PNG folder or one .npz.")
@click.option("--raw-out", type=click.Path(path_type=Path), default=None,
              help="Raw output folder (png16) or file (npz) [default: <input>_depth/ or <input>_depth.npz].")
@click.option("--calibration", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A calibration JSON (depthany calibrate) that turns relative output into metres.")
@click.option("--fps", type=click.FloatRange(0, min_open=True), default=None,
              help="Frame rate of an image sequence (default 30) or the rate to ask a webcam for.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after this many frames.")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True, help="H.264 quality (lower = better).")
@click.option("--preset", default="medium", show_default=True, help="x264 preset (ultrafast .. veryslow).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def video(source: str, output: Path | None, no_video: bool, model: str | None, weights: Path | None, device: str,
          precision: str, input_size: int | None, batch_size: int, max_tokens: int, layout: str, cmap: str,
          mode: str | None, temporal: str | None,
          momentum: float, range_mode: str, range_rate: float, vmin: float | None, vmax: float | None,
          raw_format: str | None, raw_out: Path | None, calibration: Path | None, fps: float | None,
          max_frames: int | None, crf: int, preset: str, quiet: bool) -> None:
    """Depth video (browser-playable H.264 MP4) for SOURCE: a video file, a folder or glob of images, a webcam
    (/dev/video0 or 0) or a stream URL (rtsp://, http://...). Ctrl-C stops and finishes the outputs."""
    import importlib.util

    if importlib.util.find_spec("av") is None:
        raise click.ClickException("PyAV is missing; install video support with: pip install 'depthany[video]'")
    from ..budget import InputBudgetError
    from ..io.colormap import AUTO_CMAP, DEFAULT_CMAP, resolve_cmap
    from ..video import VideoOptions, VideoReadError, open_source, process_video

    if no_video and raw_format is None:
        raise click.UsageError("--no-video needs --raw (otherwise there is nothing to write)")
    if (vmin is None) != (vmax is None):
        raise click.UsageError("give --vmin and --vmax together")
    out = None if no_video else (output or default_output(source, ".mp4"))
    if raw_format is not None and raw_out is None:
        raw_out = default_output(source, ".npz" if raw_format == "npz" else "")
    # "auto" is resolved once the model (its family) is known; the options are checked before it loads
    opts = VideoOptions(layout=layout, cmap=DEFAULT_CMAP if cmap == AUTO_CMAP else cmap,  # type: ignore[arg-type]
                        temporal=temporal, momentum=momentum, range=range_mode,  # type: ignore[arg-type]
                        range_rate=range_rate, vmin=vmin, vmax=vmax, crf=crf, preset=preset, max_frames=max_frames,
                        raw_format=raw_format, raw_path=raw_out)
    try:
        opts.check()
        calib = None
        if calibration is not None:
            from ..geometry.calibrate import Calibration

            calib = Calibration.load(calibration)
        src = open_source(source, fps=fps)
    except (ValueError, OSError) as e:  # VideoReadError is a ValueError
        raise click.ClickException(str(e)) from None
    try:
        predictor = _load_predictor(model, weights, device, precision, input_size, batch_size, max_tokens)
    except (ValueError, ImportError) as e:  # WeightsError / WeightsNotFound / unknown model: a set-up problem;
        # ImportError: the engine of --precision int8 is not installed, like predict
        src.close()
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    from ..video.vda import VideoDepthPredictor

    is_vda = isinstance(predictor, VideoDepthPredictor)
    if mode is not None and not is_vda:
        src.close()
        raise click.UsageError(f"--mode is for Video Depth Anything models (vda-*), not {predictor.spec.name}")
    if is_vda and temporal == "ema":
        src.close()
        raise click.UsageError("--temporal ema is for image models: Video Depth Anything output is temporally "
                               "consistent by itself")
    opts.cmap = resolve_cmap(cmap, predictor.spec.arch.family)
    if not quiet:
        how = f", {mode or ('streaming' if src.live else 'window')} mode" if is_vda else ""
        click.echo(f"{src.describe()} -> {out or raw_out} ({predictor.spec.name}{how})", err=True)
    bar = None
    if not quiet:
        from tqdm import tqdm

        total = src.frame_count if max_frames is None else min(src.frame_count or max_frames, max_frames)
        bar = tqdm(total=total, unit="frame", dynamic_ncols=True, file=sys.stderr)

    def on_progress(p: object) -> None:
        if bar is not None:
            bar.update(p.frames - bar.n)  # type: ignore[attr-defined]

    try:
        report = process_video(src, predictor, out, opts, on_progress, calib,
                               log=lambda m: (bar.write(m, file=sys.stderr) if bar is not None
                                              else click.echo(m, err=True)), mode=mode)
    except (VideoReadError, InputBudgetError) as e:
        raise click.ClickException(str(e)) from None
    finally:
        if bar is not None:
            bar.close()
        src.close()
    where = ", ".join(str(p) for p in (report.output, report.raw) if p is not None)
    click.echo(f"wrote {report.frames} frames in {report.seconds:.1f} s ({report.speed:.1f} frames/s) to {where}; "
               f"flicker index {report.flicker:.4f}", err=True)
    if report.stopped_early:
        click.echo(f"warning: {src.name}: input ended early ({report.stopped_early}); the outputs hold the "
                   f"{report.frames} frames decoded", err=True)
    if report.interrupted:
        click.echo(f"interrupted: outputs finished with the {report.frames} frames done", err=True)
        sys.exit(130)


def _load_predictor(model: str | None, weights: Path | None, device: str, precision: str, input_size: int | None,
                    batch_size: int, max_tokens: int) -> Any:
    """A :class:`~depthany.video.vda.VideoDepthPredictor` for Video Depth Anything weights, else a
    :class:`~depthany.DepthPredictor` (PyTorch); the weights are read once."""
    from ..predictor import DepthPredictor
    from ..runtime.devices import pick_device
    from ..video.vda import VideoDepthPredictor
    from ..weights import load_image_or_video_model

    dev = pick_device(device)
    net, spec = load_image_or_video_model(model, weights, device=dev)
    if spec.video is not None:
        if precision == "int8":
            raise ValueError(f"{spec.name}: --precision int8 covers image models (depthany quantize); Video Depth "
                             "Anything runs in fp32, bf16 or fp16")
        return VideoDepthPredictor(net, spec, precision, input_size, "window", max_tokens)  # type: ignore[arg-type]
    return DepthPredictor(net, spec, dev, precision, input_size, batch_size,  # type: ignore[arg-type]
                          backend="auto" if precision == "int8" else "torch", max_tokens=max_tokens)
