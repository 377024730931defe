"""Temporal consistency (TAE) and accuracy of the video paths on the same synthetic sequences.

Synthetic sequences (``depthany.synth.sequence``: a camera walking through a static world, exact depth, intrinsics
and poses) are scored with the Video Depth Anything benchmark protocol (``depthany.video_eval``: one scale and
shift per video in disparity, AbsRel / δ1, TAE) for:

* ``per-frame``: the bundled da2-mini, each frame as predicted (``--temporal none``);
* ``ema``: the same model with the EMA alignment of ``depthany video`` (``--temporal ema``);
* ``vda-window`` / ``vda-streaming``: a Video Depth Anything network *initialised from da2-mini* with untrained
  (identity) temporal modules (``depthany.models.video_model_from_image``), run by the official windowed and
  streaming inference. It shows what the windowing/stitching alone does to the same per-frame predictions; it is
  not a trained VDA model (none can be downloaded here), so its TAE says nothing about the real VDA;
* ``trained-window`` / ``trained-streaming`` (with ``--weights FILE``): a VDA model trained by ``depthany train``
  (``task: video``, e.g. ``configs/vda-mini-synth.yaml`` from da2-mini), same inference. Train it on sequences
  rendered with another ``--seed`` than 0: the scored sequences are seed 0's.

Printed per path: mean TAE (%), AbsRel, δ1 over the sequences, frames/s, and TAE relative to per-frame.

    .venv/bin/python benchmarks/video_tae.py --sequences 3 --frames 24 --size 120x160
    .venv/bin/python benchmarks/video_tae.py --weights runs/vda-mini/final.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequences", type=int, default=3)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", default="120x160", help="HxW of the rendered frames")
    ap.add_argument("--kind", default="indoor", choices=["indoor", "outdoor", "mixed"])
    ap.add_argument("--speed", type=float, default=0.05, help="metres per frame")
    ap.add_argument("--turn", type=float, default=0.02, help="yaw per frame (rad)")
    ap.add_argument("--input-size", type=int, default=None, help="network short side of every path (default: 224)")
    ap.add_argument("--weights", default=None, help="a VDA model trained by depthany train (task: video)")
    args = ap.parse_args()

    from depthany import DepthPredictor, VideoDepthPredictor, zoo
    from depthany.eval.video_data import read_rgbd_sequences
    from depthany.models import video_model_from_image
    from depthany.synth.sequence import write_sequence
    from depthany.synth.worlds import WorldConfig
    from depthany.video_eval import ImageModelSource, VdaSource, VideoEvalSettings, evaluate_video

    torch.manual_seed(0)
    torch.set_num_threads(1)
    h, w = (int(v) for v in args.size.lower().split("x"))
    config = WorldConfig(w, h, args.kind)
    spec = zoo.get_spec(zoo.BUNDLED_NAME)
    size = args.input_size or spec.preprocess.input_size
    image = DepthPredictor.from_pretrained(input_size=size)  # the bundled da2-mini
    video_net = video_model_from_image(image.model)  # type: ignore[arg-type]
    video_spec = dataclasses.replace(spec, name="da2-mini-as-vda (untrained temporal modules)", arch=video_net.arch,
                                     preprocess=dataclasses.replace(spec.preprocess, resize_dtype="float32"),
                                     video=zoo.VDA_WINDOWS)
    vda = VideoDepthPredictor(video_net, video_spec, input_size=size)
    sources = {"per-frame": ImageModelSource(image, "none"), "ema": ImageModelSource(image, "ema"),
               "vda-window": VdaSource(vda, "window"), "vda-streaming": VdaSource(vda, "streaming")}
    if args.weights:
        trained = VideoDepthPredictor.from_pretrained(weights=args.weights, input_size=size)
        sources.update({"trained-window": VdaSource(trained, "window"),
                        "trained-streaming": VdaSource(trained, "streaming")})
    with tempfile.TemporaryDirectory(prefix="depthany-video-tae-") as tmp:
        for i in range(args.sequences):
            write_sequence(Path(tmp) / f"seq_{i:06d}", 0, i, config, args.frames, args.speed, args.turn)
        scenes = read_rgbd_sequences(tmp)
        settings = VideoEvalSettings(max_depth=config.depth_limit)
        rows = {}
        for name, source in sources.items():
            t0 = time.perf_counter()
            report = evaluate_video(scenes, settings, source, "synthetic")
            seconds = time.perf_counter() - t0
            failed = [r["error"] for r in report.rows if "error" in r]
            if failed:
                raise SystemExit(f"{name}: {failed[0]}")
            rows[name] = {**report.mean(), "fps": args.sequences * args.frames / seconds}
    print(f"{args.sequences} synthetic {args.kind} sequences of {args.frames} frames, {w}x{h}, camera "
          f"{args.speed} m and {args.turn} rad per frame; bundled da2-mini at input size {size}")
    print("| path | TAE % | TAE / per-frame | AbsRel | δ1 | frames/s (incl. reading) |")
    print("|---|---|---|---|---|---|")
    base = rows["per-frame"]["tae"]
    for name, r in rows.items():
        print(f"| {name} | {r['tae']:.3f} | {r['tae'] / base:.2f} | {r['abs_rel']:.4f} | {r['delta1']:.3f} | "
              f"{r['fps']:.1f} |")


if __name__ == "__main__":
    main()
