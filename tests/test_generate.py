"""``depthany generate`` end to end on tiny random diffusers models saved in the layouts real checkpoints use.

Oracles: the conditioning image is rebuilt from ``depthany predict --format controlnet`` and the documented
size rule and resize; the tensor the ControlNet receives is captured with a hook; reproducibility and the
effect of the control image are checked as invariants (same seed -> same bytes; control strength 0 -> the
control image changes nothing); single-file ControlNets must load to exactly the weights they were written
from; the pair check must name both models.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from click.testing import CliRunner  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from conftest import put_in_hf_cache  # noqa: E402
from depthany.cli.main import cli  # noqa: E402
from depthany.generate import (  # noqa: E402
    ControlNetFormatError,
    GenerateError,
    ModelNotFound,
    PairError,
    check_pair,
    control_size,
)
from depthany.generate.pipeline import DepthGenerator  # noqa: E402
from depthany.generate.single_file import infer_config  # noqa: E402
from generate_worlds import tiny_controlnet, to_original_layout, write_sd_base, write_sdxl_base  # noqa: E402
from pseudo_worlds import random_rgb, write_teacher  # noqa: E402

PROMPT = "a photo of a red room"
FAST = ["--steps", "3", "--resolution", "64", "--device", "cpu", "--depth-input-size", "42"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Base model folder, ControlNet as a folder / original .pth / diffusers-named file, depth model, photos."""
    d = tmp_path_factory.mktemp("generate")
    base = write_sd_base(d / "base")
    cn = tiny_controlnet(base)
    cn.save_pretrained(d / "cn")
    state = cn.state_dict()
    (d / "orig").mkdir()
    torch.save(to_original_layout(state, cn.config.layers_per_block), d / "orig" / "control_tiny_depth.pth")
    (d / "single").mkdir()
    save_file({k: v.contiguous() for k, v in state.items()}, d / "single" / "control_tiny_depth_anything.safetensors")
    rng = np.random.default_rng(0)
    photos = d / "photos"
    photos.mkdir()
    for name, (h, w) in (("room", (60, 90)), ("street", (60, 90))):
        Image.fromarray(random_rgb(rng, h, w)).save(photos / f"{name}.png")
    return {"dir": d, "base": base, "cn": d / "cn", "state": state, "teacher": write_teacher(d / "teacher.safetensors"),
            "orig": d / "orig" / "control_tiny_depth.pth",
            "single": d / "single" / "control_tiny_depth_anything.safetensors", "photos": photos,
            "room": photos / "room.png", "street": photos / "street.png"}


@pytest.fixture(scope="module")
def gen(world: dict[str, Any]) -> DepthGenerator:
    return DepthGenerator.from_pretrained(str(world["cn"]), str(world["base"]), str(world["teacher"]), "cpu",
                                          depth_input_size=42)


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["generate", *args])


# ------------------------------------------------------------------------------------------ size rule


def documented_size(h: int, w: int, r: int) -> tuple[int, int]:
    """docs/generate.md: short side r, long side <= 2r, nearest multiple of 8 (halves up), at least 8."""
    s = min(r / min(h, w), 2 * r / max(h, w))
    return tuple(max(8, 8 * math.floor(n * s / 8 + 0.5)) for n in (h, w))  # type: ignore[return-value]


@pytest.mark.parametrize("h,w,r", [(3024, 4032, 512), (480, 640, 512), (60, 90, 64), (100, 1000, 512), (1, 1, 64),
                                   (768, 1024, 1024), (512, 700, 512), (333, 333, 77)])
def test_control_size_follows_the_documented_rule(h: int, w: int, r: int) -> None:
    assert control_size(h, w, r) == documented_size(h, w, r)


def test_control_size_pinned_values_and_bounds() -> None:
    assert control_size(3024, 4032, 512) == (512, 680)  # 682.7 -> 680
    assert control_size(100, 1000, 512) == (104, 1024)  # long side capped at 2 x 512
    assert control_size(512, 700, 512) == (512, 704)  # 700 / 8 = 87.5 rounds up
    with pytest.raises(ValueError, match="resolution"):
        control_size(10, 10, 4096)


# ---------------------------------------------------------------------------------------- end to end


def test_cli_writes_images_control_and_settings(world: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "gen"
    res = run(str(world["room"]), "--prompt", PROMPT, "--negative-prompt", "blurry", "--out", str(out),
              "--controlnet", str(world["cn"]), "--base", str(world["base"]), "--depth-model", str(world["teacher"]),
              "--num-images", "2", "--seed", "7", *FAST)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["room_control.png", "room_gen0.png", "room_gen1.png",
                                                     "room_generate.json"]
    meta = json.loads((out / "room_generate.json").read_text())
    assert meta["prompt"] == PROMPT and meta["negative_prompt"] == "blurry" and meta["seeds"] == [7, 8]
    assert meta["steps"] == 3 and meta["guidance"] == 7.5 and meta["control_strength"] == 1.0
    assert meta["size"] == [64, 96] and meta["image_size"] == [60, 90] and meta["resolution"] == 64
    assert meta["pipeline"] == "StableDiffusionControlNetPipeline" and meta["precision"] == "fp32"
    assert meta["depth"]["model"] == "test-tiny-v2-relative" and meta["depth"]["input_size"] == 42
    assert meta["controlnet"]["kind"] == "folder" and meta["base"]["path"] == str(world["base"])
    assert meta["outputs"] == ["room_gen0.png", "room_gen1.png", "room_control.png"]
    assert set(meta["versions"]) == {"depthany", "diffusers", "torch"}
    for k in (0, 1):
        assert np.asarray(Image.open(out / f"room_gen{k}.png")).shape == (64, 96, 3)

    # the conditioning image = `depthany predict --format controlnet`, resized as documented
    pred = CliRunner().invoke(cli, ["predict", str(world["room"]), "--weights", str(world["teacher"]), "--input-size",
                                    "42", "--format", "controlnet", "--backend", "torch", "--out", str(tmp_path / "p")])
    assert pred.exit_code == 0, pred.output
    full = Image.open(tmp_path / "p" / "room_controlnet.png")
    h, w = documented_size(60, 90, 64)
    expected = np.asarray(full.resize((w, h), Image.BILINEAR))
    control = np.asarray(Image.open(out / "room_control.png"))
    np.testing.assert_array_equal(control, expected)
    assert (control[..., 0] == control[..., 1]).all() and (control[..., 0] == control[..., 2]).all()
    assert control.min() < 30 and control.max() > 225  # min..max stretched: near is bright


def test_the_controlnet_receives_the_conditioning_image(gen: DepthGenerator, world: dict[str, Any]) -> None:
    seen: list[torch.Tensor] = []

    def grab(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        seen.append(kwargs["controlnet_cond"].detach().clone())

    handle = gen.pipe.controlnet.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        out = gen.generate(world["room"], PROMPT, steps=2, seed=1, resolution=64)
    finally:
        handle.remove()
    want = torch.from_numpy(np.array(out.control)).permute(2, 0, 1).float() / 255.0
    assert len(seen) == 2  # one call per step, conditional and unconditional halves batched
    for cond in seen:
        assert cond.shape == (2, 3, 64, 96)  # classifier-free guidance: the same image twice
        torch.testing.assert_close(cond[0], want, rtol=0, atol=1e-6)
        torch.testing.assert_close(cond[1], want, rtol=0, atol=1e-6)


def test_seed_reproduces_and_the_control_image_matters(gen: DepthGenerator, world: dict[str, Any]) -> None:
    kw: dict[str, Any] = {"steps": 3, "resolution": 64}
    a = gen.generate(world["room"], PROMPT, seed=3, **kw)
    b = gen.generate(world["room"], PROMPT, seed=3, **kw)
    np.testing.assert_array_equal(a.images[0], b.images[0])
    other_seed = gen.generate(world["room"], PROMPT, seed=4, **kw)
    assert np.abs(other_seed.images[0].astype(int) - a.images[0]).mean() > 1
    two = gen.generate(world["room"], PROMPT, seed=3, num_images=2, **kw)
    np.testing.assert_array_equal(two.images[0], a.images[0])  # image k uses seed + k
    np.testing.assert_array_equal(two.images[1], other_seed.images[0])

    street = gen.generate(world["street"], PROMPT, seed=3, **kw)
    assert np.abs(street.control.astype(int) - a.control).mean() > 5
    # a different control image changes the output (identical inputs give identical bytes, shown above)
    assert np.abs(street.images[0].astype(int) - a.images[0]).mean() > 0.1
    # ... and only through the ControlNet: with it switched off the two photos give the same image
    off_a = gen.generate(world["room"], PROMPT, seed=3, control_strength=0.0, **kw)
    off_b = gen.generate(world["street"], PROMPT, seed=3, control_strength=0.0, **kw)
    np.testing.assert_array_equal(off_a.images[0], off_b.images[0])
    assert np.abs(off_a.images[0].astype(int) - a.images[0]).mean() > 1


def test_bad_arguments_name_themselves(gen: DepthGenerator, world: dict[str, Any]) -> None:
    control = np.zeros((64, 96, 3), np.uint8)
    for kwargs, word in (({"steps": 0}, "steps"), ({"guidance": -1.0}, "guidance"), ({"num_images": 65}, "num_images"),
                         ({"control_strength": float("nan")}, "control_strength"), ({"seed": -1}, "seed")):
        with pytest.raises(GenerateError, match=word):
            gen.generate_from_control(control, PROMPT, **kwargs)
    with pytest.raises(GenerateError, match="multiple of 8"):
        gen.generate_from_control(np.zeros((60, 90, 3), np.uint8), PROMPT)
    with pytest.raises(GenerateError, match="prompt"):
        gen.generate_from_control(control, "  ")


def test_a_bad_photo_fails_alone(world: dict[str, Any], tmp_path: Path) -> None:
    photos = tmp_path / "in"
    shutil.copytree(world["photos"], photos)
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    res = run(str(photos), "--prompt", PROMPT, "--out", str(tmp_path / "gen"), "--controlnet", str(world["cn"]),
              "--base", str(world["base"]), "--depth-model", str(world["teacher"]), *FAST)
    assert res.exit_code == 1, res.output
    assert "FAILED" in res.output and "broken.png" in res.output and "2 ok, 1 failed" in res.output
    assert (tmp_path / "gen" / "room_gen0.png").exists() and (tmp_path / "gen" / "street_gen0.png").exists()


# --------------------------------------------------------------------------------- single-file layouts


@pytest.mark.parametrize("which", ["orig", "single"])
def test_single_file_controlnets_load_through_diffusers_exactly(gen: DepthGenerator, world: dict[str, Any],
                                                                which: str) -> None:
    """The original (cldm) layout is converted by diffusers' ``from_single_file``; the diffusers-named file comes
    without a config (as Depth Anything publishes its ControlNet); both give back exactly the weights written."""
    from_file = DepthGenerator.from_pretrained(str(world[which]), str(world["base"]), str(world["teacher"]), "cpu",
                                               depth_input_size=42)
    loaded = from_file.pipe.controlnet.state_dict()
    assert set(loaded) == set(world["state"])
    for k, v in world["state"].items():
        assert torch.equal(loaded[k], v), k
    a = from_file.generate(world["room"], PROMPT, steps=2, seed=5, resolution=64)
    b = gen.generate(world["room"], PROMPT, steps=2, seed=5, resolution=64)
    np.testing.assert_array_equal(a.images[0], b.images[0])
    assert a.settings["controlnet"]["kind"] == "file"


def test_precision_applies_to_every_diffusion_model(world: dict[str, Any]) -> None:
    """bf16 (runs on CPUs too): the folder and the single-file ControlNet load in bf16 like the base model's parts,
    give the same image, and the depth model stays fp32."""
    images = []
    for cn in (world["cn"], world["orig"]):
        gen = DepthGenerator.from_pretrained(str(cn), str(world["base"]), str(world["teacher"]), "cpu", "bf16",
                                             depth_input_size=42)
        p = gen.pipe
        assert {p.unet.dtype, p.controlnet.dtype, p.vae.dtype, p.text_encoder.dtype} == {torch.bfloat16}
        assert next(gen.depth.model.parameters()).dtype == torch.float32 and gen.depth.precision == "fp32"
        out = gen.generate(world["room"], PROMPT, steps=2, seed=0, resolution=64)
        assert out.settings["precision"] == "bf16" and out.settings["depth"]["precision"] == "fp32"
        images.append(out.images[0])
    np.testing.assert_array_equal(images[0], images[1])


def test_shape_inference_matches_full_size_configs() -> None:
    """The config worked out from tensor shapes equals the real one for an SD 1.x ControlNet (Depth Anything's:
    diffusers defaults with cross_attention_dim 768, LiheYoung/Depth-Anything controlnet/config.json at
    1d03336771fe09c5398ffdd211441e33941a97dc) and an SDXL-shaped one (built on the meta device)."""
    from diffusers import ControlNetModel

    sdxl = {"block_out_channels": (320, 640, 1280), "transformer_layers_per_block": (1, 2, 10),
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            "cross_attention_dim": 2048, "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
            "projection_class_embeddings_input_dim": 2816, "use_linear_projection": True,
            "attention_head_dim": (5, 10, 20)}
    for kwargs in ({"cross_attention_dim": 768}, sdxl):
        with torch.device("meta"):
            model = ControlNetModel(**kwargs)
        got = infer_config({k: tuple(v.shape) for k, v in model.state_dict().items()})
        for key, value in got.items():
            want = model.config[key]
            want = list(want) if isinstance(want, tuple) else want
            if key == "transformer_layers_per_block" and isinstance(want, list) and len(set(want)) == 1:
                want = want[0]
            assert value == want, key


def test_a_file_that_is_not_a_controlnet_is_refused(world: dict[str, Any], tmp_path: Path) -> None:
    res = run(str(world["room"]), "--prompt", PROMPT, "--out", str(tmp_path / "g"), "--controlnet",
              str(world["teacher"]), "--base", str(world["base"]), *FAST)
    assert res.exit_code == 2 and "not a ControlNet checkpoint" in res.output and "teacher.safetensors" in res.output
    state = {k: v for k, v in world["state"].items() if not k.startswith("controlnet_mid_block")}
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "cut.safetensors")
    with pytest.raises(ControlNetFormatError, match="2 missing: controlnet_mid_block.bias"):
        DepthGenerator.from_pretrained(str(tmp_path / "cut.safetensors"), str(world["base"]), str(world["teacher"]))
    (tmp_path / "noconfig").mkdir()
    shutil.copy(world["single"], tmp_path / "noconfig")
    with pytest.raises(GenerateError, match="no config.json.*pass the weights file itself"):
        DepthGenerator.from_pretrained(str(tmp_path / "noconfig"), str(world["base"]))


# -------------------------------------------------------------------------------------------- pairs


def test_pair_check_refuses_a_controlnet_for_another_base(world: dict[str, Any], tmp_path: Path) -> None:
    xl = write_sdxl_base(tmp_path / "xl")
    res = run(str(world["room"]), "--prompt", PROMPT, "--out", str(tmp_path / "g"), "--controlnet", str(world["cn"]),
              "--base", str(xl), *FAST)
    assert res.exit_code == 2, res.output
    assert f"ControlNet '{world['cn']}'" in res.output and f"base model '{xl}'" in res.output
    assert "addition_embed_type: None vs text_time" in res.output
    assert not (tmp_path / "g").exists()
    # the single-file path is checked too, before its weights are loaded
    with pytest.raises(PairError, match="does not fit base model"):
        DepthGenerator.from_pretrained(str(world["orig"]), str(xl))


def test_pair_check_on_real_sized_configs() -> None:
    sd15_cn = {"cross_attention_dim": 768, "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2,
               "in_channels": 4}
    sdxl_unet = {"cross_attention_dim": 2048, "block_out_channels": [320, 640, 1280], "layers_per_block": 2,
                 "in_channels": 4, "addition_embed_type": "text_time", "projection_class_embeddings_input_dim": 2816}
    with pytest.raises(PairError) as e:
        check_pair(sd15_cn, "depth-anything", sdxl_unet, "stabilityai/stable-diffusion-xl-base-1.0")
    msg = str(e.value)
    assert "'depth-anything' (Stable Diffusion 1.x" in msg and "(SDXL: cross-attention 2048" in msg
    assert "cross_attention_dim: 768 vs 2048" in msg and "block_out_channels" in msg
    check_pair(sd15_cn, "a", dict(sd15_cn, attention_head_dim=8, transformer_layers_per_block=1), "b")  # fits
    with pytest.raises(PairError, match="1-channel"):
        check_pair(dict(sd15_cn, conditioning_channels=1), "gray", sd15_cn, "b")


def test_sdxl_base_uses_the_sdxl_pipeline(tmp_path: Path, world: dict[str, Any]) -> None:
    xl = write_sdxl_base(tmp_path / "xl")
    tiny_controlnet(xl).save_pretrained(tmp_path / "xl_cn")
    res = run(str(world["room"]), "--prompt", PROMPT, "--out", str(tmp_path / "g"), "--controlnet",
              str(tmp_path / "xl_cn"), "--base", str(xl), "--depth-model", str(world["teacher"]), *FAST)
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "g" / "room_generate.json").read_text())
    assert meta["pipeline"] == "StableDiffusionXLControlNetPipeline" and meta["size"] == [64, 96]
    assert np.asarray(Image.open(tmp_path / "g" / "room_gen0.png")).shape == (64, 96, 3)


# ------------------------------------------------------------------------------------ offline, the hub


def test_offline_messages_say_what_to_download(world: dict[str, Any], tmp_path: Path) -> None:
    """HF_HUB_OFFLINE=1 (conftest): the default ControlNet and base, and a zoo depth model, are not cached."""
    res = run(str(world["room"]), "--prompt", PROMPT, "--out", str(tmp_path / "g"), "--depth-model", "da2-large",
              "--device", "cpu")
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert ("hf download LiheYoung/Depth-Anything checkpoints_controlnet/diffusion_pytorch_model.safetensors "
            "--repo-type space") in out
    assert "spaces--LiheYoung--Depth-Anything" in out and "--controlnet /path/to/diffusion_pytorch_model.safetensors" in out
    assert "hf download stable-diffusion-v1-5/stable-diffusion-v1-5 --include" in out
    assert "--base /path/to/folder" in out
    assert "depth-anything/Depth-Anything-V2-Large" in out and "--depth-model" in out  # the depth model too
    with pytest.raises(ModelNotFound, match="hf download lllyasviel/control_v11f1p_sd15_depth config.json"):
        DepthGenerator.from_pretrained("lllyasviel/control_v11f1p_sd15_depth", str(world["base"]))


def test_repo_ids_read_from_the_hf_cache_offline(world: dict[str, Any], tmp_path: Path) -> None:
    from huggingface_hub import constants

    cache = Path(constants.HF_HUB_CACHE)
    put_in_hf_cache(cache, "tester/tiny-controlnet-depth",
                    {p.name: p for p in world["cn"].iterdir()})
    put_in_hf_cache(cache, "tester/tiny-sd", {str(p.relative_to(world["base"])): p
                                              for p in world["base"].rglob("*") if p.is_file() and "_tok" not in p.parts})
    res = run(str(world["room"]), "--prompt", PROMPT, "--out", str(tmp_path / "g"), "--controlnet",
              "tester/tiny-controlnet-depth", "--base", "tester/tiny-sd", "--depth-model", str(world["teacher"]), *FAST)
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "g" / "room_generate.json").read_text())
    assert meta["controlnet"] == {"name": "tester/tiny-controlnet-depth", "kind": "repo", "path": None,
                                  "repo_id": "tester/tiny-controlnet-depth"}
    assert meta["base"]["repo_id"] == "tester/tiny-sd"


def test_readme_generate_command_runs_offline_on_stand_ins(world: dict[str, Any], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's first generate command, with the default ControlNet (Depth Anything's single file) and the
    default base (SD 1.5) resolved by their real names from a Hugging Face cache that holds tiny random
    stand-ins in the published layouts. Substituted: the photo, the output folder, and what this machine lacks
    (a GPU, the da2-large weights); appended: fewer steps and a smaller size."""
    import re
    import shlex

    from huggingface_hub import constants

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    line = next(c for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S) for c in block.splitlines()
                if c.startswith("depthany generate room.jpg"))
    swap = {"room.jpg": str(world["room"]), "gen/": str(tmp_path / "gen"), "da2-large": str(world["teacher"]),
            "cuda": "cpu", "fp16": "fp32"}
    args = [swap.get(w, w) for w in shlex.split(line.split(" #")[0])[2:]]
    assert "--controlnet" not in args and "--base" not in args  # the defaults are what is exercised
    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    put_in_hf_cache(cache, "LiheYoung/Depth-Anything",
                    {"checkpoints_controlnet/diffusion_pytorch_model.safetensors": world["single"]}, repo_type="space")
    put_in_hf_cache(cache, "stable-diffusion-v1-5/stable-diffusion-v1-5",
                    {str(p.relative_to(world["base"])): p for p in world["base"].rglob("*")
                     if p.is_file() and "_tok" not in p.parts})
    res = run(*args, "--steps", "2", "--resolution", "64")
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "gen" / "room_generate.json").read_text())
    assert meta["controlnet"]["name"] == "depth-anything" and meta["controlnet"]["kind"] == "file"
    assert meta["base"]["repo_id"] == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert meta["prompt"] == "a cosy wooden cabin interior, warm evening light"
    assert (tmp_path / "gen" / "room_gen0.png").exists()
