"""Depth Anything 3 weights at full size (DA3-Small): the official Hugging Face folder from the offline cache by
zoo name, strict loading, conversion to depthany's file and back (lossless), and the model listing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import da3_reference as ref
from conftest import put_in_hf_cache
from depthany import zoo
from depthany.da3 import predict_views
from depthany.models import DepthAnything3
from depthany.weights import WeightsError, load_model, load_network, read_checkpoint
from depthany.weights.convert import convert_weights
from test_da3_models import FULL, PARAMS
from test_da3_pipeline import image, official_input

REPO = "depth-anything/DA3-SMALL"


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> tuple[Path, dict]:
    """DA3-Small with random weights (fp16, as a converted release might be) in the official folder layout."""
    sd = {k: v.half() for k, v in ref.lively_state(FULL["da3-small"], seed=7).items()}
    for w in ("weight", "bias"):  # one tensor under four names, as in the official module
        for i in range(1, 4):
            sd[f"{ref.P}head.scratch.output_conv2_aux.{i}.2.{w}"] = sd[f"{ref.P}head.scratch.output_conv2_aux.0.2.{w}"]
    return ref.write_official_folder(tmp_path_factory.mktemp("da3") / "DA3-SMALL", sd, "da3-small"), sd


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    import huggingface_hub.constants as c

    folder = tmp_path / "hub"
    folder.mkdir()
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(folder))
    return folder


def test_zoo_name_loads_the_official_folder_from_the_cache(official, cache) -> None:
    folder, sd = official
    put_in_hf_cache(cache, REPO, {p.name: p for p in folder.iterdir()})
    model, spec = load_network("da3-small")
    assert isinstance(model, DepthAnything3) and spec.name == "da3-small" and spec.licence == "Apache-2.0"
    imgs = [image(40, 60, seed=s) for s in range(3)]
    pred = predict_views(model, imgs, process_res=42)
    x = torch.stack([torch.from_numpy(official_input(i, 42)) for i in imgs])
    want = ref.views_forward(x, {k: v.float() for k, v in sd.items()}, FULL["da3-small"])
    for name in ("depth", "conf", "extrinsics", "intrinsics"):
        assert np.allclose(getattr(pred, name), want[name].numpy(), rtol=5e-4, atol=5e-5), name
    assert np.isfinite(pred.intrinsics).all() and pred.depth.std() > 0.05 * pred.depth.mean()
    with pytest.raises(WeightsError, match="Depth Anything 3"):
        load_model("da3-small")  # the V1/V2 loader says where to go instead of building the wrong network


def test_convert_round_trip_is_lossless(official, tmp_path) -> None:
    folder, _ = official
    mine = convert_weights(folder, tmp_path / "da3-small.safetensors", "depthany")
    assert (mine.source_layout, mine.model, mine.dtype) == ("da3", "DA3-SMALL", "float16")  # named by its folder
    ckpt = read_checkpoint(tmp_path / "da3-small.safetensors")
    assert ckpt.layout == "depthany" and ckpt.spec is not None and ckpt.spec.arch == zoo.get_spec("da3-small").arch
    back = convert_weights(tmp_path / "da3-small.safetensors", tmp_path / "back", "official")
    assert json.loads((back.output / "config.json").read_text()) == {"model_name": "da3-small"}
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as a, safe_open(str(back.output / "model.safetensors"),
                                                                            "pt") as b:
        assert sorted(a.keys()) == sorted(b.keys())  # shared LayerNorm stored once, under the same name
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())  # noqa: SIM118
        assert a.metadata() == b.metadata()  # {dropped name: kept name}, as safetensors.save_model writes
    with pytest.raises(ValueError, match="encoder-only use of Depth Anything 3"):
        convert_weights(folder, tmp_path / "x.pth", "dinov2")
    with pytest.raises(ValueError, match="transformers"):
        convert_weights(folder, tmp_path / "hf", "transformers")


def test_model_listing_counts_da3_sizes() -> None:
    from depthany.weights.catalog import count_params, output_text

    assert count_params(zoo.get_spec("da3-small").arch) == PARAMS["da3-small"]
    assert output_text(zoo.get_spec("da3-metric-large").arch) == "metric depth (m, focal/300) + sky"
    assert output_text(zoo.get_spec("da3-mono-large").arch) == "relative depth + sky"
    assert output_text(zoo.get_spec("da3-base").arch) == "multi-view depth + conf + cameras"
