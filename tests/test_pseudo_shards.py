"""Tar shards (stdlib WebDataset), the labelling plan and manifest, and the label sample format."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from depthany.pseudo.labels import FP16_SAFE, decode_disparity, encode_label
from depthany.pseudo.plan import (
    PlanError,
    assign,
    check_manifest,
    expand_braces,
    is_finished,
    manifest_dict,
    output_path,
    plan_shards,
    remove_partial,
)
from depthany.pseudo.shards import (
    ShardError,
    ShardWriter,
    index_path,
    index_shard,
    iter_shard,
    load_index,
    read_index,
    read_member,
    split_name,
)
from pseudo_worlds import write_image_folder, write_tar_shards


def test_split_name_follows_webdataset() -> None:
    assert split_name("a/b/x.seg.png") == ("a/b/x", "seg.png")
    assert split_name("x.jpg") == ("x", "jpg")
    assert split_name("dir.v2/x.json") == ("dir.v2/x", "json")
    assert split_name("noext") == ("noext", "")


def test_writer_is_atomic_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "out" / "s-000.tar"
    w = ShardWriter(path)
    w.write("a/k1", {"disp.npy": b"123", "json": b"{}"})
    w.write("k2", {"json": b'{"x": 1}'})
    assert not path.exists() and w.tmp.exists()  # nothing looks finished before commit
    with pytest.raises(ShardError, match="twice"):
        w.write("k2", {"json": b"{}"})
    with pytest.raises(ShardError, match="invalid sample key"):
        w.write("has.dot", {"json": b"{}"})
    w.commit()
    assert path.exists() and not w.tmp.exists()
    samples = list(iter_shard(path))
    assert [s.key for s in samples] == ["a/k1", "k2"]
    assert samples[0].members["disp.npy"].data == b"123"
    index = index_shard(path)
    for s, i in zip(samples, index):
        for ext, m in s.members.items():
            assert i.members[ext].offset == m.offset and i.members[ext].data is None
            assert read_member(path, m.offset, m.size) == m.data

    w2 = ShardWriter(tmp_path / "out" / "s-001.tar")
    w2.write("k", {"json": b"{}"})
    w2.abort()
    assert not (tmp_path / "out" / "s-001.tar").exists() and not w2.tmp.exists()


def test_our_shards_read_back_with_the_webdataset_package(tmp_path: Path) -> None:
    wds = pytest.importorskip("webdataset")
    path = tmp_path / "s.tar"
    w = ShardWriter(path)
    for i in range(3):
        w.write(f"sub/img{i}", {"disp.npy": bytes([i]) * 5, "json": json.dumps({"i": i}).encode()})
    w.commit()
    got = list(wds.WebDataset(str(path), shardshuffle=False))
    assert [g["__key__"] for g in got] == ["sub/img0", "sub/img1", "sub/img2"]
    assert [json.loads(g["json"])["i"] for g in got] == [0, 1, 2] and got[2]["disp.npy"] == b"\x02" * 5


def test_broken_shards_are_reported_with_their_name(tmp_path: Path) -> None:
    (src,) = write_tar_shards(tmp_path, 1, 3)
    data = src.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:1500])
    with pytest.raises(ShardError, match="cut.tar"):
        list(iter_shard(cut))
    with pytest.raises(ShardError, match="cut.tar"):
        index_shard(cut)
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ShardError, match="junk.tar"):
        list(iter_shard(junk))
    with pytest.raises(ShardError, match="no such shard"):
        index_shard(tmp_path / "missing.tar")


def test_expand_braces() -> None:
    assert expand_braces("s-{000..002}.tar") == ["s-000.tar", "s-001.tar", "s-002.tar"]
    assert expand_braces("a{1..2}/b{08..10}.tar") == ["a1/b08.tar", "a1/b09.tar", "a1/b10.tar",
                                                       "a2/b08.tar", "a2/b09.tar", "a2/b10.tar"]
    assert expand_braces("plain.tar") == ["plain.tar"]
    with pytest.raises(PlanError, match="empty range"):
        expand_braces("x{5..3}.tar")


def test_plan_tar_and_file_shards(tmp_path: Path) -> None:
    tars = write_tar_shards(tmp_path / "tars", 3, 2)
    write_image_folder(tmp_path / "imgs", 5)
    shards = plan_shards([str(tmp_path / "tars" / "train-{000000..000001}.tar"), str(tmp_path / "tars/*2.tar"),
                          str(tmp_path / "imgs")], shard_size=2)
    assert [s.name for s in shards] == ["train-000000", "train-000001", "train-000002", "files-000000",
                                        "files-000001", "files-000002"]
    assert shards[0].tar == tars[0] and shards[3].files[0][0] == "photo_000"  # dots replaced in keys
    assert [len(s.files) for s in shards[3:]] == [2, 2, 1]
    assert [s.name for s in assign(shards, 1, 4)] == ["train-000001", "files-000002"]
    covered = [s.name for r in range(4) for s in assign(shards, r, 4)]
    assert sorted(covered) == sorted(s.name for s in shards)
    with pytest.raises(PlanError, match="matches no tar shard"):
        plan_shards([str(tmp_path / "nope-*.tar")])
    with pytest.raises(PlanError, match="no such tar shard"):
        plan_shards([str(tmp_path / "nope.tar")])
    (tmp_path / "other").mkdir()
    os.link(tars[0], tmp_path / "other" / "train-000000.tar")
    with pytest.raises(PlanError, match="both write train-000000.tar"):
        plan_shards([str(tars[0]), str(tmp_path / "other" / "train-000000.tar")])
    with pytest.raises(PlanError, match="no images found|no image"):
        plan_shards([str(tmp_path / "other")])


def test_finished_partial_and_manifest_checks(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imgs", 3)
    shards = plan_shards([str(tmp_path / "imgs")], shard_size=2)
    out = tmp_path / "labels"
    w = ShardWriter(output_path(out, shards[0]))
    w.write("k", {"json": b"{}"})
    assert not is_finished(out, shards[0])
    assert remove_partial(out, shards[0]) == 1 and not w.tmp.exists()
    w = ShardWriter(output_path(out, shards[0]))
    w.commit()
    assert is_finished(out, shards[0]) and remove_partial(out, shards[0]) == 0

    a = manifest_dict(shards, "teacher-a", "/w.safetensors", 42)
    check_manifest(a, manifest_dict(shards, "teacher-a", "/elsewhere/w.safetensors", 42), out)
    with pytest.raises(PlanError, match="teacher 'teacher-a'.*'teacher-b'"):
        check_manifest(a, manifest_dict(shards, "teacher-b", None, 42), out)
    with pytest.raises(PlanError, match="input_size"):
        check_manifest(a, manifest_dict(shards, "teacher-a", None, 56), out)
    budgeted = manifest_dict(shards, "teacher-a", None, 42, max_tokens=10952)
    check_manifest(a, budgeted, out)  # a folder started before the budget was recorded: not checked for it
    check_manifest(budgeted, manifest_dict(shards, "teacher-a", None, 42, max_tokens=10952), out)
    with pytest.raises(PlanError, match="max_tokens 10952, this run asks for 2000"):
        check_manifest(budgeted, manifest_dict(shards, "teacher-a", None, 42, max_tokens=2000), out)
    write_image_folder(tmp_path / "imgs2", 1, seed=7)  # a folder that grew: file shards would shift
    grown = plan_shards([str(tmp_path / "imgs"), str(tmp_path / "imgs2")], shard_size=2)
    with pytest.raises(PlanError, match="shard files-00000.*the inputs changed"):
        check_manifest(a, manifest_dict(grown, "teacher-a", None, 42), out)


def test_label_encoding_round_trip_and_overflow_scaling() -> None:
    d = np.linspace(0.0, 10.0, 12, dtype=np.float32).reshape(3, 4)
    files = encode_label(d, {"key": "k"})
    meta = json.loads(files["json"])
    assert meta["scale"] == 1.0 and meta["min"] == 0.0 and meta["max"] == 10.0 and meta["key"] == "k"
    arr = np.load(io.BytesIO(files["disp.npy"]))
    assert arr.dtype == np.float16 and arr.shape == (3, 4)
    assert np.allclose(decode_disparity(files["disp.npy"]), d, rtol=1e-3)
    big = d * 20000.0  # up to 2e5: would overflow float16
    files = encode_label(big, {})
    meta = json.loads(files["json"])
    assert meta["scale"] == 8.0 and big.max() / meta["scale"] < FP16_SAFE
    back = decode_disparity(files["disp.npy"], meta["scale"])
    assert np.isfinite(back).all() and np.allclose(back, big, rtol=1e-3)
    with pytest.raises(ValueError, match="non-finite"):
        encode_label(np.array([[1.0, np.nan]]), {})
    with pytest.raises(ValueError, match="shape"):
        encode_label(np.zeros(3), {})


def test_tar_reader_skips_directories(tmp_path: Path) -> None:
    path = tmp_path / "d.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("dir")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        info = tarfile.TarInfo("dir/x.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    assert [s.key for s in iter_shard(path)] == ["dir/x"]


def test_index_file_matches_the_tar_headers(tmp_path: Path) -> None:
    path = tmp_path / "s.tar"
    w = ShardWriter(path, index=True)
    sizes = [0, 1, 511, 512, 513, 3000]  # block padding edge cases
    for i, n in enumerate(sizes):
        w.write(f"k{i}", {"disp.npy": bytes([i]) * n, "json": b"{}"})
    w.write("a/very/" + "long" * 40 + "/key", {"json": b"[1]"})  # a PAX header: longer than 100 characters
    assert not index_path(path).exists()
    w.commit()
    fast, scanned = read_index(path), index_shard(path)
    assert fast is not None and [s.key for s in fast] == [s.key for s in scanned]
    for a, b in zip(fast, scanned):
        assert {e: (m.offset, m.size) for e, m in a.members.items()} == {e: (m.offset, m.size) for e, m in b.members.items()}
    assert read_member(path, fast[5].members["disp.npy"].offset, 3000) == bytes([5]) * 3000
    path.write_bytes(path.read_bytes() + bytes(512))  # a tar that no longer matches its index: scanned instead
    assert read_index(path) is None and [s.key for s in load_index(path)] == [s.key for s in scanned]
