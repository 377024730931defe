"""The web demo's "Generate" tab: the backend directly, and the running app's ``/generate`` endpoint through
gradio_client; results must equal :class:`DepthGenerator` run with the same models and settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers")
gr = pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from PIL import Image  # noqa: E402

from conftest import put_in_hf_cache  # noqa: E402
from depthany.generate.pipeline import DepthGenerator  # noqa: E402
from depthany.serve.demo import DemoBackend, build_demo, launch_demo, local_model_choices  # noqa: E402
from depthany.serve.generate_tab import GenerateBackend, GeneratePair, local_generate_pairs  # noqa: E402
from generate_worlds import tiny_controlnet, write_sd_base  # noqa: E402
from pseudo_worlds import random_rgb, write_teacher  # noqa: E402
from test_demo import free_port  # noqa: E402

PROMPT = "a photo of a blue house"
DEPTH = "teacher.safetensors (local file)"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("gen-demo")
    base = write_sd_base(d / "base")
    tiny_controlnet(base).save_pretrained(d / "cn")
    Image.fromarray(random_rgb(np.random.default_rng(2), 60, 90)).save(d / "house.png")
    depth = DemoBackend(local_model_choices([write_teacher(d / "teacher.safetensors")]), workdir=d / "work")
    pairs = local_generate_pairs(str(d / "cn"), str(base))
    return {"dir": d, "base": base, "cn": d / "cn", "photo": d / "house.png", "depth": depth,
            "backend": GenerateBackend(pairs, depth), "label": pairs[0].label}


@pytest.fixture(scope="module")
def oracle(world: dict[str, Any]) -> Any:
    gen = DepthGenerator.from_pretrained(str(world["cn"]), str(world["base"]), str(world["dir"] / "teacher.safetensors"))
    return gen.generate(world["photo"], PROMPT, "", 2, 5.0, 0.8, 11, 2, 64)


def test_backend_equals_the_generator(world: dict[str, Any], oracle: Any) -> None:
    result, run = world["backend"].run(world["photo"], world["label"], DEPTH, PROMPT, "", 2, 5.0, 0.8, 11, 2, 64)
    for a, b in zip(result.images, oracle.images):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(result.control, oracle.control)
    assert sorted(p.name for p in run.iterdir()) == ["house_control.png", "house_gen0.png", "house_gen1.png",
                                                     "house_generate.json"]
    assert json.loads((run / "house_generate.json").read_text())["seeds"] == [11, 12]
    with pytest.raises(ValueError, match="unknown ControlNet"):
        world["backend"].run(world["photo"], "nope", DEPTH, PROMPT)
    with pytest.raises(ValueError, match="images per click"):
        world["backend"].run(world["photo"], world["label"], DEPTH, PROMPT, num_images=9)


def test_generate_endpoint_of_the_running_app(world: dict[str, Any], oracle: Any) -> None:
    from gradio_client import Client, handle_file

    port = free_port()
    demo = launch_demo(world["depth"], [], port=port, block=False, generate=world["backend"])
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        assert "/generate" in endpoints and "/predict" in endpoints  # the depth tab is still there
        gallery, control, settings, info = client.predict(
            handle_file(str(world["photo"])), world["label"], DEPTH, PROMPT, "", 2, 5.0, 0.8, 11, 2,
            api_name="/generate")
        images = [np.asarray(Image.open(item["image"]).convert("RGB")) for item in gallery]
        assert len(images) == 2
        # the demo's default size is the base model's native one; the oracle was asked for 64 = that size
        for a, b in zip(images, oracle.images):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.asarray(Image.open(control).convert("RGB")), oracle.control)
        assert json.loads(Path(settings).read_text())["control_strength"] == 0.8 and "seeds 11, 12" in info
        with pytest.raises(Exception, match="prompt"):
            client.predict(handle_file(str(world["photo"])), world["label"], DEPTH, " ", "", 2, 5.0, 0.8, 11, 1,
                           api_name="/generate")
    finally:
        demo.close()


def test_pairs_on_disk_and_the_tab_without_any(world: dict[str, Any], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    assert local_generate_pairs() == []
    blocks = build_demo(world["depth"])  # no pair on disk: the tab says what to download
    texts = [getattr(b, "value", "") or "" for b in blocks.blocks.values() if isinstance(b, gr.Markdown)]
    assert any("hf download LiheYoung/Depth-Anything" in t for t in texts)

    weights = world["cn"] / "diffusion_pytorch_model.safetensors"
    put_in_hf_cache(cache, "LiheYoung/Depth-Anything",
                    {"checkpoints_controlnet/diffusion_pytorch_model.safetensors": weights}, repo_type="space")
    assert local_generate_pairs() == []  # the base model is not there yet
    put_in_hf_cache(cache, "stable-diffusion-v1-5/stable-diffusion-v1-5",
                    {"model_index.json": world["base"] / "model_index.json",
                     "unet/config.json": world["base"] / "unet" / "config.json"})
    assert local_generate_pairs() == [GeneratePair("depth-anything + stable-diffusion-v1-5/stable-diffusion-v1-5",
                                                   "depth-anything")]
