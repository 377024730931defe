"""The web demo in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Uploads an image, computes depth, checks that the slider shows the depth picture, downloads the 16-bit PNG
and compares it with the predictor, switches to a metric model and checks the point-cloud viewer appears,
and checks that the page talked to nobody but the demo server. Saves a screenshot in the pytest tmp dir;
set ``DEPTHANY_DOCS_SCREENSHOT=docs/images/demo.png`` to also refresh the one in the docs.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]
playwright_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("gradio")

from PIL import Image  # noqa: E402

from conftest import randomize, tiny_spec  # noqa: E402
from depthany import DepthPredictor  # noqa: E402
from depthany.io.depth import read_png16  # noqa: E402
from depthany.io.visual import depth_color  # noqa: E402
from depthany.models import DepthAnything  # noqa: E402
from depthany.serve.demo import DemoBackend, find_examples, launch_demo, local_model_choices  # noqa: E402
from depthany.weights import save_weights  # noqa: E402

# Chromium flags from docs/serving.md: no sandbox as root in CI, no network services, software WebGL so that
# the Model3D canvas renders without a GPU.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "room_pillar.jpg"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def save_tiny(path: Path, head: str) -> Path:
    spec = tiny_spec(head=head, max_depth=20.0 if head == "metric" else None)
    save_weights(randomize(DepthAnything(spec.arch), 0).state_dict(), spec, path, fmt="depthany")
    return path


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    d = tmp_path_factory.mktemp("browser")
    rel, met = save_tiny(d / "relative.safetensors", "relative"), save_tiny(d / "metric.safetensors", "metric")
    image = EXAMPLE if EXAMPLE.exists() else d / "photo.png"
    if not EXAMPLE.exists():
        y, x = np.mgrid[0:240, 0:320]
        Image.fromarray(np.stack([x % 256, y, (x + y) % 256], -1).astype(np.uint8)).save(image)
    # Exactly these two (no zoo model that happens to be on disk): the page's default is the first.
    choices = [c for c in local_model_choices([rel, met]) if c.weights is not None]
    backend = DemoBackend(choices, workdir=d / "work")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = launch_demo(backend, find_examples(), port=port, block=False)
    try:
        yield f"http://127.0.0.1:{port}/", rel, image
    finally:
        demo.close()


def test_upload_compute_download_and_point_cloud(app: tuple[str, Path, Path], tmp_path: Path) -> None:
    url, rel_weights, image = app
    requests: list[str] = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url)
            page.wait_for_selector("#run", timeout=30_000)
            page.set_input_files("#input-image input[type=file]", str(image))
            page.wait_for_selector("#input-image img", timeout=30_000)
            page.fill("#input-size input[type=number]", "70")
            page.press("#input-size input[type=number]", "Enter")
            page.click("#run")

            # The slider shows two pictures; the depth one is the predictor's colour picture.
            page.wait_for_function("document.querySelectorAll('#slider img').length >= 2", timeout=60_000)
            page.wait_for_selector("#png16 a[data-testid=download-link]", timeout=60_000)
            assert "relative disparity" in page.inner_text("#info")
            srcs = page.eval_on_selector_all("#slider img", "els => els.map(e => e.src)")
            shown = [np.asarray(Image.open(io.BytesIO(page.request.get(s).body())).convert("RGB")) for s in srcs]
            direct = DepthPredictor.from_pretrained(weights=rel_weights, input_size=70).predict(image)
            assert any(np.array_equal(im, depth_color(direct)) for im in shown)

            # The download button delivers the 16-bit PNG with the predictor's values.
            with page.expect_download() as dl:
                page.click("#png16 a[data-testid=download-link]")
            saved = tmp_path / dl.value.suggested_filename
            dl.value.save_as(saved)
            assert saved.name.endswith("_depth16.png")
            values, meta = read_png16(saved)
            np.testing.assert_allclose(values, direct.values, atol=meta["scale"] * 0.51 + 1e-6)
            page.screenshot(path=str(tmp_path / "demo_relative.png"), full_page=True)

            # A metric model adds the point-cloud viewer and the .ply download.
            page.click("#model input")
            page.get_by_role("option", name="metric.safetensors (local file)").click()
            page.click("#run")
            page.wait_for_selector("#view canvas", state="visible", timeout=60_000)
            page.wait_for_selector("#ply a[data-testid=download-link]", timeout=60_000)
            assert "metric depth" in page.inner_text("#info")
            page.wait_for_timeout(1500)  # let the viewer draw a frame for the screenshot
            shot = tmp_path / "demo.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    hosts = {u.split("/")[2] for u in requests if u.startswith("http")}
    assert hosts == {url.split("/")[2]}, f"the page contacted other hosts: {hosts}"
    target = os.environ.get("DEPTHANY_DOCS_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target)
