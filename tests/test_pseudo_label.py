"""``depthany pseudo-label``: labels equal the teacher's output, one shard per input shard, bad images reported,
and a run killed midway resumes so that every image is labelled exactly once (1 process and torchrun)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from depthany.cli.main import cli
from depthany.predictor import DepthPredictor
from depthany.pseudo import LabelFolder, LabelJob, PlanError, iter_shard, pseudo_label
from depthany.pseudo.runner import KILL_ENV
from pseudo_worlds import write_image_folder, write_tar_shards, write_teacher

QUIET = {"echo": lambda s: None}


def all_labels(out: Path) -> dict[str, list[str]]:
    """shard name -> keys in it (finished shards only)."""
    return {p.stem: [s.key for s in iter_shard(p)] for p in sorted(out.glob("*.tar"))}


def test_labels_are_the_teachers_output(tmp_path: Path) -> None:
    teacher = write_teacher(tmp_path / "teacher.safetensors")
    tars = write_tar_shards(tmp_path / "tars", 2, 3)
    imgs = write_image_folder(tmp_path / "imgs", 3)
    job = LabelJob((str(tmp_path / "tars" / "*.tar"), str(imgs)), tmp_path / "out", str(teacher), input_size=42,
                   batch_size=2, workers=1, shard_size=2, device="cpu")
    report = pseudo_label(job, **QUIET)
    assert (report.shards_total, report.shards_done, report.images, report.failed) == (4, 4, 9, 0)
    assert report.images_per_s > 0 and report.collection_images == pytest.approx(9.0)
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["images"] == 9
    labels = all_labels(tmp_path / "out")
    assert sorted(labels) == ["files-000000", "files-000001", "train-000000", "train-000001"]
    assert sorted(labels["train-000001"]) == [f"train001/img{i:04d}" for i in range(3)]  # order: by batch
    assert sorted(labels["files-000000"] + labels["files-000001"]) == ["photo_000", "photo_001", "photo_002"]

    assert sorted(p.name for p in (tmp_path / "out").glob("*.idx.json")) == [f"{n}.idx.json" for n in sorted(labels)]
    folder = LabelFolder(tmp_path / "out")  # offsets from the .idx.json files
    assert len(folder) == 9
    oracle = DepthPredictor.from_pretrained(weights=teacher, device="cpu", input_size=42)
    for i in range(len(folder)):
        meta = folder.meta(i)
        assert meta["teacher"] == "test-tiny-v2-relative" and meta["input_size"] == 42 and meta["kind"] == "disparity"
        image = folder.image_bytes(i, meta)
        loaded, prep = oracle.prepare(image)
        ref = oracle.infer_tensor(prep.x)[0].numpy()
        got = folder.disparity(i, meta)
        assert got.shape == ref.shape == tuple(meta["net_size"]) and list(loaded.size) == meta["image_size"]
        assert np.allclose(got, ref, rtol=2e-3, atol=1e-4)  # float16 storage
        assert meta["min"] == pytest.approx(float(ref.min()), rel=1e-4)
    src = folder.meta(0)["src"]
    assert src["type"] == "tar" and Path(src["path"]) == tars[0].resolve()
    with tarfile.open(tars[0]) as tar:  # the recorded byte range is the image member
        member = tar.getmember(src["member"])
        assert member.offset_data == src["offset"] and member.size == src["size"]

    # a rerun finds everything done; another input size is refused (labels must not mix)
    again = pseudo_label(job, **QUIET)
    assert (again.shards_skipped, again.shards_done, again.images) == (4, 0, 0)
    with pytest.raises(PlanError, match="input_size 42.*56"):
        pseudo_label(LabelJob(job.inputs, job.out, job.teacher, 56, device="cpu"), **QUIET)


def test_unreadable_images_are_listed_not_fatal(tmp_path: Path) -> None:
    teacher = write_teacher(tmp_path / "teacher.safetensors")
    (good,) = write_tar_shards(tmp_path, 1, 2, prefix="mixed")
    path = tmp_path / "mixed-000000.tar"
    with tarfile.open(good) as src:
        members = [(m, src.extractfile(m).read()) for m in src.getmembers()]  # type: ignore[union-attr]
    with tarfile.open(path, "w") as tar:
        for m, data in members:
            tar.addfile(m, io.BytesIO(data))
        for name, data in (("bad.png", b"\x89PNG\r\n\x1a\n garbage"), ("noimage.txt", b"hello")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    report = pseudo_label(LabelJob((str(path),), tmp_path / "out", str(teacher), 42, workers=0, device="cpu"),
                          **QUIET)
    assert (report.images, report.failed, report.shards_done) == (2, 2, 1)
    fails = json.loads((tmp_path / "out" / "mixed-000000.failures.json").read_text())
    assert [f["key"] for f in fails] == ["bad", "noimage"]
    assert "ImageReadError" in fails[0]["error"] and "no image member" in fails[1]["error"]
    assert all_labels(tmp_path / "out")["mixed-000000"] == ["mixed000/img0000", "mixed000/img0001"]


def test_killed_run_resumes_and_labels_every_image_exactly_once(tmp_path: Path) -> None:
    teacher = write_teacher(tmp_path / "teacher.safetensors")
    write_tar_shards(tmp_path / "tars", 4, 4)
    args = [str(tmp_path / "tars" / "train-{000000..000003}.tar"), "--out", str(tmp_path / "out"),
            "--teacher", str(teacher), "--input-size", "42", "--batch-size", "2", "--workers", "0", "--device", "cpu"]
    env = {**os.environ, KILL_ENV: "7", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "depthany", "pseudo-label", *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]  # killed after 7 images: shard 0 done, shard 1 half-written
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("*.tar")) == ["train-000000.tar"]
    partial = list(out.glob(".train-000001.tar.tmp-*"))
    assert len(partial) == 1 and partial[0].stat().st_size > 0
    with pytest.raises(Exception, match="unfinished, 3 of 4 shards missing"):
        LabelFolder(out)
    first = (out / "train-000000.tar").stat().st_mtime_ns

    result = CliRunner().invoke(cli, ["pseudo-label", *args])
    assert result.exit_code == 0, result.output
    assert "1 already finished" in result.output
    assert (out / "train-000000.tar").stat().st_mtime_ns == first  # finished shards are not redone
    assert not list(out.glob(".*.tmp-*"))
    labels = all_labels(out)
    keys = [k for ks in labels.values() for k in ks]
    expected = [f"train{s:03d}/img{i:04d}" for s in range(4) for i in range(4)]
    assert sorted(keys) == expected and len(keys) == len(set(keys))  # each image once
    assert json.loads((out / "report.json").read_text())["shards_skipped"] == 1
    assert len(LabelFolder(out)) == 16


@pytest.mark.dist
def test_torchrun_kill_and_resume_label_every_image_exactly_once(tmp_path: Path) -> None:
    teacher = write_teacher(tmp_path / "teacher.safetensors")
    write_tar_shards(tmp_path / "tars", 5, 3)
    write_image_folder(tmp_path / "imgs", 5)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "depthany",
           "pseudo-label", str(tmp_path / "tars" / "*.tar"), str(tmp_path / "imgs"), "--out", str(out),
           "--teacher", str(teacher), "--input-size", "42", "--batch-size", "2", "--workers", "2",
           "--shard-size", "2", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = subprocess.run(cmd, env={**env, KILL_ENV: "1:4"}, capture_output=True, text=True, timeout=300)
    assert killed.returncode != 0  # rank 1 died after 4 images; torchrun stops the job
    done_before = {p.name for p in out.glob("*.tar")}
    assert len(done_before) < 8  # 5 tar shards + 3 file shards; rank 1's 4 are not all done
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["world"] == 2 and report["shards_skipped"] == len(done_before)
    assert report["shards_done"] == 8 - len(done_before)
    keys = [k for ks in all_labels(out).values() for k in ks]
    expected = [f"train{s:03d}/img{i:04d}" for s in range(5) for i in range(3)] + [f"photo_{i:03d}" for i in range(5)]
    assert sorted(keys) == sorted(expected) and len(keys) == len(set(keys))
    assert not list(out.glob(".*.tmp-*"))


def test_fast_resize_is_close_to_the_exact_official_path() -> None:
    from depthany import transforms, zoo
    from depthany.pseudo.runner import fast_preprocess
    from pseudo_worlds import random_rgb

    rgb = random_rgb(np.random.default_rng(0), 300, 451)
    pre = zoo.V2_PRE
    exact = transforms.preprocess(rgb, pre, 98)[0]
    fast = fast_preprocess(rgb, pre, transforms.network_size(300, 451, 98))
    assert fast.shape == exact.shape == (3, 98, 154) and fast.dtype == torch.float32
    assert (fast - exact).abs().max().item() < 5e-3 and (fast - exact).abs().mean().item() < 5e-4


def test_the_input_budget_shrinks_strips_and_fails_too_thin_images(tmp_path: Path) -> None:
    from PIL import Image

    teacher = write_teacher(tmp_path / "teacher.safetensors")
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a_photo": (30, 40), "b_strip": (2, 600), "c_line": (1, 3000)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    job = LabelJob((str(folder),), tmp_path / "out", str(teacher), 42, workers=0, device="cpu", max_tokens=400)
    report = pseudo_label(job, **QUIET)
    assert (report.images, report.failed) == (2, 1)
    labels = LabelFolder(tmp_path / "out")
    metas = {labels.meta(i)["key"]: labels.meta(i) for i in range(len(labels))}
    assert metas["a_photo"]["net_size"] == [42, 56] and "input_budget" not in metas["a_photo"]
    # the strip: official 42 x 12600 (3 x 900 = 2700 tokens) is over 400; shrunk to 1 patch high, and the long
    # side is capped at max(round(600 / 14), 3) = 43 patches (never longer than the image): 14 x 602
    assert metas["b_strip"]["net_size"] == [14, 602] and metas["b_strip"]["input_budget"]["shrunk"] is True
    assert metas["b_strip"]["max_tokens"] == 400
    fails = json.loads(next((tmp_path / "out").glob("*.failures.json")).read_text())
    assert [f["key"] for f in fails] == ["c_line"] and "InputBudgetError" in fails[0]["error"]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["max_tokens"] == 400
