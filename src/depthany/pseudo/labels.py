"""The pseudo-label sample format, and random-access reading of a finished label folder for training.

Each output shard ``OUT/<name>.tar`` holds, per image key, two members:

* ``<key>.disp.npy``: the teacher's raw output as an (h, w) float16 ``.npy``, at the network resolution (the
  image resized so the short side is the input size, both sides multiples of 14), not at the image size. For
  relative teachers this is affine-invariant disparity; for metric teachers 1 / depth (1/m). Values are
  divided by ``scale`` (a power of two, normally 1) when they would overflow float16.
* ``<key>.json``: ``{"key", "teacher", "weights", "kind": "disparity", "input_size", "net_size": [h, w],
  "image_size": [H, W], "scale", "min", "max", "src"}`` where ``src`` locates the image:
  ``{"type": "file", "path"}`` or ``{"type": "tar", "path", "member", "offset", "size"}``.

The network resolution keeps labels small (a 1500 x 2250 SA-1B image gets a 518 x 770 label, 0.8 MB instead of
6.8 MB) and is what the network actually resolved; training resamples labels with its crops anyway.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .plan import MANIFEST, read_manifest
from .shards import ShardError, load_index, read_member

DISP_EXT, META_EXT = "disp.npy", "json"
FP16_SAFE = 32768.0  # keep stored values below this (float16 max is 65504)


class LabelError(ValueError):
    """A label folder or sample is missing, incomplete or malformed; the message names it."""


def encode_label(disp: np.ndarray, meta: dict[str, Any]) -> dict[str, bytes]:
    """One sample's members: (h, w) float disparity -> ``{"disp.npy": float16 npy, "json": metadata}``.

    Adds ``scale``, ``min`` and ``max`` (of the float32 values, before scaling) to the metadata.

    Raises:
        ValueError: the map is not 2-D or holds non-finite values.
    """
    d = np.asarray(disp, dtype=np.float32)
    if d.ndim != 2:
        raise ValueError(f"disparity must be (h, w), got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("teacher output holds non-finite values")
    peak = float(np.abs(d).max()) if d.size else 0.0
    scale = 1.0 if peak < FP16_SAFE else float(2 ** math.ceil(math.log2(peak / FP16_SAFE)))
    buf = io.BytesIO()
    np.save(buf, (d / scale).astype(np.float16), allow_pickle=False)
    info = {**meta, "scale": scale, "min": float(d.min()) if d.size else 0.0, "max": float(d.max()) if d.size else 0.0}
    return {DISP_EXT: buf.getvalue(), META_EXT: json.dumps(info, sort_keys=True).encode()}


def decode_disparity(data: bytes, scale: float = 1.0) -> np.ndarray:
    """``disp.npy`` bytes -> (h, w) float32 disparity (times ``scale``)."""
    arr = np.load(io.BytesIO(data), allow_pickle=False)
    return arr.astype(np.float32) * np.float32(scale)


def read_image_bytes(src: dict[str, Any]) -> bytes:
    """The encoded image a label's ``src`` points at (a file, or a member range of a tar shard).

    Raises:
        LabelError: the image is gone or the source type is unknown.
    """
    try:
        if src.get("type") == "file":
            return Path(src["path"]).read_bytes()
        if src.get("type") == "tar":
            return read_member(src["path"], int(src["offset"]), int(src["size"]))
    except (OSError, ShardError) as e:
        raise LabelError(f"image {src.get('path')}: {e}") from None
    raise LabelError(f"unknown image source {src!r}")


class LabelFolder:
    """Random access to the labels of a pseudo-label output folder (offsets from each shard's ``.idx.json``,
    or from its tar headers when that is missing).

    Samples are ordered by shard name (manifest order), then archive order, so every process builds the
    same index.

    Args:
        root: the ``depthany pseudo-label --out`` folder.
        allow_partial: accept a folder whose job has not finished (missing shards are skipped);
            by default an unfinished folder is an error.

    Raises:
        LabelError: no manifest, unfinished job, or unreadable shards; names the folder and what is missing.
    """

    def __init__(self, root: str | Path, allow_partial: bool = False) -> None:
        self.root = Path(root)
        manifest = read_manifest(self.root)
        if manifest is None:
            raise LabelError(f"{self.root}: no {MANIFEST}; not a depthany pseudo-label folder")
        self.manifest = manifest
        names = [s["name"] for s in manifest["shards"]]
        missing = [n for n in names if not (self.root / f"{n}.tar").is_file()]
        if missing and not allow_partial:
            raise LabelError(f"{self.root}: labelling is unfinished, {len(missing)} of {len(names)} shards missing "
                             f"(first: {missing[0]}.tar); rerun the same depthany pseudo-label command to finish")
        self.shards: list[str] = []
        rows: list[tuple[int, int, int, int, int]] = []
        for n in names:
            if n in missing:
                continue
            path = self.root / f"{n}.tar"
            try:
                samples = load_index(path)
            except ShardError as e:
                raise LabelError(str(e)) from None
            for s in samples:
                d, m = s.members.get(DISP_EXT), s.members.get(META_EXT)
                if d is None or m is None:
                    raise LabelError(f"{path}: sample {s.key!r} lacks {DISP_EXT} or {META_EXT}")
                rows.append((len(self.shards), d.offset, d.size, m.offset, m.size))
            self.shards.append(str(path))
        # one int64 row per sample (40 bytes): compact, and shared copy-on-write by DataLoader workers
        self.index = np.array(rows, dtype=np.int64).reshape(-1, 5)

    def __len__(self) -> int:
        return len(self.index)

    def meta(self, i: int) -> dict[str, Any]:
        """The JSON metadata of sample ``i``."""
        shard, _, _, off, size = self.index[i].tolist()
        return json.loads(read_member(self.shards[shard], off, size))  # type: ignore[no-any-return]

    def disparity(self, i: int, meta: dict[str, Any] | None = None) -> np.ndarray:
        """(h, w) float32 teacher disparity of sample ``i`` at the network resolution."""
        shard, off, size, _, _ = self.index[i].tolist()
        m = meta if meta is not None else self.meta(i)
        return decode_disparity(read_member(self.shards[shard], off, size), float(m.get("scale", 1.0)))

    def image_bytes(self, i: int, meta: dict[str, Any] | None = None) -> bytes:
        """The encoded image that sample ``i`` labels."""
        return read_image_bytes((meta if meta is not None else self.meta(i))["src"])
