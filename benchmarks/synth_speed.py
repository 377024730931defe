"""Throughput of the synthetic-world renderer: images/s for ``render`` alone and for the full
``depthany synth`` pipeline (render + PNG encoding + writing) with 1 and N worker processes.

    .venv/bin/python benchmarks/synth_speed.py                       # 256x256 and 518x518, 1 and 2 workers
    .venv/bin/python benchmarks/synth_speed.py --count 64 --sizes 256 --workers 1,2 --json out.json

Numbers are absolute images/s on whatever this machine is doing at the time; the load average is
printed with them because a shared machine slows every figure down.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from depthany.synth import WorldConfig, make_scene, render
from depthany.synth.dataset import generate


def render_rate(size: int, count: int, kind: str, seed: int) -> dict[str, float]:
    """Single process, no file output: scenes are built and rendered, images/s of the whole loop."""
    cfg = WorldConfig(size, size, kind)
    render(make_scene(seed, 10_000, cfg))  # warm-up (imports, allocator)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    shapes = []
    for i in range(count):
        scene = make_scene(seed, i, cfg)
        shapes.append(len(scene.shapes))
        render(scene)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"images_per_s": count / wall, "cpu_ms_per_image": 1000 * cpu / count,
            "mean_shapes": float(np.mean(shapes))}


def pipeline_rate(size: int, count: int, kind: str, seed: int, workers: int) -> float:
    """``generate`` into a fresh temporary folder (png16 depth): images/s including encoding and writing."""
    tmp = Path(tempfile.mkdtemp(prefix="synth-bench-"))
    try:
        report = generate(tmp / "ds", count, WorldConfig(size, size, kind), seed=seed, workers=workers)
        return report.images_per_second
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=48, help="images per measurement (default 48)")
    ap.add_argument("--sizes", default="256,518", help="square sizes in pixels (default 256,518)")
    ap.add_argument("--workers", default="1,2", help="worker counts for the pipeline (default 1,2)")
    ap.add_argument("--kind", default="mixed", choices=["indoor", "outdoor", "mixed"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    load = os.getloadavg()
    print(f"synth_speed: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start, kind={args.kind}, "
          f"{args.count} images per figure")
    results: dict[str, object] = {"cpus": os.cpu_count(), "load_at_start": load, "kind": args.kind,
                                  "count": args.count, "rows": []}
    for size in sizes:
        r = render_rate(size, args.count, args.kind, args.seed)
        row: dict[str, object] = {"size": size, "render_only": r}
        line = (f"{size}x{size}: render only {r['images_per_s']:.1f} img/s "
                f"({r['cpu_ms_per_image']:.0f} ms CPU/img, {r['mean_shapes']:.0f} shapes/scene)")
        for w in workers:
            rate = pipeline_rate(size, args.count, args.kind, args.seed, w)
            row[f"pipeline_workers_{w}"] = rate
            line += f" | synth --workers {w}: {rate:.1f} img/s"
        print(line, flush=True)
        results["rows"].append(row)  # type: ignore[attr-defined]
    load = os.getloadavg()
    print(f"load average at end {load[0]:.1f}; on a shared machine these are lower bounds")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
