"""The service under hostile inputs, over real HTTP: the network-input budget per request, bounded batches, and a
shutdown that does not wait for a long forward pass (a real ``depthany serve`` process and a real SIGTERM)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from PIL import Image  # noqa: E402

from conftest import randomize, tiny_spec  # noqa: E402
from depthany import DepthPredictor  # noqa: E402
from depthany.models import DepthAnything  # noqa: E402
from depthany.serve.api import ServeConfig, create_app  # noqa: E402
from depthany.weights import save_weights  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = tiny_spec()
    path = tmp_path_factory.mktemp("serve") / "tiny.safetensors"
    save_weights(randomize(DepthAnything(spec.arch), 0).state_dict(), spec, path, fmt="depthany")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running(app: object) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline and thread.is_alive():
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def post(url: str, data: bytes, name: str, timeout: float = 120, **params: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/depth", files={"image": (name, data, "image/png")}, params=params, timeout=timeout)


def test_strip_column_and_too_thin_then_a_normal_request(weights: Path) -> None:
    predictor = DepthPredictor.from_pretrained(weights=weights, input_size=70)
    app = create_app(predictor, ServeConfig(max_batch=4, max_wait_ms=5, max_tokens=2000))
    normal = noise(45, 60, seed=1)
    with running(app) as url:
        assert httpx.get(f"{url}/v1/models").json()["limits"]["max_tokens"] == 2000
        for name, (h, w), net in [("strip.png", (2, 3000), [14, 2996]), ("column.png", (3000, 2), [2996, 14])]:
            r = post(url, png(noise(h, w)), name, format="json")
            assert r.status_code == 200, r.text
            doc = r.json()
            assert (doc["height"], doc["width"]) == (h, w) and doc["network_size"] == net
            assert doc["input_budget"]["shrunk"] is True and doc["input_budget"]["max_tokens"] == 2000
            assert r.headers["x-input-budget"].startswith("shrunk from ")
        r = post(url, png(noise(1, 5000)), "line.png")
        assert r.status_code == 422
        assert r.json()["detail"].startswith("line.png: a 5000x1 image (aspect ratio 5,000:1) cannot be fitted")
        t0 = time.perf_counter()
        r = post(url, png(normal), "photo.png", format="npy")
        elapsed = time.perf_counter() - t0
        assert r.status_code == 200 and r.headers["x-input-budget"] == "ok"
        assert float(r.headers["x-queue-ms"]) < 1000, r.headers  # nothing left in front of it
        np.testing.assert_array_equal(np.load(io.BytesIO(r.content)), predictor.predict(normal).values)
        health = httpx.get(f"{url}/healthz").json()
    assert health["requests"] == 3 and health["queued"] == 0 and health["in_flight"] == 0
    assert elapsed < 30  # generous; a stalled queue would hang here (the client timeout is 120 s)


def test_a_batch_never_holds_more_tokens_than_the_budget(weights: Path) -> None:
    """98x98 network inputs (7 x 7 = 49 tokens) under a 100-token budget: at most 2 share a forward pass."""
    predictor = DepthPredictor.from_pretrained(weights=weights, input_size=98)
    app = create_app(predictor, ServeConfig(max_batch=8, max_wait_ms=300, max_tokens=100))
    data = png(noise(30, 30, seed=2))
    with running(app) as url, ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: post(url, data, "a.png", format="npy"), range(6)))
    sizes = [int(r.headers["x-batch-size"]) for r in responses]
    assert all(r.status_code == 200 for r in responses) and max(sizes) == 2, sizes
    unbounded = create_app(DepthPredictor.from_pretrained(weights=weights, input_size=98),
                           ServeConfig(max_batch=8, max_wait_ms=300))  # the default budget: they may share
    with running(unbounded) as url, ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: post(url, data, "a.png", format="npy"), range(6)))
    assert max(int(r.headers["x-batch-size"]) for r in responses) > 2


def test_sigterm_during_a_long_forward_pass_exits_within_seconds(weights: Path, tmp_path: Path) -> None:
    """A 120x120 image at input size 1680 is 14,400 tokens: a forward pass of many seconds for the tiny model
    on one thread (tens of seconds on a busy machine). SIGTERM half a second into it: the process exits within a
    few seconds and the request gets 503 (or its connection is dropped), never a late 200."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "depthany", "serve", "--weights", str(weights), "--input-size",
                             "1680", "--max-tokens", "20000", "--shutdown-grace", "0.5", "--port", str(port),
                             "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    url = f"http://127.0.0.1:{port}"
    outcome: dict[str, object] = {}

    def client() -> None:
        try:
            r = post(url, png(noise(120, 120, seed=3)), "big.png", timeout=300, format="npy")
            outcome["status"], outcome["detail"] = r.status_code, r.text
        except httpx.TransportError as e:
            outcome["error"] = repr(e)

    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1]
                time.sleep(0.2)
        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        while httpx.get(f"{url}/healthz", timeout=5).json()["in_flight"] == 0:
            assert thread.is_alive(), outcome
            time.sleep(0.05)
        time.sleep(0.5)
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        elapsed = time.perf_counter() - t0
        thread.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=10)
    assert elapsed < 6.0, (elapsed, err)
    assert outcome.get("status") != 200, outcome
    if "status" in outcome:
        assert outcome["status"] == 503 and "interrupted" in str(outcome["detail"]), outcome


def _asgi_post(app: object, body: bytes, boundary: str) -> tuple[dict, list[dict]]:
    """A raw ASGI POST /v1/depth as uvicorn makes it: (scope, the list the app's sent messages go to)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/depth", "raw_path": b"/v1/depth", "query_string": b"format=npy", "root_path": "",
             "headers": [(b"host", b"test"), (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}
    return scope, []


def test_a_request_cancelled_by_the_shutdown_timeout_gets_503_not_500(weights: Path) -> None:
    """uvicorn cancels the requests still running when its graceful-shutdown timeout ends, and answers a cancelled
    request with a bare 500. A forward pass stuck inside one module (past the interruption point) during
    ``run_server``'s shutdown must answer 503 instead; a cancellation outside shutdown still propagates."""
    import asyncio

    predictor = DepthPredictor.from_pretrained(weights=weights, input_size=28)
    release = threading.Event()
    entered = threading.Event()
    head = predictor.model.depth_head
    forward = head.forward

    def stuck(*args: object, **kwargs: object) -> object:  # inside a module: the pre-hooks cannot interrupt it
        entered.set()
        release.wait(30)
        return forward(*args, **kwargs)

    head.forward = stuck  # type: ignore[method-assign]
    app = create_app(predictor, ServeConfig(max_batch=1, max_wait_ms=0))
    boundary = "depthanyboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png(noise(20, 20)) + f"\r\n--{boundary}--\r\n".encode()

    async def request(shutdown: bool) -> list[dict]:
        scope, sent = _asgi_post(app, body, boundary)
        chunks = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict:
            if chunks:
                return chunks.pop()
            await asyncio.sleep(3600)  # no disconnect while the request runs
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        entered.clear()
        release.clear()
        async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
            task = asyncio.create_task(app(scope, receive, send))  # type: ignore[operator]
            while not entered.is_set():
                await asyncio.sleep(0.01)
            if shutdown:
                app.state.batcher.shutdown(60.0)  # type: ignore[attr-defined]  # as run_server's SIGTERM handler
            task.cancel()  # as uvicorn when its graceful-shutdown timeout ends
            try:
                await task
            except asyncio.CancelledError:
                sent.append({"type": "cancelled"})
            release.set()  # let the worker thread finish before the lifespan stops the batcher
        return sent

    try:
        sent = asyncio.run(request(shutdown=True))
        start = next(m for m in sent if m["type"] == "http.response.start")
        text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode()
        assert start["status"] == 503 and "shutdown grace" in text, sent
        # not shutting down: the cancellation is not ours to turn into an answer
        assert asyncio.run(request(shutdown=False)) == [{"type": "cancelled"}]
    finally:
        release.set()
