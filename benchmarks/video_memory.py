"""Peak memory of ``depthany video`` for N vs 10N frames: constant memory means the two peaks match.

Writes a synthetic H.264 video (a rendered room panned by one pixel per frame, plus sensor noise) of N and
of 10N frames, then runs :func:`depthany.video.process_video` on each in a *fresh* process (so each peak is
its own) with a tiny random model, MP4 output plus the raw 16-bit PNG sequence, and reports the peak
resident set size (``ru_maxrss``) and RSS sampled every 50 ms during the run.

    .venv/bin/python benchmarks/video_memory.py --frames 100 --size 240x320

docs/video.md quotes the numbers. On a shared machine the speed varies; the memory does not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def make_video(path: Path, frames: int, height: int, width: int) -> None:
    """A panned synthetic room: every frame differs (the pan and the noise), so nothing is cached."""
    from depthany.synth.render import render
    from depthany.synth.worlds import WorldConfig, make_scene
    from depthany.video import VideoEncoder

    wide = render(make_scene(0, 0, WorldConfig(width * 2, height, "indoor"))).rgb
    rng = np.random.default_rng(0)
    with VideoEncoder(path, height, width, Fraction(1, 30), 30, crf=23, preset="veryfast") as enc:
        for i in range(frames):
            x = (i % width)
            frame = wide[:, x:x + width].astype(np.int16) + rng.integers(-6, 7, (height, width, 3))
            enc.write(np.clip(frame, 0, 255).astype(np.uint8), i)


def child(video: Path, out: Path, weights: Path, input_size: int) -> dict[str, float]:
    """Process one video and report memory (run in its own process)."""
    import psutil
    import torch

    from depthany import DepthPredictor
    from depthany.video import VideoOptions, process_video

    torch.set_num_threads(1)
    proc = psutil.Process()
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(proc.memory_info().rss)
            time.sleep(0.05)

    predictor = DepthPredictor.from_pretrained(weights=weights, input_size=input_size, batch_size=4)
    rss_loaded = proc.memory_info().rss
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    report = process_video(video, predictor, out / "depth.mp4",
                           VideoOptions(layout="side-by-side", raw_format="png16", raw_path=out / "raw"))
    done.set()
    thread.join()
    half = len(samples) // 2
    return {"frames": report.frames, "seconds": report.seconds, "fps": report.speed,
            "rss_loaded_mib": rss_loaded / 2**20,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_first_half_max_mib": max(samples[:half] or [0]) / 2**20,
            "rss_second_half_max_mib": max(samples[half:] or [0]) / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100, help="N; the long video has 10N frames")
    ap.add_argument("--size", default="240x320", help="HxW of the video")
    ap.add_argument("--input-size", type=int, default=140, help="network short side of the tiny model")
    ap.add_argument("--child", nargs=3, metavar=("VIDEO", "OUT", "WEIGHTS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        video, out, weights = (Path(a) for a in args.child)
        print(json.dumps(child(video, out, weights, args.input_size)))
        return

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import randomize, tiny_spec  # the test suite's tiny architecture
    from depthany.models import DepthAnything
    from depthany.weights import save_weights

    h, w = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="depthany-vmem-") as tmp:
        d = Path(tmp)
        spec = tiny_spec()
        weights = d / "tiny.safetensors"
        save_weights(randomize(DepthAnything(spec.arch), 0, std=0.1).state_dict(), spec, weights, fmt="depthany")
        rows = []
        for n in (args.frames, 10 * args.frames):
            video = d / f"in_{n}.mp4"
            make_video(video, n, h, w)
            out = d / f"out_{n}"
            out.mkdir()
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            res = subprocess.run([sys.executable, __file__, "--input-size", str(args.input_size), "--child",
                                  str(video), str(out), str(weights)], capture_output=True, text=True, env=env,
                                 check=True)
            row = json.loads(res.stdout.strip().splitlines()[-1])
            row["input_mib"] = video.stat().st_size / 2**20
            rows.append(row)
    print(f"video {w}x{h}, tiny random model at input size {args.input_size}, batch 4, side-by-side MP4 + png16")
    print("| frames | input MB | wall s | frames/s | RSS after model load MiB | peak RSS MiB | max RSS 1st half | "
          "max RSS 2nd half |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['frames']} | {r['input_mib']:.1f} | {r['seconds']:.1f} | {r['fps']:.1f} | {r['rss_loaded_mib']:.0f} "
              f"| {r['peak_rss_mib']:.0f} | {r['rss_first_half_max_mib']:.0f} | {r['rss_second_half_max_mib']:.0f} |")
    growth = rows[1]["peak_rss_mib"] - rows[0]["peak_rss_mib"]
    print(f"\npeak RSS growth from {rows[0]['frames']} to {rows[1]['frames']} frames: {growth:+.1f} MiB")


if __name__ == "__main__":
    main()
