"""``depthany controlnet-data``: (image, depth conditioning image, caption) triples in the layouts diffusers'
ControlNet training script reads, made with the pseudo-label machinery (depth once per image, resumable,
torchrun), and a tiny ControlNet trained on them through diffusers' own model code.

Oracles: ``datasets.load_dataset`` reads the folder exactly as ``examples/controlnet/train_controlnet.py`` does
(huggingface/diffusers, commit 58eb52c0803ea9af3abec60841c2a093bdf1f951: ``load_dataset(args.train_data_dir)``,
columns ``image`` / ``conditioning_image`` / ``text``); the conditioning images are compared with
``DepthPredictor`` + ``controlnet_image`` on the original photos; stored images with the original bytes.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from depthany import transforms
from depthany.cli.main import cli
from depthany.controlnet_data import (
    CaptionError,
    Captions,
    ControlNetDataJob,
    caption_from_name,
    controlnet_data,
    read_caption_file,
)
from depthany.io.image import read_image
from depthany.io.visual import controlnet_image
from depthany.predictor import DepthPredictor
from depthany.pseudo import LabelFolder, iter_shard
from depthany.pseudo.runner import KILL_ENV
from depthany.result import DepthResult
from pseudo_worlds import png_bytes, random_rgb, write_image_folder, write_tar_shards, write_teacher

QUIET = {"echo": lambda s: None}
SIZE = ["--input-size", "42", "--device", "cpu"]


def write_captioned_tar(path: Path, seed: int = 3) -> dict[str, str | None]:
    """A WebDataset shard whose samples carry a ``txt`` caption, a ``json`` caption, or none."""
    rng = np.random.default_rng(seed)
    captions: dict[str, str | None] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for i, kind in enumerate(("txt", "json", None)):
            key = f"shot/img{i:04d}"
            members = {"png": png_bytes(random_rgb(rng, 40, 56))}
            if kind == "txt":
                members["txt"] = b"a red house\n"
                captions[key] = "a red house"
            elif kind == "json":
                members["json"] = json.dumps({"caption": "a blue tree", "width": 56}).encode()
                captions[key] = "a blue tree"
            else:
                captions[key] = None
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return captions


def write_photos(folder: Path, seed: int = 4) -> Path:
    """Photos with and without sidecar captions, one in a sub-folder called test/ (a split word for
    ``datasets``), and a JPEG whose EXIF orientation (6) rotates it."""
    rng = np.random.default_rng(seed)
    (folder / "test").mkdir(parents=True)
    Image.fromarray(random_rgb(rng, 36, 48)).save(folder / "kitchen.png")
    (folder / "kitchen.txt").write_text("a cat in the kitchen\n")
    Image.fromarray(random_rgb(rng, 36, 48)).save(folder / "garden.png")
    Image.fromarray(random_rgb(rng, 48, 36)).save(folder / "test" / "attic.png")
    (folder / "test" / "attic.txt").write_text("an attic")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.fromarray(random_rgb(rng, 32, 44)).save(folder / "turned.jpg", exif=exif, quality=95)
    return folder


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("cndata")
    teacher = write_teacher(d / "teacher.safetensors")
    tar_captions = write_captioned_tar(d / "tars" / "eval-000000.tar")  # "eval": a split word for datasets
    photos = write_photos(d / "photos")
    job = ControlNetDataJob((str(d / "tars" / "eval-000000.tar"), str(photos)), d / "out", str(teacher),
                            layouts=("folder", "webdataset"), input_size=42, batch_size=3, workers=0, shard_size=3,
                            device="cpu")
    report = controlnet_data(job, **QUIET)
    return {"dir": d, "out": d / "out", "teacher": teacher, "report": report, "photos": photos,
            "tar": d / "tars" / "eval-000000.tar", "tar_captions": tar_captions}


def load_imagefolder(out: Path, cache: Path) -> Any:
    datasets = pytest.importorskip("datasets")
    return datasets.load_dataset(str(out / "imagefolder"), cache_dir=str(cache))  # as train_controlnet.py does


def source_bytes(row: dict[str, Any]) -> bytes:
    src = row["source"]
    if "#" in src:
        tar, member = src.split("#")
        with tarfile.open(tar) as t:
            f = t.extractfile(member)
            assert f is not None
            return f.read()
    return Path(src).read_bytes()


def test_layout_reads_as_the_training_script_reads_it(made: dict[str, Any], tmp_path: Path) -> None:
    report = made["report"]
    assert report.complete and report.samples == 7 and report.failed == 0 and report.shards_total == 3
    assert report.missing_captions == 3 and sorted(report.uncaptioned) == ["garden", "shot/img0002", "turned"]
    ds = load_imagefolder(made["out"], tmp_path / "hf")
    assert list(ds) == ["train"]  # the test/ folder and the eval-* shard did not become other splits
    train = ds["train"]
    assert train.num_rows == 7 and {"image", "conditioning_image", "text"} <= set(train.column_names)
    oracle = DepthPredictor.from_pretrained(weights=made["teacher"], input_size=42)
    labels = LabelFolder(made["out"] / "labels")
    by_key = {labels.meta(i)["key"]: i for i in range(len(labels))}
    captions = {"kitchen": "a cat in the kitchen", "garden": "", "test/attic": "an attic", "turned": "",
                **{k: v or "" for k, v in made["tar_captions"].items()}}
    keys = []
    for row in train:
        keys.append(row["key"])
        assert row["text"] == captions[row["key"]]
        image, cond = np.asarray(row["image"].convert("RGB")), np.asarray(row["conditioning_image"].convert("RGB"))
        original = source_bytes(row)
        upright = read_image(original).rgb
        assert image.shape == cond.shape == upright.shape
        np.testing.assert_array_equal(image, upright)
        if row["key"] != "turned":  # stored byte for byte
            stored = made["out"] / "imagefolder" / "train" / [r for r in _rows(made["out"]) if r["key"] == row["key"]][0]["file_name"]
            assert stored.read_bytes() == original
        # exactly the map of the stored label (the teacher's output, tests/test_pseudo_label.py), upsampled to the
        # image size as predict does for V2 models (align_corners=True)
        label = torch.from_numpy(labels.disparity(by_key[row["key"]]))[None]
        values = transforms.postprocess(label, upright.shape[:2], align_corners=True)[0].numpy()
        exact = controlnet_image(DepthResult(values, "relative_disparity", "", upright.shape[:2], label.shape[-2:]))
        np.testing.assert_array_equal(cond, exact)
        # and `depthany predict --format controlnet` within the float16 bound: values move by <= e = max|v| 2^-11,
        # a level by <= 3 * 255 e / range, plus the truncation to uint8 (one level when min ~ 0, as for real models)
        pred = oracle.predict(original)
        e = float(np.abs(pred.values).max()) * 2.0**-11
        tol = int(3 * 255 * e / float(pred.values.max() - pred.values.min())) + 1
        assert np.abs(cond.astype(int) - controlnet_image(pred)).max() <= tol
        assert (cond[..., 0] == cond[..., 2]).all() and cond.max() == 255 and cond.min() <= 1
    assert sorted(keys) == sorted(captions)
    # the rotated JPEG is stored upright, as PNG, so image and map stay aligned
    turned = [r for r in _rows(made["out"]) if r["key"] == "turned"][0]
    assert turned["file_name"].endswith(".png")
    assert np.asarray(Image.open(made["out"] / "imagefolder" / "train" / turned["file_name"])).shape == (44, 32, 3)


def _rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "imagefolder" / "train" / "metadata.jsonl").read_text().splitlines()]


def test_webdataset_shards_hold_the_same_triples(made: dict[str, Any], tmp_path: Path) -> None:
    rows = {(r["shard"], r["key"]): r for r in _rows(made["out"])}
    shards = sorted((made["out"] / "webdataset" / "train").glob("*.tar"))
    assert [p.name for p in shards] == ["000000.tar", "000001.tar", "000002.tar"]
    seen = 0
    for path in shards:
        for sample in iter_shard(path):
            info = json.loads(sample.members["json"].data or b"")
            row = rows[(info["shard"], info["key"])]
            image_ext = next(e for e in sample.members if e not in ("depth.png", "txt", "json"))
            folder = made["out"] / "imagefolder" / "train"
            assert sample.members[image_ext].data == (folder / row["file_name"]).read_bytes()
            assert sample.members["depth.png"].data == (folder / row["conditioning_image_file_name"]).read_bytes()
            assert (sample.members["txt"].data or b"").decode() == row["text"]
            seen += 1
    assert seen == 7
    datasets = pytest.importorskip("datasets")
    wds = datasets.load_dataset("webdataset", data_dir=str(made["out"] / "webdataset"), cache_dir=str(tmp_path))
    assert list(wds) == ["train"] and wds["train"].num_rows == 7 and "depth.png" in wds["train"].column_names


def test_caption_files_and_names(tmp_path: Path) -> None:
    (tmp_path / "caps.txt").write_text("# name<TAB>caption\nsub/a.jpg\ta house\nb\ta tree\n\n")
    assert read_caption_file(tmp_path / "caps.txt") == {"sub/a.jpg": "a house", "b": "a tree"}
    (tmp_path / "caps.csv").write_text("file_name,text\nsub/a.jpg,\"a house, red\"\n")
    assert read_caption_file(tmp_path / "caps.csv") == {"sub/a.jpg": "a house, red"}
    (tmp_path / "caps.json").write_text(json.dumps({"a.jpg": "one", "c.png": ["two", "three"]}))
    assert read_caption_file(tmp_path / "caps.json") == {"a.jpg": "one", "c.png": ["two", "three"]}
    (tmp_path / "list.json").write_text(json.dumps([{"image": "./a.jpg", "caption": " one "}]))
    assert read_caption_file(tmp_path / "list.json") == {"a.jpg": "one"}
    (tmp_path / "meta.jsonl").write_text('{"file_name": "sub/a.jpg", "prompt": "p"}\n{"file_name": "x", "text": ""}\n')
    assert read_caption_file(tmp_path / "meta.jsonl") == {"sub/a.jpg": "p"}  # empty captions count as missing
    (tmp_path / "bad.txt").write_text("a.jpg no tab here\n")
    with pytest.raises(CaptionError, match=r"bad.txt:1: expected NAME<TAB>CAPTION"):
        read_caption_file(tmp_path / "bad.txt")
    with pytest.raises(CaptionError, match="caption files are"):
        read_caption_file(tmp_path / "caps.yaml")

    (tmp_path / "sub").mkdir()
    caps = Captions(str(tmp_path / "caps.txt"))
    assert caps.for_file(tmp_path / "sub" / "a.jpg") == "a house"  # relative to the caption file
    assert caps.for_file(tmp_path / "elsewhere" / "b.png") == "a tree"  # by stem
    assert caps.for_file(tmp_path / "c.png") is None
    assert caption_from_name("red_brick-house.2024.jpg") == "red brick house 2024"
    assert Captions("filename").for_tar("x.tar", "shots/a_cat", "shots/a_cat.jpg") == "a cat"


def test_killed_run_resumes_and_labels_each_image_once(tmp_path: Path) -> None:
    teacher = write_teacher(tmp_path / "teacher.safetensors")
    write_tar_shards(tmp_path / "tars", 3, 3)
    imgs = write_image_folder(tmp_path / "imgs", 3)
    out = tmp_path / "out"
    args = ["controlnet-data", str(tmp_path / "tars" / "train-{000000..000002}.tar"), str(imgs), "--out", str(out),
            "--model", str(teacher), "--batch-size", "2", "--workers", "0", "--shard-size", "2", *SIZE]
    env = {**os.environ, KILL_ENV: "5", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "depthany", *args], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]  # killed while labelling
    assert not (out / "imagefolder" / "train" / "metadata.jsonl").exists()
    labelled_before = sum(len(list(iter_shard(p))) for p in (out / "labels").glob("*.tar"))

    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["complete"] and report["samples"] == 12
    keys = [s.key for p in sorted((out / "labels").glob("*.tar")) for s in iter_shard(p)]
    assert len(keys) == len(set(keys)) == 12  # every image labelled exactly once
    rows = _rows(out)
    assert len(rows) == 12 and len({(r["shard"], r["key"]) for r in rows}) == 12
    assert "already finished" in res.output and labelled_before > 0

    # a conversion interrupted after labels: only the unfinished shard is converted again, nothing relabelled
    before = (out / "imagefolder" / "train" / "metadata.jsonl").read_text()
    (out / "parts" / "train-000001.json").unlink()
    (out / "imagefolder" / "train" / "metadata.jsonl").unlink()
    kept = out / "imagefolder" / "train" / rows[0]["file_name"]
    stamp = kept.stat().st_mtime_ns
    report2 = controlnet_data(ControlNetDataJob((str(tmp_path / "tars" / "train-{000000..000002}.tar"), str(imgs)),
                                                out, str(teacher), input_size=42, batch_size=2, workers=0,
                                                shard_size=2, device="cpu"), **QUIET)
    assert report2.complete and report2.labelled == 0
    assert (out / "imagefolder" / "train" / "metadata.jsonl").read_text() == before
    assert kept.stat().st_mtime_ns == stamp  # shard train-000000 was not rewritten

    changed = CliRunner().invoke(cli, [*args, "--captions", "filename"])
    assert changed.exit_code != 0 and "made with captions 'sidecar'" in changed.output


def test_unreadable_images_are_reported_and_the_rest_written(tmp_path: Path) -> None:
    imgs = write_image_folder(tmp_path / "imgs", 2)
    (imgs / "empty.png").write_bytes(b"")
    (imgs / "cut.png").write_bytes((imgs / "photo.000.png").read_bytes()[:60])
    report = controlnet_data(ControlNetDataJob((str(imgs),), tmp_path / "out", str(write_teacher(tmp_path / "t.safetensors")),
                                               input_size=42, workers=0, device="cpu"), **QUIET)
    assert report.complete and report.samples == 2 and report.label_failures == 2
    failures = json.loads((tmp_path / "out" / "labels" / "files-000000.failures.json").read_text())
    assert sorted(f["key"] for f in failures) == ["cut", "empty"]
    assert sorted(r["key"] for r in _rows(tmp_path / "out")) == ["photo_000", "photo_001"]


def test_output_inside_an_input_folder_is_refused(tmp_path: Path) -> None:
    imgs = write_image_folder(tmp_path / "imgs", 2)
    res = CliRunner().invoke(cli, ["controlnet-data", str(imgs), "--out", str(imgs / "cn"), *SIZE])
    assert res.exit_code != 0 and "is inside the input folder" in res.output
    res = CliRunner().invoke(cli, ["controlnet-data", str(imgs), "--out", str(tmp_path / "o"), "--layout", "parquet"])
    assert res.exit_code != 0 and "layouts must be some of folder, webdataset" in res.output


@pytest.mark.dist
def test_torchrun_makes_each_sample_once(tmp_path: Path) -> None:
    teacher = write_teacher(tmp_path / "teacher.safetensors")
    write_tar_shards(tmp_path / "tars", 3, 2)
    imgs = write_image_folder(tmp_path / "imgs", 3)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "depthany",
           "controlnet-data", str(tmp_path / "tars" / "*.tar"), str(imgs), "--out", str(out), "--model", str(teacher),
           "--batch-size", "2", "--workers", "1", "--shard-size", "2", "--layout", "folder,webdataset", *SIZE]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _rows(out)
    assert len(rows) == 9 and len({(r["shard"], r["key"]) for r in rows}) == 9
    assert json.loads((out / "labels" / "report.json").read_text())["world"] == 2
    assert len(list((out / "webdataset" / "train").glob("*.tar"))) == 5


# ------------------------------------------------------------------------------------------ training


def train_transform(image: Image.Image, resolution: int, normalize: bool) -> torch.Tensor:
    """train_controlnet.py's transforms without torchvision: Resize(resolution, BILINEAR) (short side), then
    CenterCrop(resolution), ToTensor, and Normalize([0.5], [0.5]) for the target image."""
    im = image.convert("RGB")
    w, h = im.size
    size = (resolution, int(resolution * h / w)) if w <= h else (int(resolution * w / h), resolution)
    im = im.resize(size, Image.BILINEAR)
    w, h = im.size
    top, left = int(round((h - resolution) / 2.0)), int(round((w - resolution) / 2.0))
    x = torch.from_numpy(np.asarray(im.crop((left, top, left + resolution, top + resolution)), np.float32) / 255.0)
    x = x.permute(2, 0, 1)
    return (x - 0.5) / 0.5 if normalize else x


def test_a_tiny_controlnet_learns_from_the_data(made: dict[str, Any], tmp_path: Path) -> None:
    """A few steps of train_controlnet.py's loop (epsilon target, frozen UNet/VAE/text encoder, AdamW on the
    ControlNet) through diffusers' own models: the loss on a fixed set of noises and timesteps goes down."""
    pytest.importorskip("diffusers")
    import torch.nn.functional as F
    from diffusers import AutoencoderKL, ControlNetModel, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from generate_worlds import write_sd_base

    torch.set_num_threads(1)
    base = write_sd_base(tmp_path / "base")
    unet = UNet2DConditionModel.from_pretrained(base / "unet")
    vae = AutoencoderKL.from_pretrained(base / "vae")
    text = CLIPTextModel.from_pretrained(base / "text_encoder")
    tok = CLIPTokenizer.from_pretrained(base / "tokenizer")
    sched = DDPMScheduler.from_pretrained(base / "scheduler")
    for m in (unet, vae, text):
        m.requires_grad_(False)
    torch.manual_seed(0)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8, 8, 16)).train()

    train = load_imagefolder(made["out"], tmp_path / "hf")["train"]
    pixels = torch.stack([train_transform(r["image"], 32, True) for r in train])
    cond = torch.stack([train_transform(r["conditioning_image"], 32, False) for r in train])
    ids = tok(list(train["text"]), max_length=tok.model_max_length, padding="max_length", truncation=True,
              return_tensors="pt").input_ids
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.sample(generator=torch.Generator().manual_seed(0))
        latents = latents * vae.config.scaling_factor
        hidden = text(ids, return_dict=False)[0]

    def loss(noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        noisy = sched.add_noise(latents, noise, t)
        down, mid = controlnet(noisy, t, encoder_hidden_states=hidden, controlnet_cond=cond, return_dict=False)
        pred = unet(noisy, t, encoder_hidden_states=hidden, down_block_additional_residuals=down,
                    mid_block_additional_residual=mid, return_dict=False)[0]
        return F.mse_loss(pred.float(), noise.float())

    g = torch.Generator().manual_seed(1)

    def draw() -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.randn(latents.shape, generator=g),
                torch.randint(0, sched.config.num_train_timesteps, (len(latents),), generator=g))

    held = [draw() for _ in range(2)]

    def held_loss() -> float:
        with torch.no_grad():
            return float(np.mean([loss(n, t).item() for n, t in held]))

    opt = torch.optim.AdamW(controlnet.parameters(), lr=3e-3)
    start = held_loss()
    for _ in range(15):
        value = loss(*draw())
        opt.zero_grad()
        value.backward()
        torch.nn.utils.clip_grad_norm_(controlnet.parameters(), 1.0)
        opt.step()
    end = held_loss()
    assert end < 0.9 * start, (start, end)
