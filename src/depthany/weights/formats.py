"""Which kind of file a weights path holds, from the bytes' own signatures (never from the file name).

Weights formats, each recognised by its structure:

* **safetensors**: an 8-byte little-endian header length ``n`` followed by an ``n``-byte JSON object;
* **torch.save zip** (PyTorch >= 1.6 default): a ZIP archive whose pickle entry is ``<folder>/data.pkl`` (and
  that is not a TorchScript archive, which has ``constants.pkl`` and ``code/`` as well);
* **torch.save legacy**: a pickle (protocol 2-5) whose first object is torch's serialisation magic number
  ``0x1950a86a20f9469cfc6c``.

Everything else is "not a recognised weights file". When the bytes carry another format's real signature the
message names it (an ONNX model: a protobuf ``ModelProto`` whose fields, ``ir_version`` first, tile the whole
file; images, archives, NumPy, HDF5, Git LFS pointers and plain pickles by their magic bytes), so a user who
passed the wrong file learns what it is. Random bytes are called nothing.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO, Literal

from .errors import WeightsError

FileKind = Literal["torch-zip", "torch-legacy", "safetensors"]

TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER, the legacy format's first pickle
_PICKLE_LONG1_MAGIC = b"\x8a\x0a" + TORCH_MAGIC.to_bytes(10, "little")  # LONG1 opcode, 10 bytes, little-endian
_HEAD_BYTES = 64

# Other formats a wrong --weights file often is: (signature at offset 0, what to call it).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF"),
    (b"\x1f\x8b\x08", "a gzip archive"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras .h5?)"),
    (b"GGUF", "a GGUF (llama.cpp) file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"version https://git-lfs.github.com/spec/", "a Git LFS pointer, not the weights it points to: git lfs pull"),
)

# onnx.proto ModelProto: field number -> protobuf wire type (0 varint, 2 length-delimited).
_ONNX_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def sniff(path: Path) -> FileKind:
    """What kind of weights file ``path`` is, from its bytes.

    Raises:
        WeightsError: naming the file: empty, truncated inside a safetensors header, or "not a recognised
            weights file" (with the format it is, when its signature says).
    """
    size = path.stat().st_size
    if size == 0:
        raise WeightsError(f"{path}: file is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES)
        f.seek(size - 1)
        last = f.read(1)
        kind = _weights_kind(path, head, size)
        what = None if kind else describe_foreign(head, size, last, f)
    if kind:
        return kind
    raise WeightsError(f"{path}: not a recognised weights file ({what}); expected a PyTorch .pth/.bin "
                       "(torch.save) or a .safetensors file")


def _weights_kind(path: Path, head: bytes, size: int) -> FileKind | None:
    """The weights format ``head`` (the first bytes of ``path``) starts, or None."""
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path, head)
    if _is_torch_legacy(head):
        return "torch-legacy"
    if len(head) >= 9 and head[8:9] == b"{":
        n = int.from_bytes(head[:8], "little")
        if 0 < n <= size - 8:
            return "safetensors"
        if n > size - 8 and n < 100_000_000:  # safetensors caps its header at 100 MB
            raise WeightsError(f"{path}: truncated safetensors file (header says {n} bytes, file has {size})")
    return None


def _zip_kind(path: Path, head: bytes) -> FileKind:
    """A ZIP is a torch.save file when its pickle entry is ``<folder>/data.pkl``."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        # No central directory (cut off at the end): the first local entry still names the pickle, and
        # torch.load then reports the file as truncated.
        name_len = int.from_bytes(head[26:28], "little")
        first = head[30:30 + name_len]
        if first == b"data.pkl" or first.endswith(b"/data.pkl"):
            return "torch-zip"
        raise WeightsError(f"{path}: not a recognised weights file (a truncated or corrupt ZIP archive)") from None
    if any(n.endswith("constants.pkl") for n in names) and any("/code/" in n for n in names):
        raise WeightsError(f"{path}: not a recognised weights file (a TorchScript archive: torch.jit.save, not "
                           "torch.save of a state dict)")
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return "torch-zip"
    raise WeightsError(f"{path}: not a recognised weights file (a ZIP archive without torch.save's data.pkl)")


def _is_torch_legacy(head: bytes) -> bool:
    """Pickle protocol 2-5, an optional protocol-4+ FRAME, then the LONG1-encoded torch magic number."""
    if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= 5:
        return False
    body = head[2:]
    if body[:1] == b"\x95":  # FRAME opcode + 8-byte length
        body = body[9:]
    return body.startswith(_PICKLE_LONG1_MAGIC)


def describe_foreign(head: bytes, size: int, last: bytes = b"", f: BinaryIO | None = None) -> str:
    """What a non-weights file is, from its first bytes (``last``: its final byte; ``f``: the open file, for the
    ONNX check, which walks the whole message), or ``"unknown format"``."""
    for sig, name in _SIGNATURES:
        if head.startswith(sig):
            return name
    if head.startswith(b"RIFF") and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return {b"WEBP": "a WebP image", b"WAVE": "a WAV file", b"AVI ": "an AVI video"}[head[8:12]]
    if f is not None and head[:1] == b"\x08" and looks_like_onnx(f, size):
        return "an ONNX model"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5 and last == b".":  # PROTO ... STOP
        return "a Python pickle that torch.save did not write"
    if _is_text(head):
        return "a JSON/text file" if head.lstrip()[:1] in (b"{", b"[") else "a text file"
    return "unknown format"


def _varint(f: BinaryIO) -> int | None:
    """A protobuf base-128 varint from ``f``, or None if cut off or longer than 10 bytes."""
    value = 0
    for i in range(10):
        byte = f.read(1)
        if not byte:
            return None
        value |= (byte[0] & 0x7F) << (7 * i)
        if byte[0] < 0x80:
            return value
    return None


def looks_like_onnx(f: BinaryIO, size: int, max_fields: int = 10_000) -> bool:
    """True when the whole of ``f`` (``size`` bytes) parses as the top level of an ONNX ``ModelProto``.

    Serialisers write fields in number order, so a model starts with ``ir_version`` (field 1, a varint; IR
    versions are 1-20 so far); every field must be a ModelProto field with its declared wire type, the
    length-delimited ones must tile the file exactly to its end, and a ``graph`` (field 7) must be among them.
    Only field headers are read; the content in between is skipped.
    """
    f.seek(0)
    if _varint(f) != (1 << 3):
        return False
    ir = _varint(f)
    if ir is None or not 1 <= ir <= 20:
        return False
    seen = {1}
    for _ in range(max_fields):
        if f.tell() == size:
            return 7 in seen
        key = _varint(f)
        if key is None or _ONNX_MODEL_FIELDS.get(key >> 3) != key & 7:
            return False
        seen.add(key >> 3)
        value = _varint(f)
        if value is None:
            return False
        if key & 7 == 2:
            if f.tell() + value > size:
                return False
            f.seek(value, 1)
    return False


def _is_text(head: bytes) -> bool:
    """UTF-8 (a multi-byte character may be cut at the end) without control bytes other than tab/newlines."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:
            return False
        text = head[:e.start].decode("utf-8")
    return all(c >= " " or c in "\t\n\r" for c in text)
