"""Load test of ``depthany serve`` on loopback: requests/s and latency percentiles at several concurrencies.

Starts the real service (``python -m depthany serve``) in a subprocess on a free 127.0.0.1 port with a tiny
random model, then for each concurrency level C sends ``--requests`` uploads from C client threads (each
with its own HTTP connection) and reports throughput, latency percentiles, failures, the mean forward-pass
batch size (from ``/healthz``) and the server's resident memory before and after the level. Levels below the
queue limit must have no failed request; the memory should stay flat from level to level. The last level
can exceed the queue limit (``--overload``) to show the 503 + Retry-After path.

    .venv/bin/python benchmarks/serve_load.py --levels 1,2,4,8,16 --requests 200

Bounded: at most ``--requests`` per level, loopback only, the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_level(url: str, payload: bytes, concurrency: int, total: int) -> dict[str, float]:
    """``total`` requests from ``concurrency`` threads; latencies in ms and status counts."""
    latencies: list[float] = []
    queued: list[float] = []
    infer: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        with httpx.Client(timeout=120) as client:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                t0 = time.perf_counter()
                r = None
                try:
                    r = client.post(f"{url}/v1/depth", params={"format": "npy"},
                                    files={"image": ("load.png", payload, "image/png")})
                    code = r.status_code
                except httpx.HTTPError:
                    code = -1
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    statuses[code] = statuses.get(code, 0) + 1
                    if code == 200 and r is not None:
                        latencies.append(dt)
                        queued.append(float(r.headers["x-queue-ms"]))
                        infer.append(float(r.headers["x-inference-ms"]))

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {"concurrency": concurrency, "ok": statuses.get(200, 0), "busy_503": statuses.get(503, 0),
            "failed": sum(v for k, v in statuses.items() if k not in (200, 503)), "rps": statuses.get(200, 0) / wall,
            "p50": float(np.percentile(lat, 50)), "p90": float(np.percentile(lat, 90)),
            "p99": float(np.percentile(lat, 99)), "queue_ms": float(np.median(queued or [np.nan])),
            "infer_ms": float(np.median(infer or [np.nan]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,2,4,8,16", help="comma-separated concurrency levels")
    ap.add_argument("--requests", type=int, default=200, help="requests per level")
    ap.add_argument("--size", default="480x640", help="HxW of the uploaded PNG")
    ap.add_argument("--input-size", type=int, default=266, help="network short side of the tiny model")
    ap.add_argument("--max-batch", type=int, default=4)
    ap.add_argument("--max-queue", type=int, default=32)
    ap.add_argument("--overload", type=int, default=0, help="also run this concurrency (> max queue) at the end")
    ap.add_argument("--repeat", type=int, default=1, help="run the whole list of levels this many times (memory "
                                                             "must plateau, not keep growing)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import randomize, tiny_spec
    from depthany.models import DepthAnything
    from depthany.weights import save_weights

    h, w = (int(v) for v in args.size.lower().split("x"))
    y, x = np.mgrid[0:h, 0:w]
    buf = io.BytesIO()
    Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)).save(buf, format="PNG")
    payload = buf.getvalue()
    levels = ([int(v) for v in args.levels.split(",")] + ([args.overload] if args.overload else [])) * args.repeat
    with tempfile.TemporaryDirectory(prefix="depthany-load-") as tmp:
        spec = tiny_spec()
        weights = Path(tmp) / "tiny.safetensors"
        save_weights(randomize(DepthAnything(spec.arch), 0, std=0.1).state_dict(), spec, weights, fmt="depthany")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        server = subprocess.Popen([sys.executable, "-m", "depthany", "serve", "--weights", str(weights),
                                   "--input-size", str(args.input_size), "--host", "127.0.0.1", "--port", str(port),
                                   "--max-batch", str(args.max_batch), "--max-queue", str(args.max_queue),
                                   "--log-level", "warning"], env=env)
        try:
            deadline = time.time() + 120
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    if time.time() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.2)
            proc = psutil.Process(server.pid)
            run_level(url, payload, 2, 8)  # warm-up
            rows = []
            for c in levels:
                rss0 = proc.memory_info().rss / 2**20
                before = httpx.get(f"{url}/healthz").json()
                row = run_level(url, payload, c, args.requests)
                after = httpx.get(f"{url}/healthz").json()
                served = after["requests"] - before["requests"]
                row["mean_batch"] = served / max(1, after["batches"] - before["batches"])
                row["rss_before"], row["rss_after"] = rss0, proc.memory_info().rss / 2**20
                rows.append(row)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(30)
    print(f"tiny random model, input size {args.input_size}, upload {w}x{h} PNG ({len(payload) / 1024:.0f} KiB), "
          f"max batch {args.max_batch}, max queue {args.max_queue}, {args.requests} requests per level, npy responses")
    print("| concurrency | ok | 503 | failed | req/s | p50 ms | p90 ms | p99 ms | mean batch | queue ms (median) | "
          "forward ms (median) | server RSS MiB before -> after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['concurrency']} | {r['ok']} | {r['busy_503']} | {r['failed']} | {r['rps']:.1f} | {r['p50']:.0f} | "
              f"{r['p90']:.0f} | {r['p99']:.0f} | {r['mean_batch']:.2f} | {r['queue_ms']:.0f} | {r['infer_ms']:.0f} | "
              f"{r['rss_before']:.0f} -> {r['rss_after']:.0f} |")


if __name__ == "__main__":
    main()
