"""The REST service's limits and defaults, importable without FastAPI (``depthany serve`` reads its option
defaults from here, so each number is written once)."""

from __future__ import annotations

from dataclasses import dataclass

from ..io.colormap import AUTO_CMAP

MiB = 1 << 20


@dataclass
class ServeConfig:
    """Service limits and defaults.

    Attributes:
        max_batch: most requests per forward pass.
        max_wait_ms: how long a request may wait for others to share its forward pass.
        max_queue: most requests waiting; more get 503.
        max_upload_bytes: largest request body (413 above).
        max_pixels: largest image in pixels (422 above); checked from the header before decoding.
        default_format: response format without ``?format=`` or a specific Accept header.
        cmap: colour map for ``format=color`` when the request gives no ``cmap``: a name of
            :data:`depthany.io.colormap.COLORMAPS` or ``"auto"`` (the official map of the model's family:
            ``Spectral_r`` for V2, ``inferno`` for V1); :func:`depthany.serve.api.create_app` resolves it.
        max_tokens: network-input budget per request in patch tokens; None = the predictor's (default 10,952).
        shutdown_grace_s: on shutdown, how long a running forward pass may finish before it is interrupted.
    """

    max_batch: int = 4
    max_wait_ms: float = 10.0
    max_queue: int = 32
    max_upload_bytes: int = 20 * MiB
    max_pixels: int = 40_000_000
    default_format: str = "json"
    cmap: str = AUTO_CMAP
    max_tokens: int | None = None
    shutdown_grace_s: float = 2.0
