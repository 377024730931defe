"""The depth MP4 plays in a real browser (Debian's Chromium, headless, via Playwright), with the right colours.

The official scripts write MPEG-4 Part 2 (``mp4v``), which browsers refuse; this checks both sides: Chromium
plays depthany's H.264 to the end at the right size and duration, a frame drawn from the <video> matches the
picture that was encoded (so the BT.709 colour tags are read as written), and an ``mp4v`` file fails.
"""

from __future__ import annotations

import functools
import http.server
import socketserver
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]
playwright_api = pytest.importorskip("playwright.sync_api")
av = pytest.importorskip("av")

from depthany.video import VideoEncoder  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--use-gl=swiftshader", "--enable-unsafe-swiftshader",
        "--autoplay-policy=no-user-gesture-required"]
H, W, N, FPS = 48, 64, 15, 25


def pictures() -> list[np.ndarray]:
    """Smooth colour ramps (like depth pictures) that change from frame to frame."""
    y, x = np.mgrid[0:H, 0:W]
    return [np.stack([(x * 4 + 8 * i) % 256, y * 5, np.full_like(x, 40 + 10 * i)], -1).astype(np.uint8)
            for i in range(N)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL of a loopback HTTP server, the folder it serves) with depth.mp4 and mp4v.mp4."""
    d = tmp_path_factory.mktemp("site")
    with VideoEncoder(d / "depth.mp4", H, W, Fraction(1, FPS), FPS, crf=10) as enc:
        for i, p in enumerate(pictures()):
            enc.write(p, i)
    with av.open(str(d / "mp4v.mp4"), "w") as c:  # what the official run_video.py writes (via OpenCV)
        s = c.add_stream("mpeg4", rate=FPS)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for p in pictures():
            for pkt in s.encode(av.VideoFrame.from_ndarray(p, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    (d / "index.html").write_text("<canvas id=c></canvas>")
    handler = functools.partial(_QuietHandler, directory=str(d))
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", d
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


PLAY = """async (src) => {
  const v = document.createElement('video');
  v.muted = true; v.src = src; document.body.appendChild(v);
  const ok = await new Promise(r => { v.onloadeddata = () => r(true); v.onerror = () => r(false);
                                       setTimeout(() => r(false), 10000); });
  if (!ok) return {error: v.error ? v.error.code : -1};
  const c = document.getElementById('c'); c.width = v.videoWidth; c.height = v.videoHeight;
  const ctx = c.getContext('2d'); ctx.drawImage(v, 0, 0);
  const first = Array.from(ctx.getImageData(0, 0, c.width, c.height).data);
  await v.play();
  await new Promise(r => { v.onended = r; setTimeout(r, 10000); });
  return {width: v.videoWidth, height: v.videoHeight, duration: v.duration, ended: v.ended, first: first};
}"""


def test_chromium_plays_the_depth_mp4_and_refuses_mp4v(site: tuple[str, Path]) -> None:
    url, folder = site
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{url}/index.html")
            assert page.evaluate("""() => document.createElement('video')
                                    .canPlayType('video/mp4; codecs="avc1.64001F"')""") == "probably"
            ours = page.evaluate(PLAY, f"{url}/depth.mp4")
            theirs = page.evaluate(PLAY, f"{url}/mp4v.mp4")
        finally:
            browser.close()
    assert "error" not in ours, ours
    assert (ours["width"], ours["height"]) == (W, H) and ours["ended"]
    assert ours["duration"] == pytest.approx(N / FPS, abs=1.5 / FPS)
    first = np.array(ours["first"], dtype=np.int64).reshape(H, W, 4)[..., :3]
    err = np.abs(first - pictures()[0]).mean()
    # Compare with the same file decoded as BT.709 (as tagged) and as BT.601 (what an untagged file risks):
    # the browser must agree with the former, the picture that was encoded.
    assert err < 4, f"colours differ in the browser by {err:.1f} levels"
    assert err < 0.5 * np.abs(misread_as_bt601(folder / "depth.mp4") - pictures()[0]).mean()
    assert theirs.get("error") is not None or theirs.get("width", 0) == 0, theirs


def misread_as_bt601(path: Path) -> np.ndarray:
    """First frame of ``path`` converted to RGB with the BT.601 matrix, ignoring the BT.709 tag."""
    from av.video.reformatter import Colorspace

    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        return frame.reformat(format="rgb24", src_colorspace=Colorspace.ITU601).to_ndarray().astype(np.int64)
