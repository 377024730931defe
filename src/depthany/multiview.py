"""Any-view Depth Anything 3: several photos of one scene in, per-view depth, confidence and cameras out.

    >>> from depthany.multiview import MultiViewPredictor                          # doctest: +SKIP
    >>> predictor = MultiViewPredictor.from_pretrained("da3-small")               # doctest: +SKIP
    >>> result = predictor.predict(["a.jpg", "b.jpg", "c.jpg"])                    # doctest: +SKIP
    >>> result.depth.shape, result.extrinsics.shape                                # doctest: +SKIP
    ((3, 378, 504), (3, 3, 4))

:meth:`MultiViewPredictor.predict` is the official ``DepthAnything3.inference(images)`` of the any-view models
(DA3-Small/Base/Large/Giant) for that set of views: the same preprocessing (:mod:`depthany.da3.preprocess`), the
network in float32, depth and confidence at the processing resolution, world-to-camera extrinsics (the frame the model
predicts its cameras in, trained to be the reference view's camera) and intrinsics. :func:`at_image_size` resizes the maps to the images and scales the
intrinsics with them. Exports (fused point cloud, COLMAP, GLB): :mod:`depthany.geometry.scene`.

Work is bounded: at most ``max_views`` views (default :data:`DEFAULT_MAX_VIEWS` = 32) and at most ``max_tokens``
patch tokens over all views together (default :data:`DEFAULT_MAX_VIEW_TOKENS` = 41,472 = 32 views at the largest
input of the 504 px rule, 36 x 36 patches). The cross-view attention sees every view's tokens at once and the
decoder runs on all views together, so memory grows with the views. The views must share one image size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import da3, zoo
from .budget import count_tokens
from .io.image import LoadedImage, as_rgb
from .models import DepthAnything3
from .models.da3 import REF_VIEW_STRATEGIES, RefViewStrategy
from .precision import autocast
from .result import MultiViewResult
from .runtime.devices import pick_device
from .weights import load_network

DEFAULT_MAX_VIEWS = 32
DEFAULT_MAX_VIEW_TOKENS = DEFAULT_MAX_VIEWS * (504 // 14) ** 2  # 41,472
ImageLike = LoadedImage | np.ndarray | str | Path | bytes


class MultiViewPredictor:
    """Runs an any-view Depth Anything 3 model on views of one scene.

    Args:
        model: an any-view :class:`~depthany.models.DepthAnything3` (float32 for the exact path).
        spec: its zoo spec.
        device: where inputs are sent (default: the model's device).
        input_size: ``process_res``, the longest side of every view (default 504).
        ref_view_strategy: how the reference view (the world frame) is chosen from 3 views on:
            ``saddle_balanced`` (official default), ``saddle_sim_range``, ``first`` or ``middle``.
        max_views: the most views one call takes.
        max_tokens: the most patch tokens over all views together.

    Raises:
        ValueError: a single-image model, or bad settings (naming them).
    """

    def __init__(self, model: DepthAnything3, spec: zoo.ModelSpec, device: str | torch.device | None = None,
                 input_size: int | None = None, ref_view_strategy: RefViewStrategy = "saddle_balanced",
                 max_views: int = DEFAULT_MAX_VIEWS, max_tokens: int = DEFAULT_MAX_VIEW_TOKENS) -> None:
        if not isinstance(model, DepthAnything3) or not model.is_multiview:
            raise ValueError(f"{spec.name} is not an any-view Depth Anything 3 model (da3-small, da3-base, da3-large, "
                             "da3-giant); single images run with depthany predict / DepthPredictor")
        if ref_view_strategy not in REF_VIEW_STRATEGIES:
            raise ValueError(f"ref_view_strategy must be one of {', '.join(REF_VIEW_STRATEGIES)}, got "
                             f"{ref_view_strategy!r}")
        size = input_size or spec.preprocess.input_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"input_size (process_res) must be a positive integer, got {size!r}")
        for name, value in (("max_views", max_views), ("max_tokens", max_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.model, self.spec = model.eval(), spec
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.input_size, self.ref_view_strategy = size, ref_view_strategy
        self.max_views, self.max_tokens = max_views, max_tokens

    @classmethod
    def from_pretrained(cls, model: str | None = None, weights: str | Path | None = None,
                        device: str | torch.device | None = "cpu", **kwargs: Any) -> MultiViewPredictor:
        """Load a zoo model (``da3-small`` ...), a Hugging Face repo or a local folder/file; other arguments as
        the constructor."""
        dev = pick_device(device)
        net, spec = load_network(model if model or weights is not None else "da3-small", weights, device=dev)
        if not isinstance(net, DepthAnything3) or not net.is_multiview:
            raise ValueError(f"{spec.name} is not an any-view Depth Anything 3 model (da3-small, da3-base, da3-large, "
                             "da3-giant); single images run with depthany predict / DepthPredictor")
        return cls(net, spec, dev, **kwargs)

    def check_views(self, count: int) -> None:
        """Raise ValueError when ``count`` views are more than this predictor takes (before any work)."""
        if count < 1:
            raise ValueError("no views given")
        if count > self.max_views:
            raise ValueError(f"{count} views exceed the bound of {self.max_views} views per run (--max-views): "
                             "memory grows with the views seen together; split the scene or raise the bound")

    def predict(self, images: Sequence[ImageLike], names: Sequence[str] | None = None,
                resolution: str = "network", progress: Callable[[str], None] | None = None) -> MultiViewResult:
        """Predict depth, confidence and cameras for views of one scene.

        Args:
            images: N views: paths, encoded bytes, (H, W, 3) uint8 arrays or loaded images, all of one size.
                Files are read as the official reader does (``PIL.Image.open(path).convert("RGB")``: the stored
                pixels, no EXIF orientation applied).
            names: N names (default: file names, else ``view<i>``).
            resolution: ``"network"`` (the official outputs at the processing resolution) or ``"image"``
                (:func:`at_image_size`).
            progress: called with a line per stage.

        Returns:
            a :class:`~depthany.result.MultiViewResult`.

        Raises:
            ImageReadError: a view cannot be read (naming it).
            ValueError: too many views or tokens, views of different sizes, a bad ``resolution``.
        """
        if resolution not in ("network", "image"):
            raise ValueError(f"resolution must be 'network' or 'image', got {resolution!r}")
        self.check_views(len(images))
        say = progress or (lambda _: None)
        loaded = [as_rgb(im, exif_orientation=False) for im in images]  # the official reader: no EXIF turn
        view_names = list(names) if names is not None else [
            Path(lo.path).name if lo.path else f"view{i}" for i, lo in enumerate(loaded)]
        if len(view_names) != len(loaded):
            raise ValueError(f"got {len(view_names)} names for {len(loaded)} views")
        sizes = [lo.size for lo in loaded]
        if len(set(sizes)) > 1:
            detail = ", ".join(f"{n}: {w}x{h}" for n, (h, w) in zip(view_names, sizes))
            raise ValueError(f"views of different sizes ({detail}); multiview needs views of one size (resize or "
                             "crop them first)")
        rgb = [da3.to_uint8(lo.rgb, n) for lo, n in zip(loaded, view_names)]
        x, plans = da3.prepare_views(rgb, self.spec.preprocess, self.input_size)
        h, w = plans[0].final
        tokens = len(rgb) * count_tokens(h, w, self.spec.preprocess.multiple)
        if tokens > self.max_tokens:
            raise ValueError(f"{len(rgb)} views at {w}x{h} are {tokens:,} patch tokens, over the bound of "
                             f"{self.max_tokens:,} (--max-view-tokens); use fewer views or a smaller --input-size")
        say(f"running {self.spec.name} on {len(rgb)} views at {w}x{h} ({tokens:,} tokens) on {self.device}")
        with torch.inference_mode(), autocast(self.device, "fp32"):
            pred = da3.views_from_input(self.model, x, plans, self.ref_view_strategy)
        result = MultiViewResult(
            pred.depth, pred.conf, pred.extrinsics, pred.intrinsics, view_names, sizes, (h, w), "network",
            pred.reference, self.spec.name, images=da3.processed_image(x, self.spec.preprocess),
            meta={"process_res": self.input_size, "process_res_method": plans[0].method,
                  "ref_view_strategy": self.ref_view_strategy, "weights": self.spec.extra.get("weights"),
                  "sources": [lo.path for lo in loaded], "exif": [lo.exif for lo in loaded]})
        return at_image_size(result, [lo.rgb for lo in loaded]) if resolution == "image" else result


def at_image_size(result: MultiViewResult, images: Sequence[np.ndarray] | None = None) -> MultiViewResult:
    """A network-resolution result at the images' size: depth and confidence resized as
    :func:`depthany.da3.resize_map` does, intrinsics scaled with them (``fx' = s fx``, ``cx' = (cx + 0.5) s - 0.5``:
    pixel centres at integers, the convention of the resize), extrinsics unchanged.

    Args:
        result: from :meth:`MultiViewPredictor.predict` with ``resolution="network"``.
        images: the N views (H, W, 3) as read, kept as the result's ``images`` (optional).
    """
    if result.resolution != "network":
        raise ValueError("at_image_size needs a result at the network's resolution")
    size = result.image_sizes[0]
    h, w = result.network_size
    depth = np.stack([da3.resize_map(torch.from_numpy(d), size).numpy() for d in result.depth])
    conf = np.stack([da3.resize_map(torch.from_numpy(c), size).numpy() for c in result.conf])
    sx, sy = size[1] / w, size[0] / h
    k = result.intrinsics.astype(np.float64).copy()
    k[:, 0, 0] *= sx
    k[:, 1, 1] *= sy
    k[:, 0, 2] = (k[:, 0, 2] + 0.5) * sx - 0.5
    k[:, 1, 2] = (k[:, 1, 2] + 0.5) * sy - 0.5
    pics = np.stack([np.asarray(im, dtype=np.uint8) for im in images]) if images is not None else None
    return MultiViewResult(depth.astype(np.float32), conf.astype(np.float32), result.extrinsics,
                           k.astype(np.float32), list(result.names), list(result.image_sizes), result.network_size,
                           "image", result.reference, result.model, images=pics, meta=dict(result.meta))
