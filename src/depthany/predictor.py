"""``DepthPredictor``: images in, typed depth results out. The layer between the network and the tasks.

Example:
    >>> from depthany import DepthPredictor
    >>> predictor = DepthPredictor.from_pretrained("da2-small")         # doctest: +SKIP
    >>> result = predictor.predict("photo.jpg")                          # doctest: +SKIP
    >>> result.values.shape, result.kind                                  # doctest: +SKIP
    ((480, 640), 'relative_disparity')
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .budget import DEFAULT_MAX_TOKENS, InputBudgetError
from .geometry.resolve import resolve_intrinsics
from .inference import Prepared, pipeline_for
from .io.image import LoadedImage, as_rgb
from .models import Network
from .precision import PRECISIONS, InferencePrecision, Precision, check_inference_precision
from .result import DepthResult, OutputKind
from .runtime.devices import pick_device
from .weights import load_model
from .zoo import ModelSpec

ImageLike = LoadedImage | np.ndarray | str | Path | bytes | Image.Image
__all__ = ["PRECISIONS", "DepthPredictor", "ImageLike", "Precision", "pick_device"]


class DepthPredictor:
    """Runs a Depth Anything model on images with the official pre- and post-processing.

    Images go through the model family's :class:`~depthany.inference.InferencePipeline` (the one path shared
    with the server, ``depthany bench``, validation and pseudo-labelling). The default fp32 PyTorch path runs
    under :func:`depthany.precision.strict_fp32` (no TF32 or bf16 shortcuts in matmuls and convolutions).
    Depth Anything 3 mono/metric models (:class:`~depthany.models.DepthAnything3`) run the official DA3
    preprocessing and sky fill (:class:`~depthany.inference.DA3Pipeline`; PyTorch only) and return relative depth
    (DA3Mono) or metres (DA3Metric, from the camera's focal length: ``camera``, else EXIF, else a stated default).
    The V1 metric models (:class:`~depthany.models.ZoeDepth`) run the official ``infer_pil(img, pad_input=True,
    with_flip_aug=True)`` (:class:`~depthany.inference.ZoeDepthPipeline`); their raw network-size forward is
    :func:`depthany.zoe_pipeline.forward` on ``predictor.model``.

    Args:
        model: the network (any device/dtype): a :class:`~depthany.models.DepthAnything`, a ZoeDepth or a
            single-image :class:`~depthany.models.DepthAnything3`.
        spec: its zoo spec (preprocessing numbers, output kind, name).
        device: where inputs are sent; defaults to the model's device.
        precision: ``"fp32"`` (exact), ``"bf16"`` or ``"fp16"`` (autocast), or ``"int8"``: the quantised model
            made for these weights by ``depthany quantize`` (:mod:`depthany.quantize`), run by an engine
            backend (``"openvino"`` or ``"auto"``); never chosen unless asked for.
        input_size: network short side (default: the model's, 518 for official models); larger values give
            sharper maps (test-time resolution scaling).
        batch_size: images per forward pass in :meth:`predict_batch` (same network size only).
        backend: the engine behind :attr:`runner`: ``"torch"`` (default: eager PyTorch, the reference path),
            ``"onnxruntime"``, ``"openvino"`` or ``"auto"`` (the fastest installed engine for the device and
            precision: OpenVINO on CPUs when installed, else PyTorch; PyTorch for ZoeDepth models; the CLI's
            default); see :mod:`depthany.backends`.
        backend_options: engine options passed to :func:`depthany.backends.make_runner`.
        max_tokens: network-input budget in patch tokens (default 10,952 = 8x a 518x518 input; see
            :mod:`depthany.budget`). An image whose official network input is larger runs at a smaller size
            that fits (its result's ``meta["input_budget"]["shrunk"]`` is True); one that cannot be fitted at all
            raises :class:`~depthany.budget.InputBudgetError`.
        camera: the camera of the images, keyword arguments of :func:`depthany.geometry.resolve_intrinsics`
            (``fx``, ``fy``, ``cx``, ``cy`` in pixels of the image as read, ``fov`` in degrees, ``fov_axis``,
            ``intrinsics``); images without it use their EXIF, else a 60 degree field of view across the longer
            side (with a warning for metric models). Used by models that need a focal length (DA3Metric).
        pipeline_options: options of the model family's pipeline (Depth Anything 3: ``resolution="image"`` or
            ``"network"``, see :class:`~depthany.inference.DA3Pipeline`; ZoeDepth: ``mode``, ``flip``, see
            :class:`~depthany.inference.ZoeDepthPipeline`).
    """

    def __init__(
        self,
        model: Network,
        spec: ModelSpec,
        device: str | torch.device | None = None,
        precision: InferencePrecision = "fp32",
        input_size: int | None = None,
        batch_size: int = 4,
        backend: str = "torch",
        backend_options: dict[str, Any] | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        camera: dict[str, Any] | None = None,
        **pipeline_options: Any,
    ) -> None:
        check_inference_precision(precision)
        if precision == "int8" and backend == "torch":
            raise ValueError("precision 'int8' runs a quantised model (depthany quantize) on an engine, not PyTorch: "
                             "use backend='openvino' or 'auto'")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.pipeline = pipeline_for(spec, input_size, max_tokens, **pipeline_options)  # validates the settings
        self.pipeline_options = pipeline_options
        self.camera = dict(camera or {})
        if spec.arch.is_da3 and backend not in ("torch", "auto"):
            raise ValueError(f"{spec.name}: Depth Anything 3 models run on the torch backend (the {backend} engine "
                             "is not validated for them); use --backend torch")
        if spec.arch.is_da3:
            backend = "torch"  # "auto" picks the reference path for DA3
        self.model = model.eval()
        self.spec = spec
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.precision: InferencePrecision = precision
        self.input_size = self.pipeline.input_size
        self.batch_size = batch_size
        from .backends import make_runner
        from .backends.torch_backend import TorchRunner

        # The network call: (B, 3, h, w) -> (B, h, w). PyTorch unless another engine is asked for.
        self.runner: Callable[[Tensor], Tensor] = TorchRunner(self.model, precision, self.device)
        self.backend = "torch"
        if backend != "torch":
            runner = make_runner(backend, self.model, precision, self.device, name=spec.name,
                                 **(backend_options or {}))
            self.backend = runner.name
            if runner.name != "torch":  # "auto" may resolve to torch: keep the runner above
                self.runner = runner

    @classmethod
    def from_pretrained(
        cls,
        model: str | None = None,
        weights: str | Path | None = None,
        device: str | torch.device | None = "cpu",
        precision: InferencePrecision = "fp32",
        input_size: int | None = None,
        batch_size: int = 4,
        backend: str = "torch",
        backend_options: dict[str, Any] | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        camera: dict[str, Any] | None = None,
        **pipeline_options: Any,
    ) -> DepthPredictor:
        """Load a zoo model (downloading through the HF cache if needed), an HF alias or a local file.

        ``model=None`` gives the bundled default model unless ``weights`` describes another architecture.
        The other arguments are as in the constructor. With a backend other than torch the engine holds its
        own copy of the weights, so PyTorch's copy is released (``predictor.model`` keeps the architecture on
        the ``meta`` device) and peak memory stays at one copy.
        """
        dev = pick_device(device)
        net, spec = load_model(model, weights, device=dev)
        predictor = cls(net, spec, dev, precision, input_size, batch_size, backend, backend_options, max_tokens,
                        camera, **pipeline_options)
        if predictor.backend != "torch":
            net.to("meta")
        return predictor

    @property
    def max_tokens(self) -> int:
        """The network-input budget in patch tokens (see :mod:`depthany.budget`)."""
        return self.pipeline.max_tokens

    def with_settings(self, input_size: int | None = None, max_tokens: int | None = None,
                      **pipeline_options: Any) -> DepthPredictor:
        """A predictor sharing this one's network and runner, with another input size and/or budget (and
        pipeline options, e.g. ZoeDepth's ``mode="evaluate"``, ``flip=False``)."""
        other = copy.copy(self)
        options = {**self.pipeline_options, **pipeline_options}
        other.pipeline = pipeline_for(self.spec, input_size or self.input_size,
                                      self.max_tokens if max_tokens is None else max_tokens, **options)
        other.pipeline_options = options
        other.input_size = other.pipeline.input_size
        return other

    # -------------------------------------------------------------------------------------------- network

    def infer_tensor(self, x: Tensor) -> Tensor:
        """Normalised (B, 3, h, w) network input -> the pipeline's network output on the CPU: (B, h, w) float32
        for Depth Anything, (B, 2, h, w) for ZoeDepth (the output and the mirror image's, flipped back)."""
        return self.pipeline.forward(self.runner, x)

    # -------------------------------------------------------------------------------------------- images

    def prepare(self, image: ImageLike) -> tuple[LoadedImage, Prepared]:
        """Decode (if needed) and preprocess one image: (loaded image, :class:`~depthany.inference.Prepared`
        holding the (1, 3, h, w) float32 input and the network size chosen under the budget).

        Raises:
            ImageReadError: the image cannot be read (naming it).
            InputBudgetError: the image cannot be fitted into the budget (naming it when it has a path).
        """
        # Depth Anything 3's official reader, PIL's convert("RGB"), keeps the stored pixels (no EXIF turn)
        loaded = as_rgb(image, exif_orientation=False) if self.spec.arch.is_da3 else as_rgb(image)
        try:
            if not self.pipeline.needs_intrinsics:
                return loaded, self.pipeline.prepare(loaded.rgb)
            h, w = loaded.size
            k = resolve_intrinsics(w, h, exif=loaded.exif, orientation=loaded.orientation,
                                   raw_size=loaded.raw_size if min(loaded.raw_size) > 0 else None,
                                   warn=self.spec.output_kind == "metric_depth", **self.camera)
            return loaded, self.pipeline.prepare(loaded.rgb, intrinsics=k)  # type: ignore[call-arg]
        except InputBudgetError as e:
            if loaded.path and not str(e).startswith(loaded.path):
                raise InputBudgetError(f"{loaded.path}: {e}") from None
            raise

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

        Raises the first decoding or budget error; for per-image error handling use :meth:`iter_predict`.
        """
        prepared = [self.prepare(im) for im in images]
        return self._run_prepared(prepared)

    def iter_predict(
        self, images: Iterable[ImageLike]
    ) -> Iterator[tuple[int, DepthResult | Exception]]:
        """Yield (index, result or the exception for that input), batching consecutive same-size images.

        A bad input (unreadable, or too thin for the budget) is reported and skipped; the others still run.
        """
        pending: list[tuple[int, LoadedImage, Prepared]] = []

        def flush() -> Iterator[tuple[int, DepthResult | Exception]]:
            if not pending:
                return
            try:
                results = self._run_prepared([(lo, p) for _, lo, p in pending])
                yield from ((i, r) for (i, _, _), r in zip(pending, results))
            except Exception as e:  # a failing batch fails its images, not the run
                yield from ((i, e) for i, _, _ in pending)
            pending.clear()

        for i, im in enumerate(images):
            try:
                loaded, prep = self.prepare(im)
            except Exception as e:
                yield i, e
                continue
            if pending and (pending[0][2].key != prep.key or len(pending) >= self.batch_size):
                yield from flush()
            pending.append((i, loaded, prep))
        yield from flush()

    def _run_prepared(self, prepared: list[tuple[LoadedImage, Prepared]]) -> list[DepthResult]:
        results: list[DepthResult | None] = [None] * len(prepared)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (_, p) in enumerate(prepared):
            groups.setdefault(p.key, []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                out = self.infer_tensor(torch.cat([prepared[i][1].x for i in chunk]))
                for j, i in enumerate(chunk):
                    results[i] = self._result(*prepared[i], out[j])
        return [r for r in results if r is not None]

    def _result(self, loaded: LoadedImage, prepared: Prepared, out: Tensor) -> DepthResult:
        values = self.pipeline.finish(out, prepared)
        meta = {"input_size": self.input_size, "precision": self.precision, "device": str(self.device),
                "backend": self.backend, "input_budget": prepared.fit.as_meta(),
                "exif": loaded.exif, "orientation": loaded.orientation, "raw_size": loaded.raw_size,
                "weights": self.spec.extra.get("weights")}
        meta.update(self.pipeline.meta(prepared))
        extras = self.pipeline.extras(out, prepared)
        if extras:
            meta["extras"] = extras
        return DepthResult(
            values=values.numpy().astype(np.float32, copy=False),
            kind=cast(OutputKind, self.spec.output_kind),
            model=self.spec.name,
            image_size=loaded.size,
            network_size=prepared.fit.network_size,
            source=loaded.path,
            meta=meta,
        )
