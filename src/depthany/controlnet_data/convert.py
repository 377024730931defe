"""One finished pseudo-label shard -> ControlNet training samples (image, conditioning image, caption).

The depth map comes from the label shard (the depth model ran once per image, in ``depthany pseudo-label``):
the stored network-resolution disparity is resized to the image size with the model's own bilinear
post-processing and turned into depthany's ``controlnet`` map (per-image min..max of nearness to 0..255,
near = bright, 3 equal channels), the map ``depthany generate`` conditions on. Labels are stored as float16, so
a map can differ from ``depthany predict --format controlnet`` by one gray level at a few pixels.

The image is copied byte for byte, except when its EXIF orientation rotates it (or its format has no usual
suffix): then the upright pixels are stored as PNG, so image and map stay aligned whatever the reader does
with EXIF.

Stored names are numbers: shard ``<name>``, the ``s``-th in the manifest, and its ``n``-th sample become
``imagefolder/train/images/SSSSSS/NNNNNN.<ext>`` and ``imagefolder/train/conditioning_images/SSSSSS/NNNNNN.png``
(folder layout) and/or members ``NNNNNN.<ext>``, ``NNNNNN.depth.png``, ``NNNNNN.txt``, ``NNNNNN.json`` of
``webdataset/train/SSSSSS.tar`` (WebDataset layout). Numbers, because ``datasets`` assigns files to splits by
words in their paths: an input folder ``test/`` or a shard ``eval-000001.tar`` would otherwise become a test
split the training script never reads. The original shard, key and file are kept in the metadata
(``shard``, ``key``, ``source`` columns; the ``json`` member). Last, ``parts/<name>.json`` is written: the
shard's metadata rows, failures and uncaptioned keys. A shard whose part file exists is finished; anything
else is redone from the start.
"""

from __future__ import annotations

import io
import json
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from PIL import Image

from .. import transforms
from ..io.atomic import write_text_atomic
from ..io.image import IMAGE_SUFFIXES, read_image
from ..io.visual import controlnet_image
from ..pseudo.labels import DISP_EXT, META_EXT, decode_disparity, read_image_bytes
from ..pseudo.shards import ShardWriter, iter_shard
from ..result import DepthResult
from .captions import Captions

IMAGES, CONDITIONING = "images", "conditioning_images"
FOLDER, WDS, PARTS = Path("imagefolder") / "train", Path("webdataset") / "train", Path("parts")
LAYOUTS = ("folder", "webdataset")
_EXIF_ORIENTATION = 0x0112


def part_path(out: Path, name: str) -> Path:
    """The file that marks shard ``name`` as converted (and holds its rows)."""
    return out / PARTS / f"{name}.json"


def conditioning_from_label(disp: np.ndarray, image_size: tuple[int, int], align_corners: bool) -> np.ndarray:
    """(h, w) label disparity -> (H, W, 3) uint8 ControlNet map at the image size (near = bright)."""
    d = torch.from_numpy(np.ascontiguousarray(disp, dtype=np.float32))[None]
    values = transforms.postprocess(d, tuple(image_size), align_corners)[0].numpy()  # type: ignore[arg-type]
    result = DepthResult(values, "relative_disparity", "", (int(image_size[0]), int(image_size[1])),
                         (int(disp.shape[0]), int(disp.shape[1])))
    return controlnet_image(result)


def png_bytes(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def image_payload(src: dict[str, Any], image_size: tuple[int, int]) -> tuple[bytes, str]:
    """(encoded image, suffix without dot) to store for a label's source image.

    Raises:
        LabelError / ImageReadError / ValueError: the image is gone, unreadable, or not the size it was labelled at.
    """
    data = read_image_bytes(src)
    name = str(src.get("member") or src.get("path") or "")
    ext = PurePosixPath(name).suffix.lower().lstrip(".")
    ext = "jpg" if ext in ("jpeg", "jfif") else ext
    with Image.open(io.BytesIO(data)) as im:
        orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
        stored = (im.size[1], im.size[0])
    if orientation in (None, 1) and f".{ext}" in IMAGE_SUFFIXES:
        if stored != tuple(image_size):
            raise ValueError(f"{name}: image is {stored[0]}x{stored[1]}, labelled at {image_size[0]}x{image_size[1]}")
        return data, ext
    loaded = read_image(data)  # rotated upright (EXIF), as the depth model saw it
    if loaded.size != tuple(image_size):
        raise ValueError(f"{name}: image is {loaded.size}, labelled at {tuple(image_size)}")
    return png_bytes(loaded.rgb), "png"


def _source(src: dict[str, Any]) -> str:
    """``/photos/a.jpg`` or ``/shards/train-000001.tar#000123.jpg``."""
    return f"{src['path']}#{src['member']}" if src.get("type") == "tar" else str(src.get("path"))


def convert_shard(labels: Path, out: Path, name: str, index: int, captions: Captions, align_corners: bool,
                  layouts: tuple[str, ...]) -> dict[str, Any]:
    """Convert label shard ``labels/<name>.tar``, number ``index`` in the manifest; returns (and writes last, as
    ``parts/<name>.json``) its part: ``{"rows": [...], "failures": [...], "missing_captions": [...]}``."""
    folder = out / FOLDER
    shard_dir = f"{index:06d}"
    wds = ShardWriter(out / WDS / f"{shard_dir}.tar") if "webdataset" in layouts else None
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    missing: list[str] = []
    try:
        for sample in iter_shard(labels / f"{name}.tar"):
            meta = json.loads(sample.members[META_EXT].data or b"{}")
            key, src = meta["key"], meta["src"]
            size = (int(meta["image_size"][0]), int(meta["image_size"][1]))
            try:
                image, ext = image_payload(src, size)
                disp = decode_disparity(sample.members[DISP_EXT].data or b"", float(meta.get("scale", 1.0)))
                cond = png_bytes(conditioning_from_label(disp, size, align_corners))
            except (OSError, ValueError) as e:  # LabelError and ImageReadError are ValueErrors
                failures.append({"key": key, "source": str(src.get("path")), "error": f"{type(e).__name__}: {e}"})
                continue
            caption = (captions.for_tar(src["path"], key, src.get("member", "")) if src.get("type") == "tar"
                       else captions.for_file(Path(src["path"])))
            if caption is None:
                missing.append(key)
            text: str | list[str] = caption if caption is not None else ""
            number = f"{len(rows):06d}"
            image_rel = PurePosixPath(IMAGES, shard_dir, f"{number}.{ext}")
            cond_rel = PurePosixPath(CONDITIONING, shard_dir, f"{number}.png")
            if "folder" in layouts:
                for rel, data in ((image_rel, image), (cond_rel, cond)):
                    target = folder / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)  # the part file, written last, says the shard is complete
            if wds is not None:
                first = text if isinstance(text, str) else text[0]
                info = {"shard": name, "key": key, "source": src, "image_size": list(size),
                        "teacher": meta.get("teacher"), "captions": text if isinstance(text, list) else [text]}
                wds.write(number, {ext: image, "depth.png": cond, "txt": first.encode(),
                                   "json": json.dumps(info).encode()})
            rows.append({"file_name": str(image_rel), "conditioning_image_file_name": str(cond_rel), "text": text,
                         "shard": name, "key": key, "source": _source(src)})
        if wds is not None:
            wds.commit()
            wds = None
    finally:
        if wds is not None:
            wds.abort()
    part = {"rows": rows, "failures": failures, "missing_captions": missing}
    write_text_atomic(part_path(out, name), json.dumps(part), durable=True)
    return part
