"""Flicker of per-frame min/max normalisation (the official scripts) vs depthany's temporal alignment.

A still camera looks at a still synthetic room, so the true depth never changes and any frame-to-frame
change of the colour-mapped depth is flicker (or noise). Two predictors, both run through the real
``depthany.video`` path (H.264 input, :func:`~depthany.video.process_video`, flicker measured on the
normalised maps the colour map receives):

* ``simulated``: the exact disparity of the room under a per-frame random affine map (log-scale sigma 0.1,
  shift sigma 5% of the disparity spread), Gaussian noise (sigma 1% of the spread) and 0.2% of the pixels per
  frame off by up to +-30% of the spread: what a relative model does between frames (new scale and shift
  each frame, edge and sky spikes). Fed to the pipeline as a predictor whose network call returns these maps.
* ``tiny random``: a real tiny DPT with random weights on the room rendered with a different exposure
  (sigma 0.35 stops), white balance and sensor noise per frame (an auto-exposing camera).
* ``bundled da2-mini``: the trained bundled model (its own 224-px input size) on the same frames.

For each: per-frame min/max (``--temporal none --range frame``) vs the default (``--temporal ema --range
adaptive``). Flicker = mean |change| of the normalised map per frame; global = mean |median change| (moves of
the whole picture, without pixel noise); relative = flicker / mean spatial std of the normalised maps.

    .venv/bin/python benchmarks/video_flicker.py --frames 60
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch


def simulated_predictor(disparity: np.ndarray, seed: int) -> object:
    """A DepthPredictor whose network call returns :class:`SimulatedRelativeModel` maps. With frame sides that
    are multiples of 14 the network runs at the frame size, so pre- and post-processing leave the map as is."""
    from conftest import randomize, tiny_spec
    from depthany import DepthPredictor
    from depthany.models import DepthAnything
    from depthany.video.flicker import SimulatedRelativeModel

    spec = tiny_spec()
    h, w = disparity.shape
    pred = DepthPredictor(randomize(DepthAnything(spec.arch), 0), spec, input_size=min(h, w))
    model = SimulatedRelativeModel(disparity, seed=seed)

    def runner(x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (h, w):
            raise ValueError(f"use frame sides that are multiples of 14 (network ran at {tuple(x.shape[-2:])})")
        return torch.stack([torch.from_numpy(model()) for _ in range(x.shape[0])])

    pred.runner = runner
    return pred


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", default="182x252", help="HxW, multiples of 14")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import randomize, tiny_spec
    from depthany import DepthPredictor
    from depthany.models import DepthAnything
    from depthany.video import VideoEncoder, VideoOptions, process_video
    from depthany.video.flicker import static_sequence

    torch.set_num_threads(1)
    h, w = (int(v) for v in args.size.lower().split("x"))
    seq = static_sequence(args.frames, h, w, seed=args.seed)
    spec = tiny_spec()
    tiny = DepthPredictor(randomize(DepthAnything(spec.arch), 0, std=0.1), spec, input_size=min(h, w))
    settings = {"per-frame min/max (official)": ("none", "frame"),
                "depthany default (ema + adaptive)": ("ema", "adaptive")}
    rows = []
    with tempfile.TemporaryDirectory(prefix="depthany-flicker-") as tmp:
        video = Path(tmp) / "still.mp4"
        with VideoEncoder(video, h, w, Fraction(1, 30), 30, crf=12) as enc:
            for i, f in enumerate(seq.frames):
                enc.write(f, i)
        bundled = DepthPredictor.from_pretrained()  # the bundled default model
        for name in ("simulated", "tiny random", "bundled da2-mini"):
            for label, (temporal, rng) in settings.items():
                # the simulated model is rebuilt per setting, so both see the same per-frame draws
                pred = simulated_predictor(seq.disparity, args.seed) if name == "simulated" else \
                    {"tiny random": tiny, "bundled da2-mini": bundled}[name]
                r = process_video(video, pred, Path(tmp) / "out.mp4",  # type: ignore[arg-type]
                                  VideoOptions(layout="depth", temporal=temporal, range=rng))  # type: ignore[arg-type]
                rows.append((name, label, r.flicker, r.flicker_global, r.flicker_relative, r.resets))
    print(f"{args.frames} frames {w}x{h}, still camera, seed {args.seed}")
    print("| predictor | normalisation | flicker (mean abs change / frame) | global flicker | relative flicker | "
          "reference resets |")
    print("|---|---|---|---|---|---|")
    for name, label, f, g, rel, resets in rows:
        print(f"| {name} | {label} | {f:.4f} | {g:.4f} | {rel:.4f} | {resets if 'ema' in label else '-'} |")


if __name__ == "__main__":
    main()
