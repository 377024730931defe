"""Finding weights: the real Hugging Face cache layout offline, aliases, sha256, fast errors, and a download.

Each test gets its own empty HF cache. Nothing touches the network: "no network" is a closed local port and
the download test talks to a minimal fake Hub on localhost.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import put_in_hf_cache, tiny_spec
from depthany import zoo
from depthany.weights import WeightsError, WeightsNotFound, fetch, load_model, save_weights, source_status
from depthany.weights.hub import verify_sha256
from weights_helpers import random_state, tensors_equal

FAST_S = 5.0  # huggingface_hub's own retry loop takes ~23 s; anything near it means we hit it


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    import huggingface_hub.constants as c

    folder = tmp_path / "hub"
    folder.mkdir()
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(folder))
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """One random vits state dict written as an official .pth, a V1 hub folder (both weight names) and a
    transformers folder (V1 and V2 configs), plus a tiny transformers model for repos outside the zoo."""
    d = tmp_path_factory.mktemp("w")
    sd = random_state(zoo.get_spec("da1-small").arch, seed=5)
    v1, v2 = zoo.get_spec("da1-small"), zoo.get_spec("da2-small")
    hub = save_weights(sd, v1, d / "hub", "v1_hub")
    hf1, hf2 = save_weights(sd, v1, d / "hf1", "transformers"), save_weights(sd, v2, d / "hf2", "transformers")
    st = d / "model.safetensors"
    save_weights(sd, v1, st, "depthany")  # official keys in a safetensors file, as the newer mixin writes
    tiny = tiny_spec()
    tiny_sd = random_state(tiny.arch, seed=6)
    return {"sd": sd, "pth": save_weights(sd, v1, d / "w.pth", "official"), "hub": hub, "hub_st": st,
            "hf1": hf1, "hf2": hf2, "tiny_sd": tiny_sd,
            "tiny_hf": save_weights(tiny_sd, tiny, d / "tiny", "transformers")}


def _folder(src: Path) -> dict[str, Path]:
    return {p.name: p for p in src.iterdir()}


@pytest.mark.parametrize("model,repo,needed", [
    ("da2-small", "depth-anything/Depth-Anything-V2-Small", "depth_anything_v2_vits.pth"),
    ("da1-small", "LiheYoung/depth_anything_vits14", "config.json + pytorch_model.bin"),
    ("depth-anything/Depth-Anything-V2-Small-hf", "depth-anything/Depth-Anything-V2-Small-hf",
     "config.json + model.safetensors"),
    ("someone/not-in-the-zoo", "someone/not-in-the-zoo", "config.json + model.safetensors"),
])
def test_offline_error_is_fast_and_says_what_and_where(cache, model, repo, needed) -> None:
    t0 = time.perf_counter()
    with pytest.raises(WeightsNotFound) as e:
        load_model(model)
    assert time.perf_counter() - t0 < FAST_S
    msg = str(e.value)
    assert "HF_HUB_OFFLINE is set" in msg
    assert f"needed: {needed} from https://huggingface.co/{repo}" in msg
    assert f"hf download {repo} " in msg and str(cache) in msg and "--weights" in msg


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _online(monkeypatch, endpoint: str) -> None:
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(c, "ENDPOINT", endpoint)  # what HF_ENDPOINT sets at import time
    monkeypatch.setattr(c, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def test_no_network_error_is_fast(cache, monkeypatch) -> None:
    _online(monkeypatch, f"http://127.0.0.1:{_closed_port()}")
    t0 = time.perf_counter()
    with pytest.raises(WeightsNotFound, match=r"(?s)da2-small: .*127\.0\.0\.1:\d+ is unreachable.*"
                                              r"depth_anything_v2_vits\.pth"):
        load_model("da2-small")
    assert time.perf_counter() - t0 < FAST_S


class _FakeHub(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` ({"owner/name/resolve/main/file": bytes}) like the Hub's resolve endpoint; 404 otherwise."""

    files: dict[str, bytes] = {}

    def _head(self) -> bytes | None:
        body = self.files.get(self.path.lstrip("/"))
        if body is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        self.send_response(200)
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("X-Repo-Commit", "1" * 40)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return body

    def do_HEAD(self) -> None:  # noqa: N802 - http.server API
        self._head()

    def do_GET(self) -> None:  # noqa: N802
        body = self._head()
        if body is not None:
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_download_goes_through_huggingface_hub_into_its_cache(cache, monkeypatch, files) -> None:
    """A zoo name with nothing cached downloads via huggingface_hub (here from a fake Hub on localhost) into
    the standard cache layout; a missing repo gives WeightsNotFound."""
    _FakeHub.files = {f"LiheYoung/depth_anything_vits14/resolve/main/{n}": p.read_bytes()
                      for n, p in _folder(files["hub"]).items()}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _online(monkeypatch, f"http://127.0.0.1:{server.server_address[1]}")
        net, spec = load_model("da1-small")
        assert tensors_equal(net.state_dict(), files["sd"])
        assert Path(spec.extra["weights"]).is_relative_to(cache / "models--LiheYoung--depth_anything_vits14")
        assert source_status(zoo.get_spec("da1-small")) == "yes"
        with pytest.raises(WeightsNotFound, match=r"(?s)da2-base: .*download failed.*Depth-Anything-V2-Base"):
            load_model("da2-base")
    finally:
        server.shutdown()


@pytest.mark.parametrize("source", ["official", "v1_hub", "v1_hub_safetensors", "transformers", "space"])
def test_each_source_layout_is_found_offline_in_the_hf_cache(cache, files, source) -> None:
    if source == "official":
        name, repo = "da2-metric-indoor-small", "depth-anything/Depth-Anything-V2-Metric-Hypersim-Small"
        put_in_hf_cache(cache, repo, {"depth_anything_v2_metric_hypersim_vits.pth": files["pth"]})
    elif source == "v1_hub":
        name, repo = "da1-small", "LiheYoung/depth_anything_vits14"
        put_in_hf_cache(cache, repo, _folder(files["hub"]))
    elif source == "v1_hub_safetensors":  # repo now holds model.safetensors where the zoo lists pytorch_model.bin
        name, repo = "LiheYoung/depth_anything_vits14", "LiheYoung/depth_anything_vits14"
        put_in_hf_cache(cache, repo, {"config.json": files["hub"] / "config.json", "model.safetensors": files["hub_st"]})
    elif source == "transformers":
        name, repo = "LiheYoung/depth-anything-small-hf", "LiheYoung/depth-anything-small-hf"
        put_in_hf_cache(cache, repo, _folder(files["hf1"]))
    else:  # the V1 Space: the model repo is absent, so da1-small falls back to the Space's .pth
        name, repo = "da1-small", "LiheYoung/Depth-Anything"
        put_in_hf_cache(cache, repo, {"checkpoints/depth_anything_vits14.pth": files["pth"]}, repo_type="space")
    net, spec = load_model(name)
    assert spec.name == zoo.get_spec(name).name
    kind = "spaces" if source == "space" else "models"
    assert Path(spec.extra["weights"]).is_relative_to(cache / f"{kind}--{repo.replace('/', '--')}")
    assert tensors_equal(net.state_dict(), files["sd"])


def test_repo_outside_the_zoo_is_read_from_the_cache(cache, files) -> None:
    put_in_hf_cache(cache, "someone/tiny-depth", _folder(files["tiny_hf"]))
    net, spec = load_model("someone/tiny-depth")
    assert spec.name == "someone/tiny-depth" and spec.output_kind == "relative_disparity"
    assert tensors_equal(net.state_dict(), files["tiny_sd"])


def test_alias_prefers_its_own_repo_and_sha256_is_checked(cache, files) -> None:
    """da2-small lists the official .pth (with its published sha256) first and the -hf repo second. Our random
    .pth under the official name fails the digest; naming the -hf repo uses that repo instead."""
    put_in_hf_cache(cache, "depth-anything/Depth-Anything-V2-Small", {"depth_anything_v2_vits.pth": files["pth"]})
    put_in_hf_cache(cache, "depth-anything/Depth-Anything-V2-Small-hf", _folder(files["hf2"]))
    with pytest.raises(WeightsError, match=r"depth_anything_v2_vits\.pth: sha256 .* does not match the published 715f"):
        load_model("da2-small")
    with pytest.raises(WeightsError, match="does not match the published"):
        load_model("depth-anything/Depth-Anything-V2-Small")
    net, spec = load_model("depth-anything/Depth-Anything-V2-Small-hf")
    assert spec.name == "da2-small"
    assert "Depth-Anything-V2-Small-hf" in spec.extra["weights"]
    assert tensors_equal(net.state_dict(), files["sd"])


def test_matching_sha256_is_accepted(cache, files) -> None:
    digest = hashlib.sha256(files["pth"].read_bytes()).hexdigest()
    spec = zoo.get_spec("da2-metric-indoor-small")
    src = zoo.WeightSource("official", "me/checked", "w.pth", sha256=digest)
    put_in_hf_cache(cache, "me/checked", {"w.pth": files["pth"]})
    assert fetch(spec, src).name == "w.pth"
    bad = zoo.WeightSource("official", "me/checked", "w.pth", sha256="0" * 64)
    with pytest.raises(WeightsError, match=r"w\.pth: sha256"):
        fetch(spec, bad)


def test_cache_blob_named_by_its_digest_is_not_rehashed(tmp_path) -> None:
    """HF cache snapshots link to blobs named by their sha256; a matching name is trusted, others are hashed."""
    blob_dir = tmp_path / "blobs"
    blob_dir.mkdir()
    content = b"weights"
    real = hashlib.sha256(content).hexdigest()
    (blob_dir / real).write_bytes(content)
    link = tmp_path / "w.pth"
    os.symlink(blob_dir / real, link)
    verify_sha256(link, real)
    with pytest.raises(WeightsError, match="does not match"):
        verify_sha256(link, "f" * 64)


def test_status_of_bundled_and_unreleased_models(cache) -> None:
    assert source_status(zoo.get_spec("da2-giant")) == "not released"
    with pytest.raises(WeightsNotFound, match="no published weights"):
        load_model("da2-giant")
    mini = zoo.get_spec(zoo.BUNDLED_NAME)
    if source_status(mini) != "yes":  # until the bundled model is trained and shipped
        assert source_status(mini) == "not available"
        with pytest.raises(WeightsNotFound, match="bundled weights .* not part of this installation"):
            load_model(None)
    assert source_status(zoo.get_spec("da2-small")) == "no"
