"""The web demo without a browser: the backend directly, and the running Gradio app through gradio_client."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from click.testing import CliRunner  # noqa: E402
from PIL import Image  # noqa: E402

from conftest import put_in_hf_cache, randomize, tiny_spec  # noqa: E402
from depthany import DepthPredictor  # noqa: E402
from depthany.cli.main import cli  # noqa: E402
from depthany.io.depth import read_npy, read_png16  # noqa: E402
from depthany.io.image import ImageReadError  # noqa: E402
from depthany.io.visual import depth_color  # noqa: E402
from depthany.models import DepthAnything  # noqa: E402
from depthany.serve.demo import DemoBackend, ModelChoice, find_examples, launch_demo, local_model_choices  # noqa: E402
from depthany.weights import save_weights  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def save_tiny(path: Path, head: str = "relative") -> Path:
    spec = tiny_spec(head=head, max_depth=20.0 if head == "metric" else None)
    save_weights(randomize(DepthAnything(spec.arch), 0).state_dict(), spec, path, fmt="depthany")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("demo")
    y, x = np.mgrid[0:60, 0:80]
    rgb = np.stack([x * 3, y * 4, (x * y) % 255], -1).astype(np.uint8)
    Image.fromarray(rgb).save(d / "room.png")
    (d / "notes.txt").write_text("not an image")
    return {"relative": save_tiny(d / "rel.safetensors"), "metric": save_tiny(d / "met.safetensors", "metric"),
            "image": d / "room.png", "text": d / "notes.txt", "dir": d}


@pytest.fixture(scope="module")
def backend(files: dict[str, Path]) -> DemoBackend:
    return DemoBackend(local_model_choices([files["relative"], files["metric"]]), workdir=files["dir"] / "work",
                       keep_runs=3)


REL, MET = "rel.safetensors (local file)", "met.safetensors (local file)"


def test_downloads_hold_the_predictors_values(backend: DemoBackend, files: dict[str, Path]) -> None:
    direct = DepthPredictor.from_pretrained(weights=files["relative"], input_size=70).predict(files["image"])
    out = backend.run(files["image"], REL, "inferno", 70)
    values, meta = read_png16(out.png16)
    assert meta["kind"] == "relative_disparity" and meta["source"] == "room.png"
    np.testing.assert_allclose(values, direct.values, atol=meta["scale"] * 0.51 + 1e-6)
    np.testing.assert_array_equal(read_npy(out.npy), direct.values)
    np.testing.assert_array_equal(out.picture, depth_color(direct, "inferno"))
    np.testing.assert_array_equal(out.photo, np.asarray(Image.open(files["image"])))  # RGB as uploaded
    assert out.ply is None and out.view is None and "relative disparity" in out.info


def test_metric_model_gives_a_point_cloud(backend: DemoBackend, files: dict[str, Path]) -> None:
    plyfile = pytest.importorskip("plyfile")
    out = backend.run(files["image"], MET, input_size=70)
    assert out.ply is not None and out.view is not None and "fx" in out.info
    full = plyfile.PlyData.read(str(out.ply))["vertex"]
    view = plyfile.PlyData.read(str(out.view))["vertex"]
    assert full.count == view.count > 0  # 4800 pixels: no subsampling for the viewer
    depth = out.result.values
    assert np.all(full["z"] > 0) and full["z"].max() <= depth.max() + 1e-4
    np.testing.assert_allclose(view["z"], -full["z"])  # y-up, looking down -z for the viewer
    np.testing.assert_allclose(view["y"], -full["y"])
    np.testing.assert_allclose(view["x"], full["x"])
    assert {"red", "green", "blue"} <= set(full.data.dtype.names)


def test_input_size_changes_the_network_size_and_old_runs_are_swept(backend: DemoBackend,
                                                                    files: dict[str, Path]) -> None:
    a = backend.run(files["image"], REL, input_size=70)
    b = backend.run(files["image"], REL, input_size=112)
    assert a.result.network_size == (70, 98) and b.result.network_size == (112, 154)
    assert backend.predictor(REL, 70).model is backend.predictor(REL, 112).model  # one network in memory
    for _ in range(3):
        backend.run(files["image"], REL, input_size=70)
    assert len([p for p in backend.workdir.iterdir() if p.is_dir()]) <= 4  # keep_runs=3 (+ the newest)


def test_bad_inputs_fail_clearly(backend: DemoBackend, files: dict[str, Path]) -> None:
    with pytest.raises(ImageReadError, match="notes.txt"):
        backend.run(files["text"], REL)
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        backend.run(files["image"], "nope")
    with pytest.raises(ValueError, match="colour map"):
        backend.run(files["image"], REL, cmap="rainbow")
    with pytest.raises(ValueError, match="no model to offer"):
        DemoBackend([])


@pytest.fixture
def empty_hf_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private, empty Hugging Face cache (the session's cache may hold other tests' files)."""
    from huggingface_hub import constants

    folder = tmp_path / "hub"
    folder.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(folder))
    return folder


def test_only_zoo_models_on_disk_are_offered(empty_hf_cache: Path, tmp_path: Path) -> None:
    assert [c for c in local_model_choices() if c.model == "da2-small"] == []
    dummy = tmp_path / "w.pth"
    dummy.write_bytes(b"x")  # listing only checks presence; nothing is loaded or downloaded
    put_in_hf_cache(empty_hf_cache, "depth-anything/Depth-Anything-V2-Small", {"depth_anything_v2_vits.pth": dummy})
    choices = local_model_choices([tmp_path / "mine.safetensors"])
    assert ModelChoice("da2-small", model="da2-small") in choices
    assert choices[-1] == ModelChoice("mine.safetensors (local file)", weights=tmp_path / "mine.safetensors")


def test_examples_folder(tmp_path: Path) -> None:
    for name in ("b.jpg", "a.png", "readme.md"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in find_examples(tmp_path)] == ["a.png", "b.jpg"]
    assert find_examples(tmp_path / "none") == []  # a named folder that does not exist: no fallback


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_running_app_through_gradio_client(backend: DemoBackend, files: dict[str, Path]) -> None:
    from gradio_client import Client, handle_file

    direct = DepthPredictor.from_pretrained(weights=files["relative"], input_size=70).predict(files["image"])
    port = free_port()
    demo = launch_demo(backend, [files["image"]], port=port, block=False)
    assert demo.analytics_enabled is False and demo.share is False
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        assert "/predict" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        slider, png16, npy, ply, view, info = client.predict(handle_file(str(files["image"])), REL, "Spectral_r", 70,
                                                             api_name="/predict")
        photo, picture = (np.asarray(Image.open(p).convert("RGB")) for p in slider)
        np.testing.assert_array_equal(picture, depth_color(direct, "Spectral_r"))  # slider images are PNG
        np.testing.assert_array_equal(photo, np.asarray(Image.open(files["image"])))
        values, meta = read_png16(png16)
        np.testing.assert_allclose(values, direct.values, atol=meta["scale"] * 0.51 + 1e-6)
        np.testing.assert_array_equal(read_npy(npy), direct.values)
        assert Path(png16).name == "room_depth16.png" and "test-tiny-v2-relative" in info
        assert not ply.get("visible", True) and not view.get("visible", True)

        *_, ply, view, info = client.predict(handle_file(str(files["image"])), MET, "turbo", 70, api_name="/predict")
        assert ply["visible"] and view["visible"] and "metric depth" in info
        assert Path(ply["value"]).name == "room_points.ply" and Path(view["value"]).name == "room_view.ply"
        assert Path(ply["value"]).read_bytes().startswith(b"ply\n")

        with pytest.raises(gradio_client.exceptions.AppError, match="notes.txt"):
            client.predict(handle_file(str(files["text"])), REL, "Spectral_r", 70, api_name="/predict")
    finally:
        demo.close()


def test_demo_command_without_models_says_what_to_do(empty_hf_cache: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from depthany.weights import hub

    # An install without the bundled file (a checkout has it): nothing on disk to offer.
    monkeypatch.setattr(hub, "bundled_path", lambda rel: tmp_path / "no-assets" / rel)
    assert local_model_choices() == []
    r = CliRunner().invoke(cli, ["demo", "--port", str(free_port())])
    assert r.exit_code == 2 and "no model to offer" in r.stderr and "--weights" in r.stderr
