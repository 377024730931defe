"""The REST service over real HTTP: uvicorn on a free loopback port, httpx clients, a tiny random model."""

from __future__ import annotations

import base64
import contextlib
import io
import json
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
from depthany.io.depth import read_png16  # noqa: E402
from depthany.io.visual import depth_color  # noqa: E402
from depthany.models import DepthAnything  # noqa: E402
from depthany.serve.api import ServeConfig, create_app  # noqa: E402
from depthany.weights import save_weights  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two oversubscribed threads on a busy 2-core box are ~50x slower for tiny models
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
    """Run ``app`` with uvicorn in a thread on a free loopback port; yield its base URL."""
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


@pytest.fixture(scope="module")
def predictor(weights: Path) -> DepthPredictor:
    return DepthPredictor.from_pretrained(weights=weights, input_size=70)


@pytest.fixture(scope="module")
def server(predictor: DepthPredictor) -> Iterator[str]:
    app = create_app(predictor, ServeConfig(max_batch=4, max_wait_ms=40, max_queue=64, max_upload_bytes=300_000,
                                            max_pixels=1_000_000))
    with running(app) as url:
        yield url


def png_bytes(rgb: np.ndarray, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **kw)
    return buf.getvalue()


def picture(h: int = 45, w: int = 60, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    base = np.stack([x * 255 // w, y * 255 // h, (x + y) % 64 * 4], -1)
    return np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)


def post(url: str, data: bytes, name: str = "p.png", **kw: object) -> httpx.Response:
    return httpx.post(f"{url}/v1/depth", files={"image": (name, data, "application/octet-stream")}, timeout=60,
                      **kw)  # type: ignore[arg-type]


def test_every_format_decodes_to_the_predictors_own_output(server: str, predictor: DepthPredictor,
                                                            tmp_path: Path) -> None:
    for data, name in ((png_bytes(picture()), "p.png"), (png_bytes(picture(seed=1), "JPEG", quality=90), "p.jpg")):
        direct = predictor.predict(data)  # the same bytes through the same decoder, no HTTP
        r = post(server, data, name, params={"format": "npy"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-npy"
        assert r.headers["x-depth-kind"] == "relative_disparity" and r.headers["x-depth-unit"] == "none"
        got = np.load(io.BytesIO(r.content), allow_pickle=False)
        assert got.dtype == np.float32 and got.shape == direct.values.shape
        np.testing.assert_allclose(got, direct.values, rtol=1e-5, atol=1e-6)

        r = post(server, data, name, params={"format": "png16"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        path = tmp_path / f"{name}.png"
        path.write_bytes(r.content)
        values, meta = read_png16(path)
        assert meta["kind"] == "relative_disparity" and meta["source"] == name
        assert float(r.headers["x-depth-scale"]) == meta["scale"]
        np.testing.assert_allclose(values, direct.values, atol=meta["scale"] * 0.51 + 1e-6)

        r = post(server, data, name, params={"format": "color", "cmap": "turbo"})
        assert r.status_code == 200
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(r.content))), depth_color(direct, "turbo"))

        r = post(server, data, name)  # no format, no Accept: JSON
        doc = r.json()
        assert doc["kind"] == "relative_disparity" and doc["unit"] is None and doc["model"] == predictor.spec.name
        assert (doc["height"], doc["width"]) == direct.values.shape
        assert doc["min"] == pytest.approx(float(direct.values.min()), rel=1e-5)
        codes = np.asarray(Image.open(io.BytesIO(base64.b64decode(doc["png16"]["base64"])))).astype(np.float64)
        np.testing.assert_allclose(doc["png16"]["offset"] + doc["png16"]["scale"] * codes, direct.values,
                                   atol=doc["png16"]["scale"] * 0.51 + 1e-6)


def test_accept_header_chooses_the_format(server: str) -> None:
    data = png_bytes(picture())
    cases = {"image/png": "image/png", "application/x-npy": "application/x-npy",
             "application/octet-stream": "application/x-npy", "application/json": "application/json",
             "application/json;q=0.5, image/png;q=0.9": "image/png", "*/*": "application/json",
             "image/*": "image/png"}
    for accept, media in cases.items():
        r = post(server, data, headers={"accept": accept})
        assert r.status_code == 200 and r.headers["content-type"] == media, accept
    r = post(server, data, headers={"accept": "image/png"})
    assert Image.open(io.BytesIO(r.content)).mode.startswith("I;16")  # 16-bit depth, not the colour picture
    r = post(server, data, headers={"accept": "image/png"}, params={"format": "npy"})  # the parameter wins
    assert r.headers["content-type"] == "application/x-npy"
    r = post(server, data, headers={"accept": "text/html"})
    assert r.status_code == 406 and "application/x-npy" in r.json()["detail"]


def test_concurrent_requests_share_forward_passes_and_stay_correct(server: str, predictor: DepthPredictor) -> None:
    # 2 network sizes: 45x60 and 60x45 pictures cannot share a forward pass, 45x60 ones can.
    images = [picture(45, 60, seed=i) if i % 3 else picture(60, 45, seed=i) for i in range(24)]
    datas = [png_bytes(im) for im in images]
    before = httpx.get(f"{server}/healthz").json()
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda d: post(server, d, params={"format": "npy"}), datas))
    assert [r.status_code for r in responses] == [200] * 24
    for r, data in zip(responses, datas):
        np.testing.assert_allclose(np.load(io.BytesIO(r.content)), predictor.predict(data).values,
                                   rtol=1e-5, atol=1e-6)
    sizes = [int(r.headers["x-batch-size"]) for r in responses]
    assert max(sizes) > 1 and max(sizes) <= 4
    after = httpx.get(f"{server}/healthz").json()
    assert after["requests"] - before["requests"] == 24
    assert after["batches"] - before["batches"] < 24  # some requests shared a pass


def test_bad_requests_get_4xx_with_a_reason_never_500(server: str) -> None:
    good = png_bytes(picture())
    big = png_bytes(np.zeros((1200, 1000, 3), np.uint8))  # 1.2 MP, a small file: over the pixel limit only
    cases = [
        (post(server, b"hello, not an image", "notes.txt"), 415, "notes.txt: not an image"),
        (post(server, good[: len(good) // 2], "cut.png"), 422, "cut.png: corrupt or truncated"),
        (post(server, b"", "empty.png"), 422, "empty"),
        (post(server, big, "big.png"), 422, "exceeds the limit of 1,000,000"),
        (post(server, b"\0" * 400_000, "huge.bin"), 413, "the limit is 300000 bytes"),
        (post(server, good, params={"format": "tiff"}), 422, "png16"),
        (post(server, good, params={"format": "color", "cmap": "rainbow"}), 422, "unknown colour map"),
        (httpx.post(f"{server}/v1/depth", data={"picture": "x"}), 422, "image"),
        (httpx.post(f"{server}/v1/depth", content=b"{}", headers={"content-type": "application/json"}), 422, "image"),
        (httpx.get(f"{server}/v1/depth"), 405, ""),
    ]
    for r, status, reason in cases:
        assert r.status_code == status, (status, r.text)
        assert reason in r.text, (reason, r.text)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must be counted while streaming
        yield (b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="s.png"\r\n'
               b"Content-Type: image/png\r\n\r\n")
        for _ in range(40):
            yield b"\0" * 10_000
        yield b"\r\n--xyz--\r\n"

    r = httpx.post(f"{server}/v1/depth", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 413 and "300000" in r.text
    assert post(server, good).status_code == 200  # and the server is fine afterwards


def test_models_health_and_openapi(server: str, predictor: DepthPredictor) -> None:
    models = httpx.get(f"{server}/v1/models").json()
    (m,) = models["data"]
    assert m["id"] == predictor.spec.name and m["kind"] == "relative_disparity" and m["input_size"] == 70
    assert models["limits"]["max_batch"] == 4
    health = httpx.get(f"{server}/healthz").json()
    assert health["status"] == "ok" and health["max_queue"] == 64
    schema = httpx.get(f"{server}/openapi.json").json()
    op = schema["paths"]["/v1/depth"]["post"]
    assert {"200", "406", "413", "415", "422", "503"} <= set(op["responses"])
    assert set(op["responses"]["200"]["content"]) == {"image/png", "application/x-npy", "application/json"}
    assert httpx.get(f"{server}/docs").status_code == 200


def test_configured_cmap_colours_the_picture(predictor: DepthPredictor) -> None:
    """ServeConfig.cmap is what format=color uses when the request names none: the picture is the official
    formula, ((v - min) / (max - min) * 255) truncated to uint8, through that map's 256-entry table."""
    from depthany.io.colormap import get_lut

    data = png_bytes(picture(seed=3))
    values = predictor.predict(data).values  # relative disparity: bigger = nearer = top of the map
    levels = ((values - values.min()) / (values.max() - values.min()) * 255.0).astype(np.uint8)
    pictures = {}
    for configured in ("turbo", "inferno", "auto"):
        with running(create_app(predictor, ServeConfig(cmap=configured))) as url:
            limits = httpx.get(f"{url}/v1/models").json()["limits"]
            r = post(url, data, params={"format": "color"})
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"
            pictures[configured] = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
            override = post(url, data, params={"format": "color", "cmap": "gray"})  # the request still wins
            np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(override.content)).convert("RGB")),
                                          get_lut("gray")[levels])
        expected = "Spectral_r" if configured == "auto" else configured  # auto: V2's official map
        assert limits["cmap"] == expected
        np.testing.assert_array_equal(pictures[configured], get_lut(expected)[levels])
    assert not np.array_equal(pictures["turbo"], pictures["inferno"])
    with pytest.raises(ValueError, match="unknown colour map 'rainbow'"):
        create_app(predictor, ServeConfig(cmap="rainbow"))


def test_full_queue_answers_503_with_retry_after(weights: Path) -> None:
    slow = DepthPredictor.from_pretrained(weights=weights, input_size=518)  # ~0.3 s per image here
    app = create_app(slow, ServeConfig(max_batch=1, max_wait_ms=0, max_queue=2))
    data = png_bytes(picture())
    with running(app) as url, ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: post(url, data, params={"format": "npy"}), range(10)))
        health = httpx.get(f"{url}/healthz").json()
    codes = sorted(r.status_code for r in responses)
    assert set(codes) == {200, 503} and codes.count(200) >= 3, codes
    for r in responses:
        if r.status_code == 503:
            assert int(r.headers["retry-after"]) >= 1 and "server busy" in r.json()["detail"]
    assert health["rejected"] == codes.count(503)


def test_serve_command_refuses_an_unknown_model() -> None:
    from click.testing import CliRunner

    from depthany.cli.main import cli

    r = CliRunner().invoke(cli, ["serve", "--model", "da9-huge", "--port", str(free_port())])
    assert r.exit_code == 2 and "unknown model 'da9-huge'" in r.stderr


def test_depthany_serve_command(weights: Path, predictor: DepthPredictor) -> None:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "depthany", "serve", "--weights", str(weights), "--input-size",
                             "70", "--port", str(port), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1]
                time.sleep(0.1)
        data = png_bytes(picture(seed=7))
        r = post(url, data, params={"format": "npy"})
        assert r.status_code == 200
        np.testing.assert_allclose(np.load(io.BytesIO(r.content)), predictor.predict(data).values, rtol=1e-5,
                                   atol=1e-6)
        assert json.loads(httpx.get(f"{url}/v1/models").content)["data"][0]["id"] == predictor.spec.name
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
