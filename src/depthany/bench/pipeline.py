"""End-to-end stages timed one by one: decode, preprocess, network, postprocess, encode.

Ours runs the same steps :class:`depthany.predictor.DepthPredictor` runs (``io.image.as_rgb``, then the model's
:class:`depthany.inference.InferencePipeline` around the backend's runner) and encodes each map as a 16-bit
PNG. The transformers baseline is what its users write: PIL decode, its DPT image processor (the Pillow
implementation, what ``AutoImageProcessor`` gives without torchvision), the model,
``post_process_depth_estimation``, and the same PNG encoder.
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .. import transforms
from ..budget import DEFAULT_MAX_TOKENS
from ..inference import pipeline_for
from ..io.depth import png16_encode
from ..io.image import as_rgb
from ..zoo import INPUT_SIZE, PATCH_SIZE, ModelSpec

STAGES: tuple[str, ...] = ("decode", "preprocess", "network", "postprocess", "encode")


def image_size_for(net_h: int, net_w: int, input_size: int = INPUT_SIZE, multiple: int = PATCH_SIZE
                   ) -> tuple[int, int]:
    """A photo size whose network size is (net_h, net_w): 480x640 for 518x686, 480x480 for 518x518.

    Falls back to the network size itself when no smaller photo maps there.
    """
    short = min(net_h, net_w)
    for side in (480, short):
        h0, w0 = round(net_h * side / short), round(net_w * side / short)
        # among nearby sizes that map there, prefer camera-like ones (multiples of 32, then 16)
        cands = [(h0 + dh, w0 + dw) for dh in range(-8, 9) for dw in range(-8, 9)
                 if (h0 + dh == side or w0 + dw == side) and min(h0 + dh, w0 + dw) > 0]
        cands.sort(key=lambda s: (s[0] % 32 + s[1] % 32 > 0, s[0] % 16 + s[1] % 16 > 0,
                                  abs(s[0] - h0) + abs(s[1] - w0)))
        for h, w in cands:
            if transforms.network_size(h, w, input_size, multiple) == (net_h, net_w):
                return h, w
    return net_h, net_w


def synthetic_jpegs(n: int, height: int, width: int, seed: int = 0) -> list[bytes]:
    """``n`` JPEG-encoded (quality 95) photo-like RGB images: smooth gradients, edges and sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for i in range(n):
        base = np.stack([127 + 100 * np.sin(x / (13 + i)) * np.cos(y / 17),
                         255 * x / width, 255 * (1 - y / height)], -1)
        base[(x // 64 + y // 64) % 2 == 0] *= 0.6
        img = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=95)
        out.append(buf.getvalue())
    return out


def encode_png16(values: np.ndarray) -> bytes:
    """(H, W) float depth -> 16-bit PNG bytes (full-range quantisation, as ``depthany predict`` writes)."""
    codes, _ = png16_encode(values)
    buf = io.BytesIO()
    Image.fromarray(codes).save(buf, format="PNG")
    return buf.getvalue()


def _pil_rgb(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def _stage(times: dict[str, float], name: str, fn: Callable[[], Any]) -> Any:
    t = time.perf_counter()
    out = fn()
    times[name] += time.perf_counter() - t
    return out


class OursPipeline:
    """depthany's image-to-file path around a backend runner ((B, 3, h, w) -> (B, h, w)).

    Decoding is :func:`depthany.io.image.as_rgb`, the rest is the model's
    :class:`~depthany.inference.InferencePipeline`: the very steps :class:`~depthany.predictor.DepthPredictor`
    runs, so the maps (kept in :attr:`outputs` after each call) equal the predictor's for the same images.
    """

    def __init__(self, runner: Callable[[Tensor], Tensor], spec: ModelSpec, input_size: int | None = None,
                 sync: Callable[[], None] = lambda: None, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.runner, self.spec, self.sync = runner, spec, sync
        self.pipeline = pipeline_for(spec, input_size, max_tokens)
        self.input_size = self.pipeline.input_size
        self.outputs: list[np.ndarray] = []

    def __call__(self, images: Sequence[bytes]) -> dict[str, float]:
        """Run one batch (images of one network size); returns seconds per stage."""
        t = dict.fromkeys(STAGES, 0.0)
        loaded = [_stage(t, "decode", functools.partial(as_rgb, b)) for b in images]
        prepared = _stage(t, "preprocess", lambda: [self.pipeline.prepare(li.rgb) for li in loaded])

        def network() -> Tensor:
            out = self.pipeline.forward(self.runner, torch.cat([p.x for p in prepared]))
            self.sync()
            return out

        out = _stage(t, "network", network)
        maps = _stage(t, "postprocess", lambda: [
            self.pipeline.finish(out[i], p).numpy().astype(np.float32, copy=False) for i, p in enumerate(prepared)])
        _stage(t, "encode", lambda: [encode_png16(m) for m in maps])
        self.outputs = maps
        return t


class TransformersPipeline:
    """The transformers user's path: PIL decode, DPTImageProcessor, model, post_process_depth_estimation."""

    def __init__(self, model: Any, spec: ModelSpec, device: torch.device, input_size: int | None = None) -> None:
        import transformers

        # transformers >= 5 names the Pillow implementation (what DPTImageProcessor falls back to without
        # torchvision); older versions only have DPTImageProcessor.
        processor_cls = getattr(transformers, "DPTImageProcessorPil", None) or transformers.DPTImageProcessor
        size = input_size or spec.preprocess.input_size
        self.model, self.device = model, device
        self.processor = processor_cls(
            do_resize=True, size={"height": size, "width": size}, keep_aspect_ratio=True,
            ensure_multiple_of=spec.preprocess.multiple, resample=Image.Resampling.BICUBIC, do_rescale=True,
            rescale_factor=1 / 255, do_normalize=True, image_mean=list(spec.preprocess.mean),
            image_std=list(spec.preprocess.std), do_pad=False)

    def __call__(self, images: Sequence[bytes]) -> dict[str, float]:
        t = dict.fromkeys(STAGES, 0.0)
        pils = [_stage(t, "decode", functools.partial(_pil_rgb, b)) for b in images]
        inputs = _stage(t, "preprocess", lambda: self.processor(images=pils, return_tensors="pt"))

        def network() -> Any:
            with torch.inference_mode():
                out = self.model(pixel_values=inputs["pixel_values"].to(self.device))
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            return out

        out = _stage(t, "network", network)
        sizes = [(p.height, p.width) for p in pils]
        post = _stage(t, "postprocess", lambda: self.processor.post_process_depth_estimation(out, sizes))
        _stage(t, "encode", lambda: [encode_png16(p["predicted_depth"].float().cpu().numpy()) for p in post])
        return t
