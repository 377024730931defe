"""Video Depth Anything: window vs streaming mode, speed and peak memory, and constant memory in video length.

The VDA-Small architecture (random weights in the official layout: the same compute as the real checkpoint)
runs over a synthetic video (a rendered room panned one pixel per frame, with sensor noise, generated frame by
frame like a decoder) of N and 4N frames, each run in a *fresh* process so each peak is its own:

* ``window``: :class:`depthany.VideoDepthPredictor` in window mode (the official offline inference, frames
  pulled from a generator and yielded as soon as final: depthany's constant-memory path);
* ``streaming``: the same predictor in streaming mode (one frame in, one out);
* ``whole-video``: the official API's memory pattern as a baseline: the whole decoded video as one (N, H, W, 3)
  array in, every frame's depth kept in one list (what ``infer_video_depth`` holds), over the same window code.

Printed: frames/s, the ratio streaming / window, and the memory the run itself adds: the resident set size
sampled every 20 ms during the run minus the RSS just before it (after loading the model and a warm-up), so
the checkpoint-loading peak does not hide it; its growth from N to 4N frames per mode (0 = constant memory).

    .venv/bin/python benchmarks/vda_modes.py --frames 24 --size 360x640 --input-size 70
    .venv/bin/python benchmarks/vda_modes.py --device cuda --frames 96 --size 720x1280 --input-size 518

Speed varies on a shared machine; memory does not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

MODES = ("window", "streaming", "whole-video")


def make_frames(n: int, height: int, width: int) -> Iterator[np.ndarray]:
    """A panned synthetic room with noise, generated frame by frame (the source holds one frame at a time,
    like a decoder): every frame differs."""
    from depthany.synth.render import render
    from depthany.synth.worlds import WorldConfig, make_scene

    wide = render(make_scene(0, 0, WorldConfig(width * 2, height, "indoor"))).rgb
    rng = np.random.default_rng(0)
    for i in range(n):
        x = i % width
        noisy = wide[:, x:x + width].astype(np.int16) + rng.integers(-6, 7, (height, width, 3))
        yield np.clip(noisy, 0, 255).astype(np.uint8)


def child(mode: str, n: int, size: tuple[int, int], weights: Path, input_size: int, device: str
          ) -> dict[str, float]:
    """Run one mode over n generated frames in this process and report speed and memory."""
    import threading

    import psutil
    import torch

    from depthany import VideoDepthPredictor

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    predictor = VideoDepthPredictor.from_pretrained(weights=weights, device=device, input_size=input_size)
    warm = list(predictor.predict(make_frames(4, *size), "streaming"))  # load kernels, caches
    del warm
    proc = psutil.Process()
    rss_before = proc.memory_info().rss
    samples = [rss_before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(proc.memory_info().rss)
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if mode == "whole-video":
        video = np.stack(list(make_frames(n, *size)))  # the decoded video in memory, as the official reader
        depths = [f.values for f in predictor.predict(video, "window")]
        count = len(depths)
    else:
        count = 0
        for _ in predictor.predict(make_frames(n, *size), mode):
            count += 1
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    samples.append(proc.memory_info().rss)
    done.set()
    thread.join()
    assert count == n
    row = {"frames": n, "seconds": seconds, "fps": n / seconds, "rss_before_mib": rss_before / 2**20,
           "run_mib": (max(samples) - rss_before) / 2**20,
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.startswith("cuda"):
        row["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=24, help="N; the long video has 4N frames")
    ap.add_argument("--size", default="360x640", help="HxW of the video")
    ap.add_argument("--input-size", type=int, default=70, help="network short side (the official default is 518)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--child", nargs=3, metavar=("MODE", "FRAMES", "WEIGHTS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    if args.child:
        mode, n, weights = args.child
        print(json.dumps(child(mode, int(n), (h, w), Path(weights), args.input_size, args.device)))
        return

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import torch

    from depthany import zoo
    from vda_oracle import random_vda_state  # random weights in the official key layout

    modes = args.modes.split(",")
    rows: dict[tuple[str, int], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="depthany-vda-bench-") as tmp:
        d = Path(tmp)
        weights = d / "video_depth_anything_vits.pth"
        torch.save(random_vda_state(zoo.get_spec("vda-small").arch, seed=0), weights)
        for n in (args.frames, 4 * args.frames):
            for mode in modes:
                env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
                res = subprocess.run([sys.executable, __file__, "--input-size", str(args.input_size), "--device",
                                      args.device, "--size", args.size, "--child", mode, str(n), str(weights)],
                                     capture_output=True, text=True, env=env)
                if res.returncode != 0:
                    sys.exit(f"{mode} on {n} frames failed:\n{res.stderr[-3000:]}")
                rows[(mode, n)] = json.loads(res.stdout.strip().splitlines()[-1])
    gpu = args.device.startswith("cuda")
    print(f"VDA-Small architecture (random weights), video {w}x{h}, input size {args.input_size}, "
          f"device {args.device}, fp32, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '2')}")
    print("| mode | frames | wall s | frames/s | RSS before run MiB | added by the run MiB | process peak RSS MiB |"
          + (" peak GPU MiB |" if gpu else ""))
    print("|---|---|---|---|---|---|---|" + ("---|" if gpu else ""))
    for (mode, n), r in rows.items():
        print(f"| {mode} | {n} | {r['seconds']:.1f} | {r['fps']:.2f} | {r['rss_before_mib']:.0f} | "
              f"{r['run_mib']:.0f} | {r['peak_rss_mib']:.0f} |" + (f" {r['peak_gpu_mib']:.0f} |" if gpu else ""))
    long = 4 * args.frames
    print()
    if ("window", long) in rows and ("streaming", long) in rows:
        print(f"streaming / window speed ({long} frames): "
              f"{rows[('streaming', long)]['fps'] / rows[('window', long)]['fps']:.2f}x")
    for mode in modes:
        grow = rows[(mode, long)]["run_mib"] - rows[(mode, args.frames)]["run_mib"]
        print(f"{mode}: memory added by the run, growth from {args.frames} to {long} frames: {grow:+.0f} MiB")
    if ("whole-video", long) in rows and ("window", long) in rows:
        print(f"whole-video / window memory added by the run ({long} frames): "
              f"{rows[('whole-video', long)]['run_mib'] / max(rows[('window', long)]['run_mib'], 1.0):.2f}x")


if __name__ == "__main__":
    main()
