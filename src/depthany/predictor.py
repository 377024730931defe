"""``DepthPredictor``: images in, typed depth results out. The layer between the network and the tasks.

Example:
    >>> from depthany import DepthPredictor
    >>> predictor = DepthPredictor.from_pretrained("da2-small")         # doctest: +SKIP
    >>> result = predictor.predict("photo.jpg")                          # doctest: +SKIP
    >>> result.values.shape, result.kind                                  # doctest: +SKIP
    ((480, 640), 'relative_disparity')
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from . import transforms
from .io.image import LoadedImage, as_rgb
from .models import DepthAnything
from .result import DepthResult
from .runtime.devices import pick_device
from .weights import load_model
from .zoo import ModelSpec

Precision = Literal["fp32", "bf16", "fp16"]
ImageLike = LoadedImage | np.ndarray | str | Path | bytes | Image.Image
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class DepthPredictor:
    """Runs a Depth Anything model on images with the official pre- and post-processing.

    Args:
        model: the network (any device/dtype).
        spec: its zoo spec (preprocessing numbers, output kind, name).
        device: where inputs are sent; defaults to the model's device.
        precision: ``"fp32"`` (exact), ``"bf16"`` or ``"fp16"`` (autocast).
        input_size: network short side (default: the model's, 518 for official models); larger values give
            sharper maps (test-time resolution scaling).
        batch_size: images per forward pass in :meth:`predict_batch` (same network size only).
        backend: the engine behind :attr:`runner`: ``"torch"`` (default: eager PyTorch, the reference path),
            ``"onnxruntime"``, ``"openvino"`` or ``"auto"`` (the fastest installed engine for the device and
            precision: OpenVINO on CPUs when installed, else PyTorch; the CLI's default); see
            :mod:`depthany.backends`.
        backend_options: engine options passed to :func:`depthany.backends.make_runner`.
    """

    def __init__(
        self,
        model: DepthAnything,
        spec: ModelSpec,
        device: str | torch.device | None = None,
        precision: Precision = "fp32",
        input_size: int | None = None,
        batch_size: int = 4,
        backend: str = "torch",
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if input_size is not None:
            transforms.network_size(1, 1, input_size, spec.preprocess.multiple)  # validates
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.eval()
        self.spec = spec
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.precision: Precision = precision
        self.input_size = input_size or spec.preprocess.input_size
        self.batch_size = batch_size
        # The network call; alternative backends (compiled, ONNX Runtime, ...) replace it.
        self.runner: Callable[[Tensor], Tensor] = self._torch_forward
        self.backend = "torch"
        if backend != "torch":
            from .backends import make_runner

            runner = make_runner(backend, self.model, precision, self.device, name=spec.name,
                                 **(backend_options or {}))
            self.backend = runner.name
            if runner.name != "torch":  # "auto" may resolve to torch: keep the original call
                self.runner = runner

    @classmethod
    def from_pretrained(
        cls,
        model: str | None = None,
        weights: str | Path | None = None,
        device: str | torch.device | None = "cpu",
        precision: Precision = "fp32",
        input_size: int | None = None,
        batch_size: int = 4,
        backend: str = "torch",
        backend_options: dict[str, Any] | None = None,
    ) -> DepthPredictor:
        """Load a zoo model (downloading through the HF cache if needed), an HF alias or a local file.

        ``model=None`` gives the bundled default model unless ``weights`` describes another architecture.
        ``backend`` and ``backend_options`` are as in the constructor. With a backend other than torch the
        engine holds its own copy of the weights, so PyTorch's copy is released (``predictor.model`` keeps the
        architecture on the ``meta`` device) and peak memory stays at one copy.
        """
        dev = pick_device(device)
        net, spec = load_model(model, weights, device=dev)
        predictor = cls(net, spec, dev, precision, input_size, batch_size, backend, backend_options)
        if predictor.backend != "torch":
            net.to("meta")
        return predictor

    # -------------------------------------------------------------------------------------------- network

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    def _torch_forward(self, x: Tensor) -> Tensor:
        with torch.inference_mode(), self._autocast():
            return self.model(x.to(self.device)).float()

    def infer_tensor(self, x: Tensor) -> Tensor:
        """Normalised (B, 3, h, w) network input -> (B, h, w) float32 network output on the CPU."""
        return self.runner(x).float().cpu()

    # -------------------------------------------------------------------------------------------- images

    def prepare(self, image: ImageLike) -> tuple[LoadedImage, Tensor]:
        """Decode (if needed) and preprocess one image: (loaded image, (1, 3, h, w) float32 input)."""
        loaded = as_rgb(image)
        return loaded, transforms.preprocess(loaded.rgb, self.spec.preprocess, self.input_size)

    def predict(self, image: ImageLike) -> DepthResult:
        """Predict one image.

        Args:
            image: (H, W, 3) uint8 RGB array, a file path, encoded bytes or a PIL image.

        Returns:
            a :class:`DepthResult` with (H, W) float32 values at the image's size.
        """
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[ImageLike]) -> list[DepthResult]:
        """Predict several images; images with the same network size share a forward pass (no padding).

        Raises the first decoding error; for per-image error handling use :meth:`iter_predict`.
        """
        prepared = [self.prepare(im) for im in images]
        return self._run_prepared(prepared)

    def iter_predict(
        self, images: Sequence[ImageLike]
    ) -> Iterator[tuple[int, DepthResult | Exception]]:
        """Yield (index, result or the exception for that input), batching consecutive same-size images.

        A bad input is reported and skipped; the others still run.
        """
        pending: list[tuple[int, LoadedImage, Tensor]] = []

        def flush() -> Iterator[tuple[int, DepthResult | Exception]]:
            if not pending:
                return
            try:
                results = self._run_prepared([(lo, x) for _, lo, x in pending])
                yield from ((i, r) for (i, _, _), r in zip(pending, results))
            except Exception as e:  # a failing batch fails its images, not the run
                yield from ((i, e) for i, _, _ in pending)
            pending.clear()

        for i, im in enumerate(images):
            try:
                loaded, x = self.prepare(im)
            except Exception as e:
                yield i, e
                continue
            if pending and (pending[0][2].shape != x.shape or len(pending) >= self.batch_size):
                yield from flush()
            pending.append((i, loaded, x))
        yield from flush()

    def _run_prepared(self, prepared: list[tuple[LoadedImage, Tensor]]) -> list[DepthResult]:
        results: list[DepthResult | None] = [None] * len(prepared)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (_, x) in enumerate(prepared):
            groups.setdefault(tuple(x.shape), []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                batch = torch.cat([prepared[i][1] for i in chunk])
                out = self.infer_tensor(batch)
                for j, i in enumerate(chunk):
                    results[i] = self._result(prepared[i][0], out[j:j + 1], (batch.shape[-2], batch.shape[-1]))
        return [r for r in results if r is not None]

    def _result(self, loaded: LoadedImage, out: Tensor, net_size: tuple[int, int]) -> DepthResult:
        values = transforms.postprocess(out, loaded.size, self.spec.preprocess.output_align_corners)[0]
        return DepthResult(
            values=values.numpy().astype(np.float32, copy=False),
            kind="metric_depth" if self.spec.arch.head == "metric" else "relative_disparity",
            model=self.spec.name,
            image_size=loaded.size,
            network_size=net_size,
            source=loaded.path,
            meta={"input_size": self.input_size, "precision": self.precision, "device": str(self.device),
                  "backend": self.backend,
                  "exif": loaded.exif, "orientation": loaded.orientation, "raw_size": loaded.raw_size,
                  "weights": self.spec.extra.get("weights")},
        )
