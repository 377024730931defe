"""Where predictions come from: a model, a folder of saved ``.npy`` predictions, or a trivial baseline.

A source maps ``(sample id, image loader, GT size)`` to an (h, w) float array and says what it holds
(``kind``: ``"depth"`` or ``"disparity"``). The runner resizes to GT size when they differ.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..budget import shrink_note
from .baselines import BASELINES, baseline_depth

if TYPE_CHECKING:
    from ..predictor import DepthPredictor

RgbLoader = Callable[[], np.ndarray]
log = logging.getLogger(__name__)


class PredictionSource(ABC):
    """Produces one prediction per sample. ``kind`` is ``"depth"`` or ``"disparity"``."""

    kind: str = "disparity"

    @abstractmethod
    def predict(self, sample_id: str, load_rgb: RgbLoader, size: tuple[int, int]) -> np.ndarray:
        """(h, w) float prediction for the sample (``size`` = GT (H, W), a hint for sources without images)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Provenance: model, weights, input size, ... or the folder / baseline name."""


class ModelSource(PredictionSource):
    """Runs a :class:`~depthany.predictor.DepthPredictor` on each image.

    Args:
        predictor: the loaded model; its output kind decides ``kind``.
        flip_tta: average with the prediction of the horizontally flipped image (ZoeDepth ``infer``). DA's
            bicubic resize and the bilinear upsampling are flip-equivariant, so averaging at image size equals
            ZoeDepth's averaging at network size. The V1 metric (ZoeDepth) models are run as the official
            ``evaluate.py`` runs them: no padding, the flip mean at network size, bilinear
            (``align_corners=True``) to the image size (:class:`~depthany.inference.ZoeDepthPipeline`,
            ``mode="evaluate"``), not through ``infer_pil``.
    """

    def __init__(self, predictor: DepthPredictor, flip_tta: bool = False) -> None:
        self.predictor = predictor
        self.flip_tta = flip_tta
        self.kind = "depth" if predictor.spec.arch.head == "metric" else "disparity"
        self._zoe: dict[bool, DepthPredictor] = {}

    def _zoe_predictor(self) -> DepthPredictor:
        if self.flip_tta not in self._zoe:
            self._zoe[self.flip_tta] = self.predictor.with_settings(mode="evaluate", flip=self.flip_tta)
        return self._zoe[self.flip_tta]

    def predict(self, sample_id: str, load_rgb: RgbLoader, size: tuple[int, int]) -> np.ndarray:
        rgb = load_rgb()
        zoe = self.predictor.spec.arch.zoe is not None
        result = (self._zoe_predictor() if zoe else self.predictor).predict(rgb)
        budget = result.meta.get("input_budget", {})
        if budget.get("shrunk"):  # not the official input: say so (the evaluation still counts it)
            log.warning("%s: %s", sample_id, shrink_note(budget, result.image_size))
        values = result.values.astype(np.float32)
        if self.flip_tta and not zoe:
            flipped = self.predictor.predict(np.ascontiguousarray(rgb[:, ::-1])).values[:, ::-1]
            values = 0.5 * (values + flipped.astype(np.float32))
        return values

    def describe(self) -> dict[str, Any]:
        p, spec = self.predictor, self.predictor.spec
        return {"source": "model", "model": spec.name, "weights": spec.extra.get("weights"),
                "family": spec.arch.family, "encoder": spec.arch.encoder.name, "head": spec.arch.head,
                "max_depth": spec.arch.max_depth, "input_size": p.input_size, "max_tokens": p.max_tokens,
                "precision": p.precision,
                "device": str(p.device), "prediction_kind": self.kind, "flip_tta": self.flip_tta}


class DirectorySource(PredictionSource):
    """Saved predictions ``<folder>/<sample id>.npy`` ((H, W) or (1, H, W) float).

    Args:
        folder: the predictions folder (sample ids may contain ``/``: sub-folders).
        kind: what the files hold, ``"disparity"`` (relative, e.g. Depth Anything) or ``"depth"``.
    """

    def __init__(self, folder: str | Path, kind: str = "disparity") -> None:
        if kind not in ("depth", "disparity"):
            raise ValueError(f"pred kind must be 'depth' or 'disparity', got {kind!r}")
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ValueError(f"--predictions {self.folder} is not a folder")
        self.kind = kind

    def path_for(self, sample_id: str) -> Path:
        return self.folder / f"{sample_id}.npy"

    def predict(self, sample_id: str, load_rgb: RgbLoader, size: tuple[int, int]) -> np.ndarray:
        path = self.path_for(sample_id)
        if not path.is_file():
            raise FileNotFoundError(f"no saved prediction {path}")
        arr = np.load(path)
        arr = arr.squeeze() if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]) else arr
        if arr.ndim != 2:
            raise ValueError(f"{path}: expected an (H, W) prediction, got shape {arr.shape}")
        return np.asarray(arr, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {"source": "predictions", "folder": str(self.folder), "prediction_kind": self.kind}


class BaselineSource(PredictionSource):
    """A trivial predictor from :mod:`depthany.eval.baselines` (always depth)."""

    def __init__(self, name: str, value: float = 1.0) -> None:
        if name not in BASELINES:
            raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {name!r}")
        self.name = name
        self.value = value
        self.kind = "depth"

    def predict(self, sample_id: str, load_rgb: RgbLoader, size: tuple[int, int]) -> np.ndarray:
        return baseline_depth(self.name, size, self.value)

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": "baseline", "baseline": self.name, "prediction_kind": self.kind}
        if self.name == "constant":
            d["value"] = self.value
        return d
