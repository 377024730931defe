"""Where ``--precision int8`` finds the quantised model for a set of weights.

``depthany quantize`` (:mod:`depthany.quantize`) writes an OpenVINO IR (``.xml`` + ``.bin``) and its accuracy
gate report (``.gate.json``) where the user asks, and, when the gate passes, a copy into
``$DEPTHANY_CACHE_DIR/int8/`` named by the same weights digest as the ONNX cache
(:func:`depthany.backends.onnx_cache.weights_digest`). The int8 runner looks there: weights that were never
quantised (or whose gate failed) have no int8 model, and the error says how to make one. Nothing quantises
implicitly: calibration needs the user's images.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .onnx_cache import cache_dir

SUFFIXES = (".xml", ".bin", ".gate.json")


class Int8ModelMissing(ValueError):
    """No quantised model for these weights (the message says how to make one)."""


def int8_dir() -> Path:
    """``$DEPTHANY_CACHE_DIR/int8`` (default ``~/.cache/depthany/int8``)."""
    return cache_dir() / "int8"


def _files(xml: Path) -> list[Path]:
    return [xml, xml.with_suffix(".bin"), xml.with_name(xml.stem + ".gate.json")]


def cached_int8(digest: str) -> Path | None:
    """The cached ``.xml`` for a weights digest (full or its first 16 characters), or None."""
    folder = int8_dir()
    if not folder.is_dir():
        return None
    for xml in sorted(folder.glob(f"*-{digest[:16]}.xml")):
        if all(p.is_file() for p in _files(xml)):
            return xml
    return None


def install(xml: str | Path, name: str, digest: str) -> Path:
    """Copy a quantised model (``.xml``, ``.bin``, ``.gate.json``) into the cache as ``<name>-<digest>.xml``,
    replacing an earlier one for the same weights; returns the cached ``.xml``.

    Files are copied to a temporary folder first and renamed into place, the gate report last, so a reader
    never sees a model without its report (:func:`cached_int8` requires all three).
    """
    src = Path(xml)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    folder = int8_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"*-{digest[:16]}.*"):  # an earlier model for the same weights, maybe another name
        old.unlink(missing_ok=True)
    dest = folder / f"{safe}-{digest[:16]}.xml"
    with tempfile.TemporaryDirectory(dir=folder, prefix=".install-") as tmp:
        for s, d in zip(_files(src), _files(dest)):
            shutil.copyfile(s, Path(tmp) / d.name)
        for d in _files(dest):  # .xml, .bin, then the report
            os.replace(Path(tmp) / d.name, d)
    return dest


def missing_message(name: str) -> str:
    """What to run when weights have no int8 model yet."""
    return (f"no int8 model for these weights of {name}: make one from your own images with "
            f"`depthany quantize {name} --calibration PHOTOS/ -o {name}-int8.xml` (add --weights FILE for local "
            "weights); it is cached and --precision int8 then finds it")
