"""Dataset readers for evaluation, one module per benchmark, and :func:`open_dataset` to pick one by name.

DA-2K is scored differently (pairwise ordering) and lives in :mod:`depthany.eval.da2k`.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from .base import DatasetError, EvalDataset, EvalSample

# name -> (module, class, default split)
DATASETS: dict[str, tuple[str, str, str]] = {
    "nyuv2": ("depthany.eval.datasets.nyuv2", "NYUv2", "test"),
    "kitti": ("depthany.eval.datasets.kitti", "KITTI", "eigen_test"),
    "sintel": ("depthany.eval.datasets.sintel", "Sintel", "training"),
    "ddad": ("depthany.eval.datasets.ddad", "DDAD", "val"),
    "eth3d": ("depthany.eval.datasets.eth3d", "ETH3D", "train"),
    "diode": ("depthany.eval.datasets.diode", "DIODE", "all"),
    "rgbd": ("depthany.eval.datasets.rgbd", "RGBD", "all"),
    "filelist": ("depthany.eval.datasets.filelist", "FileList", "list"),
}


def open_dataset(name: str, root: str | Path, split: str | None = None, **options: Any) -> EvalDataset:
    """Index a benchmark split on disk.

    Args:
        name: one of :data:`DATASETS`.
        root: the user's copy of the dataset (nothing is downloaded).
        split: split name (default per dataset); see each module's docstring.
        **options: reader options (``list_file``, ``layout``, ``depth``, ``gt_size``, ...); ``None`` values are
            dropped so a CLI can pass every option through.

    Raises:
        ValueError: unknown dataset name; :class:`DatasetError` for a missing or malformed folder.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)} (or da2k), got {name!r}")
    module, cls, default_split = DATASETS[name]
    reader = getattr(importlib.import_module(module), cls)
    kwargs = {k: v for k, v in options.items() if v is not None}
    accepted = set(inspect.signature(reader).parameters) - {"root", "split"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(f"dataset {name!r} does not take option(s) {', '.join(unknown)}; "
                         f"it takes {', '.join(sorted(accepted)) or 'none'}")
    return reader(root, split or default_split, **kwargs)  # type: ignore[no-any-return]


__all__ = ["DATASETS", "DatasetError", "EvalDataset", "EvalSample", "open_dataset"]
