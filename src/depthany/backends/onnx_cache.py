"""One dynamic-shape ONNX file per set of weights, exported on first use and reused afterwards.

ONNX Runtime and OpenVINO both read the file written by :func:`depthany.export.export_onnx`. Exporting a
ViT-S takes about 15 s on two cores, so files are kept in ``$DEPTHANY_CACHE_DIR`` (default
``~/.cache/depthany``) under ``onnx/``, named by a digest of the architecture, the weights and the versions
that shape the graph. A file is written under a temporary name and renamed, so concurrent processes never
read a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

from ..models import Network

CACHE_ENV = "DEPTHANY_CACHE_DIR"
GRAPH_VERSION = "1"  # bump when the exported graph changes for the same weights


def cache_dir() -> Path:
    """``$DEPTHANY_CACHE_DIR`` or ``~/.cache/depthany``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "depthany")


def weights_digest(model: Network) -> str:
    """sha1 over the architecture, every parameter/buffer (name, dtype, shape, bytes) and the torch version."""
    from .. import __version__

    h = hashlib.sha1()
    h.update(f"{GRAPH_VERSION}|{__version__}|{torch.__version__}|{model.arch!r}".encode())
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"|{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.view(torch.uint8).numpy())  # buffer protocol: no copy of the weights
    return h.hexdigest()


def model_onnx(model: Network, name: str = "model") -> Path:
    """Path of the dynamic fp32 ONNX export of ``model``, exporting it if not cached yet.

    Raises:
        depthany.export.ExportError: onnx/onnxscript missing or the export failed.
    """
    from ..export.onnx import export_onnx, require

    require("onnx", "onnxscript")
    if next(model.parameters()).dtype != torch.float32:
        raise ValueError("the ONNX backends export fp32 weights; call model.float() first")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    digest = weights_digest(model)[:16]
    folder = cache_dir() / "onnx"
    found = sorted(folder.glob(f"*-{digest}.onnx")) if folder.is_dir() else []
    if found:  # the same weights exported under another name: the graph is the same
        return found[0]
    path = folder / f"{safe}-{digest}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        tmp_path = Path(tmp) / path.name
        export_onnx(model, tmp_path)
        data = tmp_path.with_name(tmp_path.name + ".data")
        if data.exists():  # > 2 GB: weights in a side file whose name the graph records
            os.replace(data, path.with_name(path.name + ".data"))
        os.replace(tmp_path, path)
    return path
