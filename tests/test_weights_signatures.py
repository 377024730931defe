"""Weights formats are recognised by their real signatures, never by the file name; anything else is "not a
recognised weights file" naming the file, and a foreign format is named only when its own signature says so."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import tiny_spec
from depthany.cli.main import cli
from depthany.weights import WeightsError, read_checkpoint, save_weights
from depthany.weights.formats import describe_foreign, looks_like_onnx, sniff
from weights_helpers import random_state, tensors_equal

TINY = tiny_spec()


@pytest.fixture(scope="module")
def tiny_sd() -> dict[str, torch.Tensor]:
    return random_state(TINY.arch, seed=3)


def _junk(path: Path, head: bytes = b"", n: int = 4096, seed: int = 0) -> Path:
    path.write_bytes(head + np.random.default_rng(seed).bytes(n))
    return path


def _refused(path: Path, what: str) -> None:
    with pytest.raises(WeightsError) as e:
        read_checkpoint(path)
    assert str(e.value).startswith(f"{path}: not a recognised weights file ({what})"), str(e.value)


# ------------------------------------------------------------------------------------- weights formats


def test_legacy_torch_save_is_recognised_at_every_pickle_protocol(tmp_path, tiny_sd) -> None:
    """The legacy format starts with the pickled torch magic number (protocol 4+ puts a FRAME before it).
    torch.load(weights_only=True) reads protocol 2 (torch.save's default) but not FRAMEs: that gets its own
    message, not "refused: could run code"."""
    for protocol in (2, 3, 4, 5):
        p = tmp_path / f"legacy{protocol}.pth"
        torch.save(tiny_sd, p, _use_new_zipfile_serialization=False, pickle_protocol=protocol)
        assert sniff(p) == "torch-legacy", protocol
    assert tensors_equal(read_checkpoint(tmp_path / "legacy2.pth").state_dict, tiny_sd)
    with pytest.raises(WeightsError, match=r"legacy4\.pth: a legacy \(non-zip\) torch.save file written with pickle "
                                           r"protocol 4 or 5"):
        read_checkpoint(tmp_path / "legacy4.pth")


def test_zip_and_safetensors_are_read_whatever_they_are_called(tmp_path, tiny_sd) -> None:
    z = save_weights(tiny_sd, TINY, tmp_path / "official.pth", "official")
    st = save_weights(tiny_sd, TINY, tmp_path / "ours.safetensors", "depthany")
    assert (sniff(z), sniff(st)) == ("torch-zip", "safetensors")
    for src, name in ((z, "swapped.safetensors"), (st, "swapped.pth")):  # the name never decides
        dst = tmp_path / name
        dst.write_bytes(src.read_bytes())
        assert tensors_equal(read_checkpoint(dst).state_dict, tiny_sd)


# ------------------------------------------------------------------------------------ everything else


def test_random_bytes_are_not_recognised_and_not_called_onnx(tmp_path) -> None:
    """The old reader called any file starting with 0x08 "an ONNX/protobuf file" (a protobuf varint key)."""
    _refused(_junk(tmp_path / "junk.safetensors"), "unknown format")
    _refused(_junk(tmp_path / "starts_08.safetensors", b"\x08", seed=1), "unknown format")
    _refused(_junk(tmp_path / "starts_brace.pth", b"{", seed=2), "unknown format")
    rng = np.random.default_rng(7)
    heads = [rng.bytes(64) for _ in range(3000)] + [b"\x08" + rng.bytes(63) for _ in range(3000)]
    files = [h + rng.bytes(512) for h in heads]
    named = [d[:64] for d in files if describe_foreign(d[:64], len(d), d[-1:], io.BytesIO(d)) != "unknown format"]
    assert named == []


def test_real_onnx_model_is_named(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    for i, model in enumerate((helper.make_model(graph), helper.make_model(graph, producer_name="pytorch"))):
        p = tmp_path / f"model{i}.safetensors"
        onnx.save(model, str(p))
        _refused(p, "an ONNX model")
    data = p.read_bytes()
    assert looks_like_onnx(io.BytesIO(data), len(data))
    assert not looks_like_onnx(io.BytesIO(data[:-1]), len(data) - 1)  # the fields no longer tile the file
    assert not looks_like_onnx(io.BytesIO(data + b"\x00"), len(data) + 1)


def _torchscript(path: Path) -> Path:
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    return path


def _zip_without_pickle(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("weights/readme.txt", "no pickle here")
    return path


def _npy(path: Path) -> Path:
    with open(path, "wb") as f:
        np.save(f, np.zeros((3, 4), np.float32))
    return path


def _png(path: Path) -> Path:
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path, format="PNG")
    return path


def _webp(path: Path) -> Path:
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path, format="WEBP")
    return path


FOREIGN = {
    "a TorchScript archive: torch.jit.save, not torch.save of a state dict": _torchscript,
    "a ZIP archive without torch.save's data.pkl": _zip_without_pickle,
    "a Python pickle that torch.save did not write": lambda p: p.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, 4)),
    "a NumPy .npy array": _npy,
    "a PNG image": _png,
    "a WebP image": _webp,
    "a gzip archive": lambda p: p.write_bytes(gzip.compress(b"weights?")),
    "a JSON/text file": lambda p: p.write_text(json.dumps({"encoder": "vits", "features": 64})),
    "a text file": lambda p: p.write_text("Übersicht: weights moved to the Hub\n"),
    "a Git LFS pointer, not the weights it points to: git lfs pull": lambda p: p.write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "ab" * 32 + "\nsize 99171264\n"),
}


@pytest.mark.parametrize("what", list(FOREIGN))
def test_other_formats_are_named_by_their_signature(tmp_path, what) -> None:
    p = tmp_path / "model.safetensors"
    FOREIGN[what](p)
    _refused(p, what)


def test_cut_off_zip_archives(tmp_path, tiny_sd) -> None:
    """A torch.save archive cut before its central directory is still a (truncated) checkpoint; another
    cut-off ZIP is not a weights file."""
    full = save_weights(tiny_sd, TINY, tmp_path / "full.pth", "official").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(full[: len(full) // 3])
    with pytest.raises(WeightsError, match=r"cut\.pth: not a readable PyTorch checkpoint \(corrupt or truncated"):
        read_checkpoint(cut)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes/a.txt", "x" * 1000)
    other = tmp_path / "other.pth"
    other.write_bytes(buf.getvalue()[:200])
    _refused(other, "a truncated or corrupt ZIP archive")


def test_predict_with_junk_weights_exits_2_naming_the_file(tmp_path) -> None:
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(img)
    junk = _junk(tmp_path / "junk.safetensors", b"\x08", seed=4)
    res = CliRunner().invoke(cli, ["predict", str(img), "--weights", str(junk), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert f"{junk}: not a recognised weights file (unknown format)" in res.stderr
    assert "ONNX" not in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
