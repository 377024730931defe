"""Peak memory of ``depthany predict`` on a 12000x9000 JPEG (108 megapixels), in a fresh process.

Writes a photo-like 12000x9000 JPEG (smooth shading, edges, sensor noise; quality 90) and, as the baseline, a
640x480 JPEG of the same kind, then runs the real command line on each in its own process:

    python -m depthany predict IMAGE --out DIR [--model M] [--backend B] [--format F]

Each child reports its own peak resident set size (``VmHWM`` from /proc/self/status, read at exit; unlike
``ru_maxrss`` it does not inherit the parent's peak). The script prints both peaks, the difference (what the
big image costs on top of the model and the runtime), the ratio, and the documented bound it checks.

    .venv/bin/python benchmarks/peak_memory.py                       # the bundled model, default backend
    .venv/bin/python benchmarks/peak_memory.py --backend torch --format npy,color,png16,sbs

docs/performance.md quotes the numbers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

BOUND_MB = 3072  # the documented bound for the default run (docs/performance.md, README)

# A child that runs the CLI and prints its own VmHWM at exit (click exits through SystemExit: atexit runs).
LAUNCHER = """
import atexit, runpy, sys
def report():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            sys.stderr.write('PEAK_KB ' + line.split()[1] + '\\n')
atexit.register(report)
sys.argv = ['depthany'] + sys.argv[1:]
runpy.run_module('depthany', run_name='__main__', alter_sys=True)
"""


def photo_jpeg(path: Path, height: int, width: int, seed: int = 0, rows: int = 1000) -> None:
    """A photo-like JPEG written band by band (the 108-Mpx array is built once, uint8, 324 MB)."""
    rng = np.random.default_rng(seed)
    img = np.empty((height, width, 3), np.uint8)
    x = np.arange(width, dtype=np.float32)[None, :]
    for r in range(0, height, rows):
        y = np.arange(r, min(height, r + rows), dtype=np.float32)[:, None]
        base = np.stack([127 + 100 * np.sin(x / (0.05 * width)) * np.cos(y / (0.07 * height)) + 0 * y,
                         255 * x / width + 0 * y, 255 * (1 - y / height) + 0 * x], -1)
        base[((x // 512 + y // 512) % 2 == 0)] *= 0.6
        img[r:r + rows] = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path, quality=90)


def run_predict(image: Path, out: Path, args: argparse.Namespace) -> tuple[float, float, str]:
    """(peak RSS MiB, seconds, stderr tail) of ``depthany predict`` on ``image`` in a fresh process."""
    cmd = [sys.executable, "-c", LAUNCHER, "predict", str(image), "--out", str(out), "--format", args.format]
    if args.model:
        cmd += ["--model", args.model]
    if args.backend:
        cmd += ["--backend", args.backend]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    peaks = [int(ln.split()[1]) for ln in proc.stderr.splitlines() if ln.startswith("PEAK_KB ")]
    if proc.returncode != 0 or not peaks:
        raise SystemExit(f"depthany predict failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return peaks[-1] / 1024, seconds, "\n".join(proc.stderr.splitlines()[-3:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="9000x12000", help="HxW of the big image (default 9000x12000)")
    ap.add_argument("--model", default=None, help="zoo name (default: the bundled model)")
    ap.add_argument("--backend", default=None, help="predict's --backend (default: its own default, auto)")
    ap.add_argument("--format", default="npy,color", help="predict's --format (default: its default)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="depthany-peak-") as tmp:
        big, small = Path(tmp) / "big.jpg", Path(tmp) / "small.jpg"
        photo_jpeg(big, h, w)
        photo_jpeg(small, 480, 640)
        base_mb, base_s, _ = run_predict(small, Path(tmp) / "out-small", args)
        peak_mb, peak_s, tail = run_predict(big, Path(tmp) / "out-big", args)
        outputs = sorted(p.name for p in (Path(tmp) / "out-big").iterdir())
    report = {"image": f"{w}x{h}", "megapixels": round(h * w / 1e6, 1), "format": args.format,
              "model": args.model or "bundled", "backend": args.backend or "auto", "baseline_640x480_mb": round(base_mb),
              "peak_mb": round(peak_mb), "extra_mb": round(peak_mb - base_mb), "ratio": round(peak_mb / base_mb, 2),
              "seconds": round(peak_s, 1), "baseline_seconds": round(base_s, 1), "bound_mb": BOUND_MB,
              "within_bound": peak_mb <= BOUND_MB, "outputs": outputs}
    print(f"depthany predict, {args.model or 'bundled model'}, backend {args.backend or 'auto'}, --format {args.format}")
    print(f"  640x480 JPEG (baseline):   peak RSS {base_mb:7.0f} MiB  ({base_s:.1f} s)")
    print(f"  {w}x{h} JPEG ({h * w / 1e6:.0f} Mpx): peak RSS {peak_mb:7.0f} MiB  ({peak_s:.1f} s)  "
          f"= baseline + {peak_mb - base_mb:.0f} MiB, {peak_mb / base_mb:.2f}x")
    print(f"  documented bound {BOUND_MB} MiB: {'within' if peak_mb <= BOUND_MB else 'EXCEEDED'}")
    print(f"  last lines of predict: {tail}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if peak_mb > BOUND_MB:
        sys.exit(1)


if __name__ == "__main__":
    main()
